"""The review service over real HTTP: a real JupyterHub, real Hub OAuth, the real service process.

Users log in through the Hub's login form (requests sessions), then open the service through the
Hub's proxy exactly as a browser would. Data is written by an in-process QueryService and Registry
over the same $DATAROOM_HOME as the running service.
"""

from __future__ import annotations

import re
import uuid

import pytest

from dataroom.audit import AuditLog
from dataroom.audit.registry_events import registry_stream
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import Registry
from dataroom.settings import Settings


@pytest.fixture(scope="module")
def svc(review_room):
    service = QueryService(Settings(home=review_room.home))
    yield service
    service.close()


@pytest.fixture(scope="module")
def sam(review_room):
    return review_room.login("sam")


def xsrf(page_html: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page_html)
    assert match, "page has no XSRF form field"
    return match.group(1)


def new_project_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_deny_everyone_outside_the_security_group(review_room):
    import requests

    anonymous = requests.get(review_room.review_url + "queries", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]
    # alice has no access scope for the service: the Hub itself refuses the OAuth authorisation
    alice = review_room.login("alice").http.get(review_room.review_url + "queries", timeout=30)
    assert alice.status_code == 403 and "/hub/api/oauth2/authorize" in alice.url
    assert "Query log" not in alice.text
    # carol holds the access scope but is not in the security group: the service refuses her itself
    carol = review_room.login("carol").http.get(review_room.review_url + "queries", timeout=30)
    assert carol.status_code == 403 and carol.url.endswith("/services/review/queries")
    assert "carol may not use the security review: only members of the security group may." in carol.text
    assert "Query log" not in carol.text


def test_allow_security_to_filter_the_query_log_and_open_a_record(review_room, svc, sam):
    denied = svc.run("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    allowed = svc.run("alice", "remediation-acme", "SELECT count(*) AS n FROM acme.findings")
    bob_denied = svc.run("bob", "remediation-acme", "SELECT * FROM globex.findings")
    assert (denied.outcome, allowed.outcome, bob_denied.outcome) == (Outcome.DENIED, Outcome.ALLOWED, Outcome.DENIED)

    page = sam.http.get(review_room.review_url + "queries", params={"user": "alice", "decision": "denied"}, timeout=30)
    assert page.status_code == 200
    listed = re.findall(r'class="query-row" data-decision-id="([^"]+)"', page.text)
    assert denied.decision_id in listed
    assert allowed.decision_id not in listed and bob_denied.decision_id not in listed
    assert 'signed in as <b id="who">sam</b>' in page.text

    tenant = sam.http.get(review_room.review_url + "queries", params={"tenant": "globex"}, timeout=30)
    globex = re.findall(r'data-decision-id="([^"]+)"', tenant.text)  # (other tests' globex queries may be listed too)
    assert bob_denied.decision_id in globex and denied.decision_id not in globex and allowed.decision_id not in globex
    bad = sam.http.get(review_room.review_url + "queries", params={"since": "not-a-date"}, timeout=30)
    assert bad.status_code == 400 and "is not a date" in bad.text

    detail = sam.http.get(review_room.review_url + f"queries/{denied.decision_id}", timeout=30)
    assert detail.status_code == 200
    assert "column acme.findings.analyst_email is PII" in detail.text
    assert "pii_column" in detail.text and "&quot;prev_hash&quot;" in detail.text
    missing = sam.http.get(review_room.review_url + f"queries/{uuid.uuid4()}", timeout=30)
    assert missing.status_code == 404


def test_summaries_and_charts(review_room, svc, sam):
    svc.run("mallory", "remediation-acme", "SELECT count(*) FROM acme.findings")
    page = sam.http.get(review_room.review_url + "summary", timeout=30)
    assert page.status_code == 200
    user_table = page.text.split('id="summary-user"')[1].split("</table>")[0]
    assert ">mallory</a>" in user_table and ">alice</a>" in user_table
    chart = sam.http.get(review_room.review_url + "charts/outcomes-user.svg", timeout=30)
    assert chart.status_code == 200 and chart.headers["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in chart.content and b"mallory" in chart.content
    rows = sam.http.get(review_room.review_url + "charts/rows-project.svg", params={"since": "2000-01-01"}, timeout=30)
    assert rows.status_code == 200 and b"remediation-acme" in rows.content


def test_approve_and_reject_with_segregation_of_duties_through_the_ui(review_room, svc, sam):
    registry = Registry.from_settings(Settings(home=review_room.home))
    mine = new_project_id("sam-own")
    theirs = new_project_id("alice-globex")
    registry.propose("sam", mine, justification="security looks at acme assets", tenants=["acme"], tables=["acme.assets"])
    registry.propose("alice", theirs, justification="globex remediation", tenants=["globex"], tables=["globex.findings"])

    page = sam.http.get(review_room.review_url + "projects", timeout=30)
    assert f'id="pending-{mine}"' in page.text and f'id="pending-{theirs}"' in page.text
    # the requester sees her request but no approve/reject buttons on it (segregation of duties)
    assert f'projects/{mine}/approve"' not in page.text and f'projects/{theirs}/approve"' in page.text
    token = xsrf(page.text)

    # no XSRF token: refused before anything happens
    forged = sam.http.post(review_room.review_url + f"projects/{theirs}/approve", data={"justification": "x"}, allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    # the requester cannot approve their own project from the UI either
    own = sam.http.post(review_room.review_url + f"projects/{mine}/approve", data={"_xsrf": token, "justification": "fine"}, timeout=30)
    assert own.status_code == 403
    assert f"sam requested project {mine} and may not approve it (segregation of duties)" in own.text
    assert registry.project(mine).status == "proposed"
    *_, refusal = registry_stream(AuditLog(Settings(home=review_room.home).audit_file)).records()
    assert (refusal["type"], refusal["actor"], refusal["action"], refusal["target"]) == ("registry_refusal", "sam", "approve_project", mine)

    before = svc.run("alice", theirs, "SELECT count(*) FROM globex.findings")
    assert before.outcome is Outcome.DENIED
    ok = sam.http.post(
        review_room.review_url + f"projects/{theirs}/approve",
        data={"_xsrf": token, "justification": "one tenant, public columns only", "column_classes": ["public"], "tenants": "globex", "tables": "globex.findings"},
        timeout=30,
    )
    assert ok.status_code == 200 and f"approved {theirs}" in ok.text
    info = registry.project(theirs)
    assert (info.status, info.decided_by, info.column_classes, info.decision_note) == ("approved", "sam", ["public"], "one tenant, public columns only")
    assert svc.run("alice", theirs, "SELECT count(*) FROM globex.findings").outcome is Outcome.ALLOWED

    rejected = sam.http.post(review_room.review_url + f"projects/{mine}/reject", data={"_xsrf": token, "reason": "x"}, timeout=30)
    assert rejected.status_code == 403 and "may not reject it" in rejected.text
    sasha = review_room.login("sasha")
    page = sasha.http.get(review_room.review_url + "projects", timeout=30)
    done = sasha.http.post(review_room.review_url + f"projects/{mine}/reject", data={"_xsrf": xsrf(page.text), "reason": "use the asset export instead"}, timeout=30)
    assert done.status_code == 200 and registry.project(mine).status == "rejected"

    revoked = sam.http.post(review_room.review_url + f"projects/{theirs}/revoke", data={"_xsrf": token, "reason": "ended"}, timeout=30)
    assert revoked.status_code == 200
    assert svc.run("alice", theirs, "SELECT count(*) FROM globex.findings").outcome is Outcome.DENIED


def test_production_phase_approval_through_the_ui(review_room, svc, sam):
    registry = Registry.from_settings(Settings(home=review_room.home))
    q = svc.run("alice", "remediation-acme", "SELECT cvss FROM acme.findings LIMIT 5")
    h = registry.register_hypothesis("alice", "remediation-acme", "CVSS drives remediation time", [q.decision_id])
    registry.advance("alice", h.id, "3")
    registry.advance("alice", h.id, "4")
    registry.advance("alice", h.id, "5A", note="internal flag")
    # sam becomes a member of a project (added by sasha) and authors a hypothesis there
    project = new_project_id("sam-member")
    registry.propose("bob", project, justification="acme assets", tenants=["acme"], tables=["acme.assets"])
    registry.approve("sasha", project, justification="ok")
    registry.add_member("sasha", project, "sam")
    q2 = svc.run("sam", project, "SELECT os FROM acme.assets LIMIT 3")
    own = registry.register_hypothesis("sam", project, "Windows hosts patch slower", [q2.decision_id])
    registry.advance("sam", own.id, "3")
    registry.advance("sam", own.id, "4")
    registry.advance("sam", own.id, "5A")

    page = sam.http.get(review_room.review_url + "hypotheses", timeout=30)
    assert f'id="hypothesis-{h.key}"' in page.text
    assert f'hypotheses/{own.key}/approve"' not in page.text and f'hypotheses/{h.key}/approve"' in page.text  # no button on his own
    token = xsrf(page.text)
    refused = sam.http.post(review_room.review_url + f"hypotheses/{own.key}/approve", data={"_xsrf": token, "note": "mine"}, timeout=30)
    assert refused.status_code == 403 and f"sam is the author of {own.key}" in refused.text
    assert registry.hypothesis(own.id).phase == "pre_production_testing"
    ok = sam.http.post(review_room.review_url + f"hypotheses/{h.key}/approve", data={"_xsrf": token, "note": "flag is staff-only"}, timeout=30)
    assert ok.status_code == 200
    assert registry.hypothesis(h.id).transitions[-1].approver == "sam"
    assert registry.hypothesis(h.id).phase == "production_feature_flagged"


def test_alerts_and_chain_status(review_room, svc, sam):
    (review_room.home / "alerts.toml").write_text("[denied_burst]\ncount = 3\nwindow_s = 600\n")
    for _ in range(3):
        svc.run("mallory", "remediation-benchmark", "SELECT count(*) FROM acme.findings")
    page = sam.http.get(review_room.review_url + "alerts", timeout=30)
    assert page.status_code == 200
    assert "mallory had 3 denied queries within 600 s (threshold 3)" in page.text

    chain = sam.http.get(review_room.review_url + "chain", timeout=30)
    assert "audit chain OK" in chain.text
    audit_file = review_room.home / "audit" / "audit.jsonl"
    original = audit_file.read_bytes()
    try:
        audit_file.write_bytes(original.replace(b"analyst_email", b"analyst_xmail", 1))
        broken = sam.http.get(review_room.review_url + "chain", timeout=30)
        assert "audit chain BROKEN at record seq=" in broken.text
        assert '<span class="chip broken">BROKEN</span>' in broken.text
    finally:
        audit_file.write_bytes(original)
    assert "audit chain OK" in sam.http.get(review_room.review_url + "chain", timeout=30).text

