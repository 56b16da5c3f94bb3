"""The example notebook runs top to bottom in alice's spawned server, against the demo data."""

from __future__ import annotations

import nbformat
from hub_support import REPO, RunningRoom, kernel_json

NOTEBOOK = REPO / "notebooks" / "remediation_by_tenant.ipynb"


def test_remediation_by_tenant_runs_top_to_bottom_in_a_spawned_kernel(room: RunningRoom, alice, alice_kernel) -> None:
    # the copy the spawner put into alice's directory is the repository's notebook
    served = alice.user.contents(alice.token, NOTEBOOK.name)
    notebook = nbformat.from_dict(served["content"])
    assert [c.source for c in notebook.cells] == [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells]

    before = len(room.records())
    outputs = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            outputs.append(alice_kernel.execute(cell.source).raise_for_error())

    # the plot was drawn, and the denied query was shown with its explanation without failing
    assert any("image/png" in o["data"] for result in outputs for o in result.outputs)
    assert "query denied by policy" in outputs[-2].stdout and "pii_column" in outputs[-2].stdout

    fits = kernel_json(alice_kernel, "import json; print(json.dumps(fits.select('tenant', 'r2', 'rmse_days').to_dicts()))")
    r2 = {row["tenant"]: row["r2"] for row in fits}
    assert r2["acme"] > 0.9 and r2["globex"] > 0.6  # remediation days follow CVSS ...
    assert r2["initech"] < 0.05  # ... except at initech, where the fit collapses
    assert all(row["rmse_days"] > 0 for row in fits)

    # every query the notebook made went through the broker as alice, and was audited
    new = [r for r in room.records()[before:] if r["type"] == "decision"]
    assert new and {r["input"]["user"]["name"] for r in new} == {"alice"}
    assert {r["input"]["client"] for r in new} == {"broker"}
    assert sorted(r["outcome"] for r in new).count("denied") == 1

    # the last cell registered a hypothesis linking exactly those queries
    hypothesis = kernel_json(alice_kernel, "import json; print(json.dumps(hypothesis))")
    assert hypothesis["project_id"] == "remediation-benchmark" and hypothesis["author"] == "alice"
    assert hypothesis["phase"] == "data_exploration"
    assert sorted(hypothesis["decision_ids"]) == sorted(r["decision_id"] for r in new)
