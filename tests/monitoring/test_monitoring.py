"""Model monitoring on the demo data, through the real pipeline (DuckDB workers, Rego, audit, registry).

initech raises a performance alert at its onboarding window, globex's late shift a drift alert,
acme nothing; the hypothesis goes back to Data Exploration; the model's project is denied the
quarantined tenant until someone other than the author acknowledges.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from dataroom.audit import AuditLog
from dataroom.cli import main as cli
from dataroom.demo_data import GLOBEX_SHIFT_WEEK, ONBOARDING_WEEK, TIMELINE_START, TIMELINE_WEEKS
from dataroom.monitoring.drift import Bins, drift
from dataroom.monitoring.runner import MonitorRunner
from dataroom.monitoring.windows import DEFAULT_BINS, joint_bins, metrics, parse_windows, window_sql
from dataroom.pipeline import Outcome
from dataroom.registry import Phase, PermissionDenied, Registry
from dataroom.settings import Settings

INITECH_ONBOARDING = TIMELINE_START + dt.timedelta(weeks=ONBOARDING_WEEK["initech"])


def alerts_by(report, segment: str) -> dict[str, str]:
    return {a["kind"]: a["window_start"] for a in report.alerts if a["segment"] == segment}


def test_initech_performance_at_onboarding_globex_drift_late_acme_nothing(monitored):
    report = monitored.report
    assert alerts_by(report, "initech")["performance"] == INITECH_ONBOARDING.isoformat()
    globex_drift = dt.date.fromisoformat(alerts_by(report, "globex")["drift"])
    assert globex_drift >= TIMELINE_START + dt.timedelta(weeks=GLOBEX_SHIFT_WEEK)  # the shift, not noise
    globex_perf = alerts_by(report, "globex").get("performance")
    assert globex_perf is None or dt.date.fromisoformat(globex_perf) > globex_drift  # drift is caught before R² collapses
    assert alerts_by(report, "acme") == {}
    # every window of every tenant was scored, and the stored results say the same
    segments = {w["segment"] for w in report.windows}
    assert segments == {"acme", "globex", "initech"}
    initech_first = min(w["window_start"] for w in report.windows if w["segment"] == "initech")
    assert initech_first == INITECH_ONBOARDING.isoformat()
    acme = [w for w in report.windows if w["segment"] == "acme"]
    assert len(acme) >= 52 and all(w["r2"] > 0.5 for w in acme if w["n"] >= 20)
    stored = monitored.service.registry.models.results(monitored.model.name)
    assert len(stored) == len(report.windows)
    assert {k for k in stored[0]} >= {"segment", "window_start", "n", "r2", "rmse", "mae", "drift"}
    assert set(stored[0]["drift"]) == {"cvss", "remediation_days"}
    assert set(stored[0]["drift"]["cvss"]) >= {"ks", "ks_p", "psi", "wasserstein"}


def test_alert_sends_hypothesis_back_to_data_exploration_naming_it(monitored):
    registry = monitored.service.registry
    h = registry.hypothesis(monitored.model.hypothesis)
    assert h.phase == Phase.DATA_EXPLORATION.value
    back = [t for t in h.transitions if t.to_phase == Phase.DATA_EXPLORATION.value and t.from_phase == Phase.PRODUCTION_FEATURE_FLAGGED.value]
    assert len(back) == 1 and back[0].actor == "system:model-monitor"
    first = monitored.report.alerts[0]
    assert first["alert_id"] in back[0].note and first["rule"] in back[0].note
    # the alerts are in the alert log that `dataroom alerts list` and the review UI read
    from dataroom.alerts import AlertScanner

    logged = {a["alert_id"]: a for a in AlertScanner(monitored.settings).alerts()}
    for a in monitored.report.alerts:
        assert logged[a["alert_id"]]["rule"] in ("model_performance", "model_drift")
        assert logged[a["alert_id"]]["user"] == "svc-monitor"


def test_every_monitoring_query_is_decided_and_audited_as_the_monitor(monitored):
    records = list(AuditLog(monitored.settings.audit_file).records())
    decisions = {r["decision_id"]: r for r in records if r.get("type") == "decision"}
    completions = {r["decision_id"]: r for r in records if r.get("type") == "completion"}
    ids = monitored.report.decision_ids
    assert len(ids) == 4  # the reference bins, then one scan per tenant
    for d in ids:
        record = decisions[d]
        assert record["input"]["user"]["name"] == "svc-monitor" and record["input"]["user"]["groups"] == ["services"]
        assert record["input"]["project_id"] == "model-monitoring" and record["input"]["client"] == "monitor"
        assert record["outcome"] == "allowed"
        assert completions.get(d, {}).get("status") == "executed", [r for r in records if r.get("decision_id") == d]
    # the scans return aggregates, bounded by windows × bins² (two monitored columns) whatever the tenant's size
    assert completions[ids[0]]["rows"] == 1
    assert all(completions[d]["rows"] <= TIMELINE_WEEKS * DEFAULT_BINS**2 for d in ids[1:])


def test_quarantine_denies_the_models_project_until_someone_else_acknowledges(monitored):
    service, registry = monitored.service, monitored.service.registry
    sql = "SELECT count(*) AS n FROM initech.findings WHERE detected_at >= TIMESTAMP '2024-10-01'"
    denied = service.run("alice", "remediation-by-tenant", sql)
    assert denied.outcome is Outcome.DENIED
    assert [r.code for r in denied.reasons] == ["tenant_quarantined"]
    assert "initech" in denied.reasons[0].message and INITECH_ONBOARDING.isoformat() in denied.reasons[0].message
    # other tenants of the project stay readable; other projects are not the model's
    assert service.run("alice", "remediation-by-tenant", "SELECT count(*) FROM acme.findings").outcome is Outcome.ALLOWED
    initech_alert = next(a for a in registry.models.alerts(monitored.model.name) if a.segment == "initech")
    with pytest.raises(PermissionDenied, match="author"):
        registry.models.acknowledge("alice", initech_alert.id, "looks fine to me")
    with pytest.raises(PermissionDenied):
        registry.models.acknowledge("mallory", initech_alert.id, "not my project")
    assert service.run("alice", "remediation-by-tenant", sql).outcome is Outcome.DENIED  # refusals changed nothing
    acked = registry.models.acknowledge("sam", initech_alert.id, "initech's cycle is not CVSS-driven: excluded from the model, retraining")
    assert acked.acknowledged_by == "sam" and acked.quarantined_projects == ["remediation-by-tenant"]
    allowed = service.run("alice", "remediation-by-tenant", sql)
    assert allowed.outcome is Outcome.ALLOWED and allowed.table.column("n")[0].as_py() > 0
    # globex is still quarantined; running the monitor again raises nothing already acknowledged or open
    assert [r.code for r in service.run("alice", "remediation-by-tenant", "SELECT count(*) FROM globex.findings").reasons] == ["tenant_quarantined"]
    again = MonitorRunner(service).run(monitored.model.name)[0]
    assert again.alerts == []
    assert len(again.decision_ids) == 3  # the reference bins are kept: one scan per tenant
    assert service.run("alice", "remediation-by-tenant", sql).outcome is Outcome.ALLOWED


# -- registration refusals: clear errors, nothing stored -------------------------------------------
def _estimator_bytes():
    from sklearn.linear_model import LinearRegression

    from dataroom.monitoring.artifacts import dumps

    return dumps(LinearRegression().fit(np.array([[1.0], [5.0], [9.0]]), np.array([10.0, 45.0, 80.0])))


@pytest.fixture
def fresh_registry(monitored):
    return Registry.from_settings(monitored.settings)


@pytest.fixture
def production_hypothesis(fresh_registry):
    """A new hypothesis of alice's in 5A (sam approved): the demo one went back to phase 2 on the alerts."""
    h = fresh_registry.register_hypothesis("alice", "remediation-by-tenant", "CVSS predicts remediation in acme and globex")
    for phase in ("3", "4", "5A"):
        fresh_registry.advance("alice", h.id, phase)
    return fresh_registry.decide_phase("sam", h.id, approve=True, note="reviewed").key


def _count(registry):
    return len(registry.models.models())


def test_pickle_file_is_refused_and_nothing_is_stored(fresh_registry, monitored, production_hypothesis):
    import pickle

    from sklearn.linear_model import LinearRegression

    before = _count(fresh_registry)
    model = LinearRegression().fit(np.array([[1.0], [2.0]]), np.array([1.0, 2.0]))
    for data, message in ((pickle.dumps(model), "not a skops file"), (b"PK\x03\x04 not really a zip", "not a skops file")):
        with pytest.raises(Exception, match=message):
            _register(fresh_registry, monitored, data, hypothesis=production_hypothesis)
    assert _count(fresh_registry) == before


def test_pii_or_quasi_identifier_feature_is_refused(fresh_registry, monitored, production_hypothesis):
    before = _count(fresh_registry)
    with pytest.raises(Exception, match=r"analyst_email is pii"):
        _register(fresh_registry, monitored, _estimator_bytes(), features=["analyst_email"], hypothesis=production_hypothesis)
    with pytest.raises(Exception, match=r"asset_hostname is quasi_identifier"):
        _register(fresh_registry, monitored, _estimator_bytes(), features=["asset_hostname"], hypothesis=production_hypothesis)
    assert _count(fresh_registry) == before


def test_registration_before_phase_5a_is_refused(fresh_registry, monitored):
    before = _count(fresh_registry)
    h = fresh_registry.register_hypothesis("alice", "remediation-by-tenant", "CVSS predicts remediation in acme")
    with pytest.raises(Exception, match=r"5A or 5B"):
        _register(fresh_registry, monitored, _estimator_bytes(), hypothesis=h.key)
    assert _count(fresh_registry) == before


def test_a_valid_registration_is_a_new_version(fresh_registry, monitored, production_hypothesis):
    info = _register(fresh_registry, monitored, _estimator_bytes(), hypothesis=production_hypothesis, name="remediation-days-v2")
    assert (info.version, info.author, info.features, info.tables) == (1, "alice", ["cvss"], ["acme.findings", "globex.findings", "initech.findings"])
    again = _register(fresh_registry, monitored, _estimator_bytes(), hypothesis=production_hypothesis, name="remediation-days-v2")
    assert again.version == 2


def _register(registry, monitored, data, features=("cvss",), hypothesis=None, name="remediation-days-extra"):
    return registry.models.register(
        "alice", name, data, hypothesis=hypothesis or monitored.model.hypothesis, features=list(features),
        target="remediation_days", reference=("2024-01-01", "2024-07-01"),
    )


# -- the CLI contract -----------------------------------------------------------------------------
def test_cli_monitor_run_json_contract_and_exit_codes(monitored, monkeypatch):
    monkeypatch.setenv("DATAROOM_HOME", str(monitored.home))
    runner = CliRunner()
    result = runner.invoke(cli, ["monitor", "run", "--model", "remediation-days-linear", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == "remediation-days-linear"
    assert {"segment", "window_start", "n", "r2", "rmse", "mae", "drift"} <= set(doc["windows"][0])
    assert isinstance(doc["alerts"], list)
    unknown = runner.invoke(cli, ["monitor", "run", "--model", "no-such-model", "--json"])
    assert unknown.exit_code == 2 and "no model 'no-such-model'" in unknown.stderr
    status = runner.invoke(cli, ["monitor", "status", "--json"], catch_exceptions=False)
    models = json.loads(status.stdout)["models"]
    assert models[0]["model"]["name"] == "remediation-days-linear" and models[0]["windows"] and models[0]["alerts"]
    listed = runner.invoke(cli, ["alerts", "list", "--rule", "model_drift"], catch_exceptions=False)
    assert "globex" in listed.stdout


# -- the engine-side aggregation equals the textbook computation ----------------------------------
@pytest.mark.parametrize("cvss_bins", [9, 45], ids=["joint-group-by", "grouping-sets"])
def test_window_sql_metrics_and_bins_match_numpy(cvss_bins):
    rng = np.random.default_rng(7)
    n = 500
    x = rng.uniform(1, 10, n)
    y = 5 + 8 * x + rng.normal(0, 6, n)
    t = [dt.datetime(2024, 1, 1) + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 21, n)]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA acme; CREATE TABLE acme.findings (detected_at TIMESTAMP, cvss DOUBLE, remediation_days DOUBLE)")
    con.executemany("INSERT INTO acme.findings VALUES (?, ?, ?)", list(zip(t, x.tolist(), y.tolist())))
    linear = {"intercept": 4.0, "coef": [8.5]}
    bins = {"cvss": Bins.over(1, 10, cvss_bins), "remediation_days": Bins.over(0, 100, 10)}
    assert joint_bins(bins) is (cvss_bins == 9)
    rows = con.sql(window_sql("acme.findings", linear, ["cvss"], "remediation_days", "detected_at", bins)).to_arrow_table().to_pylist()
    parsed = parse_windows(rows, ["cvss", "remediation_days"], bins)
    weeks = np.array([(ts.date() - dt.date(2024, 1, 1)).days // 7 for ts in t])
    assert len(parsed.sums) == 3
    for k, start in enumerate(sorted(parsed.sums)):
        sel = weeks == k
        yy, pp = y[sel], 4.0 + 8.5 * x[sel]
        got = metrics(parsed.sums[start])
        assert got["n"] == sel.sum()
        assert got["r2"] == pytest.approx(1 - np.sum((yy - pp) ** 2) / np.sum((yy - yy.mean()) ** 2), abs=1e-5)
        assert got["rmse"] == pytest.approx(np.sqrt(np.mean((yy - pp) ** 2)), abs=1e-5)
        assert got["mae"] == pytest.approx(np.mean(np.abs(yy - pp)), abs=1e-5)
        expected = np.bincount(np.clip(np.floor((x[sel] - 1) / (9 / cvss_bins)).astype(int), 0, cvss_bins - 1), minlength=cvss_bins)
        assert parsed.counts["cvss"][start].tolist() == expected.tolist()


def test_drift_tests_separate_same_from_shifted():
    rng = np.random.default_rng(3)
    b = Bins.over(0, 10, 20)

    def counts(values):
        return np.histogram(np.clip(values, 0, 9.999), bins=20, range=(0, 10))[0].astype(float)

    reference = counts(rng.uniform(0, 10, 2000))
    same = drift(counts(rng.uniform(0, 10, 200)), reference, b)
    shifted = drift(counts(rng.uniform(0, 5, 200)), reference, b)
    assert same["ks_p"] > 0.05 and shifted["ks_p"] < 1e-6
    assert shifted["ks"] > 0.4 > same["ks"]
    assert shifted["psi"] > same["psi"] and shifted["wasserstein"] > 2 > same["wasserstein"]


def test_cli_model_register_list_and_refusal(monitored, production_hypothesis, monkeypatch, tmp_path):
    import pickle

    monkeypatch.setenv("DATAROOM_HOME", str(monitored.home))
    runner = CliRunner()
    model_file = tmp_path / "model.skops"
    model_file.write_bytes(_estimator_bytes())
    args = ["--hypothesis", production_hypothesis, "--feature", "cvss", "--target", "remediation_days", "--reference", "2024-01-01", "2024-07-01"]
    ok = runner.invoke(cli, ["model", "register", "cli-model", "--as", "alice", "--file", str(model_file), *args], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "registered cli-model v1" in ok.stdout
    listed = runner.invoke(cli, ["model", "list", "--json"], catch_exceptions=False)
    names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
    assert "cli-model" in names
    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps({"not": "a model"}))
    refused = runner.invoke(cli, ["model", "register", "cli-model", "--as", "alice", "--file", str(bad), *args])
    assert refused.exit_code == 2 and "not a skops file" in refused.stderr
    outsider = runner.invoke(cli, ["model", "register", "cli-model", "--as", "mallory", "--file", str(model_file), *args])
    assert outsider.exit_code == 3 and "only members of remediation-by-tenant" in outsider.stderr
    assert [m.version for m in Registry.from_settings(monitored.settings).models.models("cli-model")] == [1]


def test_review_service_schedule_runs_every_model(monitored):
    """What the review service's periodic callback does (`--monitor-interval`): a run of every model."""
    import asyncio
    import logging
    from types import SimpleNamespace

    from dataroom.review.server import monitor_models

    models = monitored.service.registry.models
    before = {r["scored_at"] for r in models.results(monitored.model.name)}
    asyncio.run(monitor_models(SimpleNamespace(settings=monitored.settings), logging.getLogger("test")))
    after = {r["scored_at"] for r in models.results(monitored.model.name)}
    assert len(after) == 1 and after.isdisjoint(before)


def test_demo_data_registers_the_demo_model_in_5a(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAROOM_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    result = runner.invoke(cli, ["demo-data", "--rows", "400"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "model: remediation-days-linear v1 (H-1, phase 5A)" in result.stdout
    registry = Registry.from_settings(Settings(home=tmp_path / "home"))
    (model,) = registry.models.models()
    assert (model.name, model.author, model.features, model.target) == ("remediation-days-linear", "alice", ["cvss"], "remediation_days")
    h = registry.hypothesis(model.hypothesis)
    assert h.phase == Phase.PRODUCTION_FEATURE_FLAGGED.value and h.transitions[-1].approver == "sam"
    assert model.linear["coef"][0] > 5  # remediation days grow with CVSS in the reference months


def test_monitor_run_exits_1_when_its_queries_are_refused(monitored, tmp_path, monkeypatch):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(monitored.home, home)
    Registry.from_settings(Settings(home=home)).revoke("sam", "model-monitoring", reason="test: monitor project revoked")
    monkeypatch.setenv("DATAROOM_HOME", str(home))
    result = CliRunner().invoke(cli, ["monitor", "run", "--model", "remediation-days-linear", "--json"])
    assert result.exit_code == 1
    assert "as svc-monitor in model-monitoring was denied by policy" in result.stderr and "project_not_approved" in result.stderr


def test_a_row_capped_room_gets_the_scan_in_halves(monitored, tmp_path):
    """With DATAROOM_MAX_ROWS below a tenant's (week, bin, bin) cells, the scan is refused (row_limit)
    and the monitor asks for halves of the weeks, each a governed query: the same scores."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(monitored.home, home)
    settings = Settings(home=home, max_rows=600)
    from dataroom.pipeline import QueryService

    service = QueryService(settings)
    try:
        report = MonitorRunner(service).run(monitored.model.name)[0]
    finally:
        service.close()
    records = [r for r in AuditLog(settings.audit_file).records() if r.get("type") == "completion" and r["decision_id"] in report.decision_ids]
    assert "row_limit" in {r.get("reason_code") for r in records}
    original = {(w["segment"], w["window_start"]): w for w in monitored.report.windows}
    assert len(report.windows) == len(original)
    for w in report.windows:
        assert w["n"] == original[(w["segment"], w["window_start"])]["n"]
        assert w["r2"] == pytest.approx(original[(w["segment"], w["window_start"])]["r2"])
        assert w["drift"]["cvss"]["ks"] == pytest.approx(original[(w["segment"], w["window_start"])]["drift"]["cvss"]["ks"])
