"""Two-person release through the real services: a real JupyterHub with the broker and the review
service (the package's ``review_room``), real Hub OAuth, Playwright driving Debian's chromium.

carol (a data scientist, made a member of remediation-acme here) asks for a release through the
broker with her Hub token; sam and sasha (security) see the object, its checks and the queries
behind it and decide in the review UI; carol downloads the released bytes, whose SHA-256 the
registry recorded. sam, asking for a release himself, gets no approve button and a 403 when he
posts anyway; carol cannot open the security pages nor anyone else's release.
"""

from __future__ import annotations

import base64
import hashlib
import re

import polars as pl
import pytest
import requests

from dataroom.registry import Registry
from dataroom.registry.releases import ReleaseRegistry
from dataroom.settings import Settings
from tests.support.browser import ARTIFACTS, hub_login, launched_chromium

PROJECT = "remediation-acme"
SQL = "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1 ORDER BY 1"


def xsrf(page_html: str) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page_html)
    assert match, "page has no XSRF form field"
    return match.group(1)


@pytest.fixture(scope="module")
def members(review_room) -> Registry:
    registry = Registry.from_settings(Settings(home=review_room.home))
    project = registry.project(PROJECT)
    for user in ("carol", "sam"):
        if user not in project.members:
            registry.add_member("sasha", PROJECT, user, note="release tests: a requester")
    return registry


def _token(review_room, name: str) -> str:
    return review_room.login(name).new_token(note="release tests")


def _request_release(review_room, token: str, frame: pl.DataFrame, title: str, query: bool = True) -> dict:
    broker = review_room.hub.broker_url
    headers = {"Authorization": f"token {token}"}
    ids = []
    if query:
        answer = requests.post(broker + "v1/query", json={"project": PROJECT, "sql": SQL}, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        ids = [answer.headers["X-Dataroom-Decision-Id"]]
    body = {"project": PROJECT, "title": title, "justification": "for the quarterly report", "kind": "table",
            "data": base64.b64encode(frame.write_csv().encode()).decode(), "decision_ids": ids}
    filed = requests.post(broker + "v1/releases", json=body, headers=headers, timeout=60)
    assert filed.status_code == 201, filed.text
    return filed.json()["release"]


def test_two_reviewers_release_and_only_then_the_requester_downloads(review_room, members) -> None:
    carol, sam, sasha = (review_room.login(n) for n in ("carol", "sam", "sasha"))
    frame = pl.DataFrame({"severity": ["critical", "high", "low"], "n": [40, 25, 3]})
    release = _request_release(review_room, carol.new_token(note="t"), frame, "Severity counts")
    rid = release["id"]
    page_url = review_room.review_url + f"releases/{rid}"

    page = sam.http.get(page_url, timeout=30)
    assert page.status_code == 200
    assert 'id="approve"' in page.text and 'class="flagged"' in page.text  # the cell of 3 is marked
    assert release["decision_ids"][0] in page.text  # the query behind it, linked to its audit record
    assert f'href="/services/review/queries/{release["decision_ids"][0]}"' in page.text

    # carol: not the security pages, not yet a download
    assert carol.http.get(page_url, timeout=30).status_code == 403
    assert carol.http.get(review_room.review_url + "releases", timeout=30).status_code == 403
    assert carol.http.get(page_url + "/download", timeout=30).status_code == 409

    # a failed check needs a note; then one approval is not enough
    refused = sam.http.post(page_url + "/approve", data={"_xsrf": xsrf(page.text), "note": ""}, timeout=30)
    assert refused.status_code == 400 and "needs a note" in refused.text
    one = sam.http.post(page_url + "/approve", data={"_xsrf": xsrf(page.text), "note": "3 is the published figure"}, timeout=30)
    assert one.status_code == 200 and 'id="status">pending' in one.text and 'id="approvals">1' in one.text
    assert 'id="approve"' not in one.text  # sam decided: no second button for him
    assert carol.http.get(page_url + "/download", timeout=30).status_code == 409

    page = sasha.http.get(page_url, timeout=30)
    done = sasha.http.post(page_url + "/approve", data={"_xsrf": xsrf(page.text), "note": "agree"}, timeout=30)
    assert done.status_code == 200 and 'id="status">released' in done.text

    download = carol.http.get(page_url + "/download", timeout=30)
    assert download.status_code == 200
    recorded = ReleaseRegistry(members).get(rid)
    assert hashlib.sha256(download.content).hexdigest() == recorded.released_sha256 == download.headers["X-Dataroom-SHA256"] == release["sha256"]
    assert pl.read_csv(download.content).equals(frame)
    assert "attachment" in download.headers["Content-Disposition"]
    assert [e.kind for e in recorded.events] == ["requested", "approved", "approved", "released", "downloaded"]
    mine = carol.http.get(review_room.review_url + "releases/mine", timeout=30)
    assert mine.status_code == 200 and f'data-release-id="{rid}"' in mine.text


def test_the_requester_cannot_approve_and_others_cannot_download(review_room, members) -> None:
    carol, sam, sasha = (review_room.login(n) for n in ("carol", "sam", "sasha"))
    release = _request_release(review_room, sam.new_token(note="t"), pl.DataFrame({"severity": ["high"], "n": [25]}), "sam's table")
    page_url = review_room.review_url + f"releases/{release['id']}"
    page = sam.http.get(page_url, timeout=30)
    assert page.status_code == 200 and 'id="approve"' not in page.text and "two other security reviewers decide" in page.text
    token = sam.http.cookies.get("_xsrf", path="/services/review/")  # the form is not there for him; the cookie's token is
    forced = sam.http.post(page_url + "/approve", data={"_xsrf": token, "note": "mine, fine"}, timeout=30)
    assert forced.status_code == 403
    assert carol.http.get(page_url + "/download", timeout=30).status_code == 403  # not hers, and she is not security
    # sasha rejects: it never downloads, not even for its requester
    page = sasha.http.get(page_url, timeout=30)
    rejected = sasha.http.post(page_url + "/reject", data={"_xsrf": xsrf(page.text), "note": "asset-level detail"}, timeout=30)
    assert rejected.status_code == 200 and 'id="status">rejected' in rejected.text
    assert sam.http.get(page_url + "/download", timeout=30).status_code == 409
    assert [e.kind for e in ReleaseRegistry(members).get(release["id"]).events] == ["requested", "rejected"]


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def test_reviewers_approve_in_a_real_browser(review_room, members, browser) -> None:
    carol = review_room.login("carol")
    release = _request_release(review_room, carol.new_token(note="t"), pl.DataFrame({"severity": ["critical", "high"], "n": [40, 25]}), "Browser release")
    for n, reviewer in enumerate(("sam", "sasha"), start=1):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        hub_login(page, review_room.hub_url, reviewer, review_room.password)
        page.goto(review_room.review_url + "releases")
        page.click(f'tr.release-row[data-release-id="{release["id"]}"] a')
        page.wait_for_load_state()
        assert page.text_content("#requester") == "carol"
        assert page.locator("#preview tr").count() == 3 and page.locator("#checks .check-row").count() >= 4
        page.screenshot(path=str(ARTIFACTS / f"release-{n}-{reviewer}-before.png"), full_page=True)
        page.fill("#approve-form textarea[name=note]", f"{reviewer}: counts of 25 and more, no identifiers")
        page.click("#approve")
        page.wait_for_load_state()
        assert page.text_content("#approvals") == str(n)
        page.screenshot(path=str(ARTIFACTS / f"release-{n}-{reviewer}-after.png"), full_page=True)
        if n == 2:
            assert page.text_content("#status") == "released" and page.locator("#download").count() == 1
        context.close()
    download = carol.http.get(review_room.review_url + f"releases/{release['id']}/download", timeout=30)
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == release["sha256"]


def test_the_broker_refuses_unauthenticated_oversized_and_malformed_release_requests(review_room, members) -> None:
    url = review_room.hub.broker_url + "v1/releases"
    headers = {"Authorization": f"token {_token(review_room, 'carol')}"}
    body = {"project": PROJECT, "title": "t", "justification": "j", "kind": "text", "decision_ids": []}
    assert requests.post(url, json={**body, "data": "aGk="}, timeout=60).status_code == 401
    just_over = requests.post(url, json={**body, "data": base64.b64encode(b"a" * (5 * 1024 * 1024 + 1)).decode()}, headers=headers, timeout=60)
    assert just_over.status_code == 400 and "at most 5 MiB" in just_over.json()["message"]
    huge = requests.post(url, data=b"x" * (8 * 1024 * 1024), headers=headers, timeout=60)
    assert huge.status_code == 413
    assert requests.post(url, data=b"{not json", headers=headers, timeout=60).status_code == 400
    assert requests.post(url, json={**body, "kind": "video", "data": "aGk="}, headers=headers, timeout=60).status_code == 400
    mallory = requests.post(url, json={**body, "data": "aGk="}, headers={"Authorization": f"token {_token(review_room, 'mallory')}"}, timeout=60)
    assert mallory.status_code == 403  # not a member of the project
