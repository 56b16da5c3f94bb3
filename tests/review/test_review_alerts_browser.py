"""A real browser (Playwright, Debian's chromium) on the alerts page of a real review service behind a real Hub.

After a burst of 300 denied queries the open alert is on top with high severity and its count; sam
acknowledges it with a comment, and the acknowledgement is an audit event in the signed registry
stream. alice (no access to the review service) gets 403 and no button, also when she posts the
action directly; carol (the access scope, not the security group) is refused by the service's own
check, and her attempt is audited under her name. Screenshots land in test-artifacts/review/.
"""

from __future__ import annotations

import time
import tomllib
import uuid

import pytest
import tomli_w

from dataroom.alerts.lifecycle import alert_events
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings
from tests.support.browser import ARTIFACTS, hub_login, launched_chromium


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def test_sam_acknowledges_a_high_alert_alice_and_carol_cannot(review_room, browser):
    settings = Settings(home=review_room.home)
    attacker = f"dave-{uuid.uuid4().hex[:6]}"  # a new scientist with no history in the shared room: the count is exactly this burst
    catalog_file = review_room.home / "catalog.toml"
    catalog = tomllib.loads(catalog_file.read_text())
    catalog["users"][attacker] = {"groups": ["data-scientists"], "email": f"{attacker}@dataroom.example"}
    catalog_file.write_text(tomli_w.dumps(catalog))
    svc = QueryService(settings)
    try:
        for _ in range(300):
            assert svc.run(attacker, "remediation-acme", "SELECT analyst_email FROM acme.findings").outcome is Outcome.DENIED
    finally:
        svc.close()

    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    hub_login(page, review_room.hub_url, "sam", review_room.password)
    # The running room evaluates alerts on its own every DATAROOM_ALERT_INTERVAL_S: wait for its
    # next pass (reloading, as a reviewer would), however busy the machine is.
    deadline = time.monotonic() + 90
    while True:
        response = page.goto(review_room.review_url + "alerts")
        assert response is not None and response.status == 200, review_room.log_tail()
        top = page.locator("#lifecycle tr.alert-row").filter(has_text=attacker)
        if top.count() and top.locator(".count").text_content() == "300" or time.monotonic() > deadline:
            break
        time.sleep(1)
    alert_id = top.get_attribute("data-alert-id")
    assert top.get_attribute("data-status") == "open"
    assert top.locator(".severity").text_content() == "high"
    assert top.locator(".count").text_content() == "300"
    assert "Burst of denied queries" in top.text_content()
    assert page.locator("#lifecycle tr.alert-row").first.get_attribute("data-alert-id") == alert_id  # the open high alert is on top
    page.screenshot(path=str(ARTIFACTS / "10-alerts-open-high.png"), full_page=True)

    top.locator(".ack-form input[name=comment]").fill("probing PII columns; session suspended, talking to their lead")
    top.locator(".ack-form button[type=submit]").click()
    page.wait_for_load_state()
    assert f"acknowledged {alert_id}" in page.text_content("#flash-info")
    row = page.locator(f'tr.alert-row[data-alert-id="{alert_id}"]')
    assert row.get_attribute("data-status") == "acknowledged"
    assert row.locator(".ack-form").count() == 0 and row.locator(".resolve-form").count() == 1
    assert "acknowledged by sam" in row.locator(".history").text_content()
    page.screenshot(path=str(ARTIFACTS / "11-alert-acknowledged.png"), full_page=True)
    context.close()

    acks = [e for e in alert_events(settings) if e["step"] == "acknowledged" and e["alert_id"] == alert_id]
    assert [(e["actor"], e["comment"], e["severity"], e["count"]) for e in acks] == [
        ("sam", "probing PII columns; session suspended, talking to their lead", "high", 300)
    ]

    # alice: no access to the review service at all: 403, no button, and a direct POST is 403 too
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    page = context.new_page()
    hub_login(page, review_room.hub_url, "alice", review_room.password)
    response = page.goto(review_room.review_url + "alerts")
    assert response is not None and response.status == 403
    assert page.locator(".ack-form").count() == 0 and page.locator("#lifecycle").count() == 0
    page.screenshot(path=str(ARTIFACTS / "12-alice-alerts-403.png"), full_page=True)
    posted = page.request.post(review_room.review_url + f"alerts/{alert_id}/resolve", form={"comment": "nothing to see"}, max_redirects=0)
    assert posted.status == 403
    context.close()

    # carol: may reach the service (access scope), is not in the security group: the page is 403 and so is the action
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    page = context.new_page()
    hub_login(page, review_room.hub_url, "carol", review_room.password)
    response = page.goto(review_room.review_url + "alerts")
    assert response is not None and response.status == 403
    assert page.locator(".ack-form").count() == 0
    # The token the review service itself would check: its own _xsrf cookie (the most specific one
    # sent to its URL; the Hub's cookie of the same name must not be mixed in), or one we set.
    sent = sorted((c for c in context.cookies(review_room.review_url) if c["name"] == "_xsrf"), key=lambda c: len(c.get("path", "")))
    xsrf = sent[-1]["value"] if sent else "2|00000000|00000000000000000000000000000000|1"
    if not sent:
        context.add_cookies([{"name": "_xsrf", "value": xsrf, "url": review_room.review_url}])
    posted = page.request.post(review_room.review_url + f"alerts/{alert_id}/resolve", form={"comment": "nothing to see", "_xsrf": xsrf}, max_redirects=0)
    assert posted.status == 403
    context.close()

    refused = [(e["actor"], e["step"]) for e in alert_events(settings) if e["step"].endswith("_refused") and e.get("alert_id") == alert_id]
    assert ("carol", "resolve_refused") in refused
    status = [e["status"] for e in alert_events(settings) if e.get("alert_id") == alert_id and "status" in e]
    assert status[-1] == "acknowledged"  # nobody but sam changed it
