"""The review service's audit pages over real HTTP (real Hub, real OAuth, the real service process):
the paginated query log served by the audit index, and the policy-change replay page."""

from __future__ import annotations

import re
import shutil

import pytest

from dataroom.pipeline import Outcome, QueryService
from dataroom.policy import QUERY_POLICY_DIR
from dataroom.settings import Settings

ASSET_IP_RULE = '''

asset_ip(req) := {r |
	some c in req.facts.columns
	c.column == "asset_ip"
	r := {"code": "asset_ip_column", "message": sprintf("column %s.asset_ip may no longer be queried", [c.table])}
}
'''


@pytest.fixture(scope="module")
def svc(review_room):
    service = QueryService(Settings(home=review_room.home))
    yield service
    service.close()


def test_the_query_log_pages_through_every_matching_attempt(review_room, svc):
    sam = review_room.login("sam")
    ids = [svc.run("bob", "remediation-acme", f"SELECT {i} AS page_test_{i}").decision_id for i in range(130)]
    url = review_room.review_url + "queries"
    first = sam.http.get(url, params={"user": "bob", "text": "page_test_"}, timeout=60)
    assert first.status_code == 200
    listed = re.findall(r'class="query-row" data-decision-id="([^"]+)"', first.text)
    assert listed == list(reversed(ids))[:100]  # newest first, one page
    assert "130 matching attempt(s), 1–100 shown" in first.text and "page 1 of 2" in first.text
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None and "page=2" in older.group(1)
    second = sam.http.get(review_room.hub_url + older.group(1).replace("&amp;", "&"), timeout=60)
    assert re.findall(r'class="query-row" data-decision-id="([^"]+)"', second.text) == list(reversed(ids))[100:]
    assert 'id="newer"' in second.text and 'id="older"' not in second.text
    # one line per attempt with both sequence numbers (decision + completion)
    seqs = re.findall(r'class="query-row"[^>]*>\s*<td><a [^>]*>(\d+)\+(\d+)</a>', first.text)
    assert len(seqs) == 100 and all(int(c) > int(d) for d, c in seqs)


def test_replay_page_for_security_only_with_candidates_chosen_by_name(review_room, svc):
    for i in range(3):
        assert svc.run("alice", "remediation-acme", f"SELECT asset_ip, count(*) + {i} AS n FROM acme.findings GROUP BY 1").outcome is Outcome.ALLOWED
    root = review_room.home / "policy-candidates"
    candidate = root / "deny-asset-ip"
    shutil.copytree(QUERY_POLICY_DIR, candidate, dirs_exist_ok=True)
    columns = candidate / "columns.rego"
    old = "reasons(req) := class_reasons(req) | unresolved(req)"
    assert old in columns.read_text(), "the candidate's rule goes on columns.rego's reasons line"
    if "asset_ip(req)" not in columns.read_text():
        columns.write_text(columns.read_text().replace(old, old + " | asset_ip(req)") + ASSET_IP_RULE)
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken" / "x.rego").write_text("package dataroom.query\nthis is not rego\n")

    sam = review_room.login("sam")
    url = review_room.review_url + "replay"
    listing = sam.http.get(url, timeout=60)
    assert listing.status_code == 200 and "<option >deny-asset-ip</option>" in listing.text.replace("<option selected", "<option ")
    report = sam.http.get(url, params={"candidate": "deny-asset-ip"}, timeout=300)
    assert report.status_code == 200, report.text[-2000:]
    flips = int(re.search(r'id="allow-to-deny">(\d+)<', report.text).group(1))
    assert flips >= 3 and "asset_ip_column" in report.text
    traversal = sam.http.get(url, params={"candidate": "../../etc"}, timeout=60)
    assert traversal.status_code == 400 and "choose one from the list" in traversal.text
    broken = sam.http.get(url, params={"candidate": "broken"}, timeout=60)
    assert broken.status_code == 400 and str(root) not in broken.text  # a clear error, no storage path
    carol = review_room.login("carol").http.get(url, params={"candidate": "deny-asset-ip"}, timeout=60)
    assert carol.status_code == 403 and "allow-to-deny" not in carol.text
