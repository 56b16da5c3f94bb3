"""A real browser (Playwright driving Debian's chromium) against a real JupyterHub and review service.

sam logs in through the Hub's login page, opens the review UI, filters the query log to alice's
denied queries, opens one, and approves a pending project; alice, doing the same, gets 403.
Screenshots land in test-artifacts/review/ (git-ignored).
"""

from __future__ import annotations

import uuid

import pytest

from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import Registry
from dataroom.settings import Settings
from tests.support.browser import ARTIFACTS, hub_login, launched_chromium

@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def test_sam_reviews_and_approves_alice_gets_403(review_room, browser):
    svc = QueryService(Settings(home=review_room.home))
    try:
        denied = svc.run("alice", "remediation-acme", "SELECT analyst_name, cvss FROM acme.findings")
        svc.run("alice", "remediation-acme", "SELECT severity, count(*) FROM acme.findings GROUP BY 1")
        svc.run("bob", "remediation-acme", "SELECT owner_email FROM acme.assets")
    finally:
        svc.close()
    assert denied.outcome is Outcome.DENIED
    registry = Registry.from_settings(Settings(home=review_room.home))
    project_id = f"initech-{uuid.uuid4().hex[:6]}"
    registry.propose(
        "alice", project_id, justification="Does initech's bimodal remediation time come from two teams?",
        description="initech remediation", tenants=["initech"], tables=["initech.findings", "reference.cve"],
    )

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    hub_login(page, review_room.hub_url, "sam", review_room.password)
    response = page.goto(review_room.review_url)
    assert response is not None and response.status == 200
    assert page.text_content("#who") == "sam"
    page.screenshot(path=str(ARTIFACTS / "01-sam-query-log.png"), full_page=True)

    # filter to alice's denied queries
    page.select_option("#filters select[name=user]", "alice")
    page.select_option("#filters select[name=decision]", "denied")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("tr.query-row")
    ids = [rows.nth(i).get_attribute("data-decision-id") for i in range(rows.count())]
    assert denied.decision_id in ids
    assert all(o == "denied" for o in page.locator("tr.query-row .chip").all_text_contents())
    assert set(page.locator("tr.query-row td:nth-child(3)").all_text_contents()) == {"alice"}
    page.screenshot(path=str(ARTIFACTS / "02-alice-denied-filter.png"), full_page=True)

    # open one: its full record and reasons
    page.click(f'tr.query-row[data-decision-id="{denied.decision_id}"] td:first-child a')
    page.wait_for_load_state()
    assert page.text_content("#decision-id") == denied.decision_id
    assert page.text_content("#outcome") == "denied"
    reasons = page.text_content("#reasons")
    assert "column acme.findings.analyst_name is PII" in reasons
    assert '"prev_hash"' in page.text_content("#record")
    page.screenshot(path=str(ARTIFACTS / "03-denied-query-record.png"), full_page=True)

    # approve the pending project
    page.click("header >> text=Projects")
    page.wait_for_load_state()
    card = page.locator(f"#pending-{project_id}")
    assert card.is_visible()
    card.locator("textarea[name=justification]").fill("Single tenant, no PII, 90 days; reviewed with the initech owner.")
    card.locator("input[name=column_classes][value=quasi_identifier]").uncheck()
    page.screenshot(path=str(ARTIFACTS / "04-pending-approval.png"), full_page=True)
    card.locator("form.approve-form button[type=submit]").click()
    page.wait_for_load_state()
    assert f"approved {project_id}" in page.text_content("#flash-info")
    assert page.locator(f"#pending-{project_id}").count() == 0
    assert "approved" in page.text_content(f"#project-{project_id}")
    page.screenshot(path=str(ARTIFACTS / "05-approved.png"), full_page=True)
    info = registry.project(project_id)
    assert (info.status, info.decided_by, info.column_classes) == ("approved", "sam", ["public", "internal"])

    # the charts render (server-side SVG, nothing from the internet)
    page.click("header >> text=Summaries")
    page.wait_for_load_state()
    assert page.locator("img[src*='charts/outcomes-user.svg']").evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(ARTIFACTS / "06-summaries.png"), full_page=True)
    context.close()

    # alice: same steps, 403
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    page = context.new_page()
    hub_login(page, review_room.hub_url, "alice", review_room.password)
    response = page.goto(review_room.review_url)
    assert response is not None and response.status == 403
    assert page.locator("#who").count() == 0
    page.screenshot(path=str(ARTIFACTS / "07-alice-403.png"), full_page=True)
    response = page.goto(review_room.review_url + "projects")
    assert response is not None and response.status == 403
    context.close()
