"""Model monitoring in the running room: the broker's model routes and the review UI's monitoring page.

alice (the demo model's author) asks the real broker to run the monitor of ``remediation-days-linear``:
the broker runs it as the monitor's service principal. sam opens the Monitoring page in a real
browser (Playwright + Debian's chromium): the per-tenant charts render and the alerts are listed;
he acknowledges initech's alert and the quarantine is lifted. Screenshots land in
test-artifacts/review/.
"""

from __future__ import annotations

import pytest
import requests

from dataroom.audit import AuditLog
from dataroom.monitoring.demo import DEMO_MODEL, register_demo_model
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import Registry
from dataroom.settings import Settings
from tests.support.browser import ARTIFACTS, hub_login, launched_chromium


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


def test_monitor_through_the_broker_then_acknowledge_in_the_browser(review_room, browser):
    settings = Settings(home=review_room.home)
    model = register_demo_model(settings)  # what `dataroom demo-data` does
    registry = Registry.from_settings(settings)
    broker = review_room.hub.broker_url

    # the broker's routes, with alice's Hub token: her models, a monitoring run, the stored results
    alice = review_room.login("alice").new_token(note="monitoring test")
    headers = {"Authorization": f"token {alice}"}
    listed = requests.get(broker + "v1/models", headers=headers, timeout=60)
    assert listed.status_code == 200 and [m["name"] for m in listed.json()["models"]] == [DEMO_MODEL]
    assert requests.post(broker + "v1/models/no-such-model/monitoring", headers=headers, timeout=60).status_code == 404
    mallory = review_room.login("mallory").new_token(note="monitoring test")
    foreign = requests.get(broker + f"v1/models/{DEMO_MODEL}/monitoring", headers={"Authorization": f"token {mallory}"}, timeout=60)
    assert foreign.status_code == 404  # not her project: the same answer as an unknown model
    run = requests.post(broker + f"v1/models/{DEMO_MODEL}/monitoring", headers=headers, timeout=300)
    assert run.status_code == 200, run.text
    kinds = {(a["segment"], a["kind"]) for a in run.json()["run"]["alerts"]}
    assert ("initech", "performance") in kinds and ("globex", "drift") in kinds and not any(s == "acme" for s, _ in kinds)
    stored = requests.get(broker + f"v1/models/{DEMO_MODEL}/monitoring", headers=headers, timeout=60).json()
    assert {w["segment"] for w in stored["windows"]} == {"acme", "globex", "initech"}
    # the run's queries were the monitor's, in its own project, decided and audited in the broker
    decisions = {r["decision_id"]: r for r in AuditLog(review_room.home / "audit" / "audit.jsonl").records() if r.get("type") == "decision"}
    for d in run.json()["run"]["decision_ids"]:
        assert decisions[d]["input"]["user"]["name"] == "svc-monitor" and decisions[d]["input"]["project_id"] == "model-monitoring"
    svc = QueryService(settings)
    try:
        denied = svc.run("alice", "remediation-by-tenant", "SELECT count(*) FROM initech.findings")
        assert [r.code for r in denied.reasons] == ["tenant_quarantined"]

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        hub_login(page, review_room.hub_url, "sam", review_room.password)
        response = page.goto(review_room.review_url + "monitoring")
        assert response is not None and response.status == 200
        charts = page.locator(f"#model-{model.name} img.monitoring-chart")
        assert charts.count() == 3
        for i in range(3):
            charts.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=charts.nth(i).element_handle())
        rows = page.locator("tr.model-alert")
        segments = {rows.nth(i).get_attribute("data-segment") for i in range(rows.count())}
        assert segments == {"initech", "globex"}
        page.screenshot(path=str(ARTIFACTS / "10-monitoring.png"), full_page=True)

        initech = page.locator('tr.model-alert[data-segment="initech"][data-kind="performance"]')
        assert "quarantined" in initech.text_content()
        initech.locator("input[name=note]").fill("initech patches on a fixed cycle: excluded from the model, retraining")
        initech.locator("form.ack-form button[type=submit]").click()
        page.wait_for_load_state()
        assert "acknowledged: remediation-days-linear on initech" in page.text_content("#flash-info")
        assert "acknowledged" in page.locator('tr.model-alert[data-segment="initech"][data-kind="performance"]').text_content()
        assert "sam" in page.locator('tr.model-alert[data-segment="initech"][data-kind="performance"]').text_content()
        assert "quarantined" in page.locator('tr.model-alert[data-segment="globex"]').first.text_content()
        page.screenshot(path=str(ARTIFACTS / "11-monitoring-acknowledged.png"), full_page=True)
        context.close()

        assert svc.run("alice", "remediation-by-tenant", "SELECT count(*) FROM initech.findings").outcome is Outcome.ALLOWED
        assert [q["tenant"] for q in registry.quarantines("remediation-by-tenant")] == ["globex"]
    finally:
        svc.close()
        for alert in registry.models.alerts(open_only=True):  # leave the shared room as the other tests expect it
            if any(a.id == alert.id for a in registry.models.alerts(open_only=True)):
                registry.models.acknowledge("sasha", alert.id, "test clean-up")
