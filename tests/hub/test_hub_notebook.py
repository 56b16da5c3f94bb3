"""The example notebook runs top to bottom in alice's spawned server, against the demo data."""

from __future__ import annotations

import nbformat
from hub_support import REPO, RunningRoom, kernel_json

from dataroom.monitoring.demo import register_demo_model
from dataroom.registry import Registry
from dataroom.settings import Settings

NOTEBOOK = REPO / "notebooks" / "remediation_by_tenant.ipynb"


def test_remediation_by_tenant_runs_top_to_bottom_in_a_spawned_kernel(room: RunningRoom, alice, alice_kernel) -> None:
    # the copy the spawner put into alice's directory is the repository's notebook
    served = alice.user.contents(alice.token, NOTEBOOK.name)
    notebook = nbformat.from_dict(served["content"])
    assert [c.source for c in notebook.cells] == [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells]
    # what `dataroom demo-data` adds to the demo files: the demo model, its hypothesis in 5A
    settings = Settings(home=room.home)
    demo_model = register_demo_model(settings)

    before = len(room.records())
    outputs = {}
    before_models = None
    for cell in notebook.cells:
        if cell.cell_type == "code":
            if "register_model(" in cell.source:
                before_models = len(room.records())
            outputs[cell.id] = alice_kernel.execute(cell.source).raise_for_error()
    assert before_models is not None
    results = list(outputs.values())

    # the plots were drawn, and the denied query was shown with its explanation without failing
    assert sum("image/png" in o["data"] for result in results for o in result.outputs) >= 2
    denial = next(r for cell, r in outputs.items() if "analyst_email" in next(c.source for c in notebook.cells if c.get("id") == cell))
    assert "query denied by policy" in denial.stdout and "pii_column" in denial.stdout

    fits = kernel_json(alice_kernel, "import json; print(json.dumps(fits.select('tenant', 'r2', 'rmse_days').to_dicts()))")
    r2 = {row["tenant"]: row["r2"] for row in fits}
    assert r2["acme"] > 0.9 and r2["globex"] > 0.6  # remediation days follow CVSS ...
    assert r2["initech"] < 0.05  # ... except at initech, where the fit collapses
    assert all(row["rmse_days"] > 0 for row in fits)

    records = room.records()
    new = [r for r in records[before:] if r["type"] == "decision"]
    exploration = [r for r in records[before:before_models] if r["type"] == "decision"]
    # every query alice made went through the broker as alice, and was audited; the monitor's as svc-monitor
    assert {r["input"]["user"]["name"] for r in new} == {"alice", "svc-monitor"}
    assert {r["input"]["client"] for r in new if r["input"]["user"]["name"] == "alice"} == {"broker"}
    monitor = [r for r in new if r["input"]["user"]["name"] == "svc-monitor"]
    assert monitor and {(r["input"]["project_id"], r["input"]["client"], r["outcome"]) for r in monitor} == {("model-monitoring", "monitor", "allowed")}
    assert [r["outcome"] for r in exploration].count("denied") == 1

    # the hypothesis cell registered a hypothesis linking exactly the exploration queries
    hypothesis = kernel_json(alice_kernel, "import json; print(json.dumps(hypothesis))")
    assert hypothesis["project_id"] == "remediation-by-tenant" and hypothesis["author"] == "alice"
    assert hypothesis["phase"] == "data_exploration"
    assert sorted(hypothesis["decision_ids"]) == sorted(r["decision_id"] for r in exploration)

    # the monitoring section: a new version of the demo model, per-tenant alerts, the quarantine
    registered = kernel_json(alice_kernel, "import json; print(json.dumps(registered))")
    assert (registered["name"], registered["version"], registered["hypothesis"]) == (demo_model.name, demo_model.version + 1, demo_model.hypothesis)
    alerts = kernel_json(alice_kernel, "import json; print(json.dumps(alerts.select('segment', 'kind', 'window_start').to_dicts()))")
    kinds = {(a["segment"], a["kind"]) for a in alerts}
    assert ("initech", "performance") in kinds and ("globex", "drift") in kinds and not any(s == "acme" for s, _ in kinds)
    segments = kernel_json(alice_kernel, "import json; print(json.dumps(sorted(scores['segment'].unique().to_list())))")
    assert segments == ["acme", "globex", "initech"]
    last = list(outputs.values())[-1]
    assert "tenant_quarantined" in last.stdout and "data_exploration" in last.stdout
    quarantined = [r for r in new if r["input"]["user"]["name"] == "alice" and r["outcome"] == "denied"][-1]
    assert [x["code"] for x in quarantined["result"]["reasons"]] == ["tenant_quarantined"]

    # leave the room as the other hub tests expect it: sam acknowledges, the tenants are readable again
    registry = Registry.from_settings(settings)
    for alert in registry.models.alerts(open_only=True):
        if alert.acknowledged_at is None and any(a.open for a in registry.models.alerts(open_only=True) if a.id == alert.id):
            registry.models.acknowledge("sam", alert.id, "hub notebook test: reviewed")
    assert registry.quarantines("remediation-by-tenant") == []
