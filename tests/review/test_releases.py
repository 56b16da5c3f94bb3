"""Release requests in-process (real registry, real audit log, real DuckDB queries, ACRO's checks):
the checks flag what they should; two security reviewers other than the requester must approve;
only then, and only the requester or security, can download the released bytes, whose SHA-256 is
recorded. Every step is an event row mirrored to the registry's audit stream."""

from __future__ import annotations

import hashlib
import os
import stat

import polars as pl
import pytest

from dataroom.audit import AuditLog
from dataroom.audit.registry_events import registry_stream, verify_registry
from dataroom.outputs.checks import acro_risk_appetite
from dataroom.outputs.objects import MAX_RELEASE_BYTES, ReleaseObjectError, encode_object
from dataroom.outputs.releases import ReleaseService, release_request
from dataroom.registry import Conflict, PermissionDenied, RegistryError
from dataroom.registry.models import Base
from dataroom.settings import Settings

PROJECT = "remediation-acme"
# every tenant's findings together: what the multi-tenant project's output policy allows
BENCHMARK_SQL = (
    "SELECT severity, count(*) AS n FROM (SELECT severity FROM acme.findings UNION ALL SELECT severity FROM globex.findings "
    "UNION ALL SELECT severity FROM initech.findings) GROUP BY 1"
)


@pytest.fixture
def releases(registry) -> ReleaseService:
    return ReleaseService.from_settings(Settings(), registry)


def _counts(svc, sql: str, user: str = "alice", project: str = PROJECT) -> tuple[pl.DataFrame, str]:
    outcome = svc.run(user, project, sql)
    assert outcome.outcome.value == "allowed", outcome.reasons
    return pl.from_arrow(outcome.table), outcome.decision_id


def _check(info, code: str) -> dict:
    return next(c for c in info.checks["checks"] if c["code"] == code)


def test_acro_rules_are_the_documented_ones() -> None:
    rules = acro_risk_appetite()
    assert (rules["safe_threshold"], rules["safe_nk_n"], rules["safe_nk_k"], rules["safe_pratio_p"]) == (10, 2, 0.9, 0.1)


def test_a_cell_below_the_threshold_is_flagged(svc, releases) -> None:
    frame, decision = _counts(svc, (
        "SELECT severity AS label, count(*) AS n FROM acme.findings GROUP BY 1 "
        "UNION ALL SELECT 'first CVE', count(*) FROM acme.findings WHERE cve_id = (SELECT min(cve_id) FROM acme.findings) ORDER BY 1"
    ))
    small = [i for i, n in enumerate(frame["n"].to_list()) if n < 10]
    assert small and len(small) < frame.height  # the demo data has both kinds of cell
    info = releases.request("alice", PROJECT, title="Findings per CVE", justification="paper table", obj=encode_object(frame, "t"), decision_ids=[decision])
    threshold = _check(info, "threshold")
    assert threshold["status"] == "fail" and info.checks["status"] == "fail"
    assert sorted(row for row, col in threshold["cells"]) == small[:50] and {col for _, col in threshold["cells"]} == {"n"}
    # the same table with only the large cells passes the threshold
    big = frame.filter(pl.col("n") >= 10)
    info = releases.request("alice", PROJECT, title="big cells", justification="paper table", obj=encode_object(big, "t"), decision_ids=[decision])
    assert _check(info, "threshold")["status"] == "pass"
    assert info.decision_ids == [decision]


def test_our_rules_flag_pii_columns_values_and_single_tenant_cells(svc, releases) -> None:
    frame = pl.DataFrame({"analyst_email": ["x"], "n": [20]})
    info = releases.request("alice", PROJECT, title="t", justification="j", obj=encode_object(frame, "t"), decision_ids=[])
    assert _check(info, "sensitive_columns")["status"] == "fail"
    assert _check(info, "support")["status"] == "review" and "support unknown" in _check(info, "support")["message"]
    frame = pl.DataFrame({"who": ["ada@acme.example", "10.1.2.3", "fe80::1:2", "plain"], "n": [20, 20, 20, 20]})
    info = releases.request("alice", PROJECT, title="t", justification="j", obj=encode_object(frame, "t"), decision_ids=[])
    assert _check(info, "identifying_values")["cells"] == [[0, "who"], [1, "who"], [2, "who"]]
    # multi-tenant: a row keyed by a tenant is backed by that tenant alone; the broker's output policy backed its groups
    frame, decision = _counts(svc, BENCHMARK_SQL, project="remediation-benchmark")
    tagged = frame.with_columns(pl.lit("globex").alias("tenant"))
    info = releases.request("alice", "remediation-benchmark", title="t", justification="j", obj=encode_object(tagged, "t"), decision_ids=[decision])
    assert _check(info, "single_tenant")["status"] == "fail"
    assert _check(info, "support")["status"] == "pass"  # the broker held its groups to 10 rows and 2 tenants


def test_linked_queries_must_be_the_requesters_own_in_the_project(svc, releases) -> None:
    _, bobs = _counts(svc, "SELECT count(*) AS n FROM acme.findings", user="bob")
    _, other_project = _counts(svc, BENCHMARK_SQL, project="remediation-benchmark")
    obj = encode_object(pl.DataFrame({"n": [20]}), "t")
    for ids in ([bobs], [other_project], ["00000000-0000-0000-0000-000000000000"]):
        with pytest.raises(RegistryError):
            releases.request("alice", PROJECT, title="t", justification="j", obj=obj, decision_ids=ids)
    with pytest.raises(PermissionDenied):  # carol is in no project
        releases.request("carol", PROJECT, title="t", justification="j", obj=obj, decision_ids=[])
    with pytest.raises(RegistryError):
        releases.request("alice", PROJECT, title="t", justification=" ", obj=obj, decision_ids=[])


def test_two_reviewers_other_than_the_requester_release_it_and_only_then_it_downloads(home, svc, registry, releases) -> None:
    registry.add_member("sasha", PROJECT, "sam", note="sam explores too, so sam can be a requester")
    frame, decision = _counts(svc, "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1 ORDER BY 1", user="sam")
    info = releases.request("sam", PROJECT, title="Severity counts", justification="for the report", obj=encode_object(frame, "t"), decision_ids=[decision])
    assert info.status == "pending" and info.key == f"R-{info.id}"

    with pytest.raises(PermissionDenied, match="asked for"):  # a security member who requested cannot approve
        releases.review("sam", info.id, approve=True, note="mine")
    refusals = [r for r in registry_stream(AuditLog(Settings().audit_file)).records() if r.get("type") == "registry_refusal"]
    assert (refusals[-1]["actor"], refusals[-1]["action"], refusals[-1]["target"]) == ("sam", "release_approve", str(info.id))
    with pytest.raises(PermissionDenied):  # not security
        releases.review("bob", info.id, approve=True)
    with pytest.raises(Conflict):  # nothing to download yet
        releases.download("sam", info.id, via="test")

    registry.add_member("sam", PROJECT, "sasha", note="sasha may request too")
    other = releases.request("sasha", PROJECT, title="sasha's", justification="j", obj=encode_object(frame, "t"), decision_ids=[])
    registry.remove_member("sam", PROJECT, "sasha")
    one = releases.review("sasha", info.id, approve=True, note="counts over 10, no identifiers")
    assert one.status == "pending" and one.approvers == ["sasha"]  # one approval is not enough
    with pytest.raises(Conflict):
        releases.download("sam", info.id, via="test")
    with pytest.raises(Conflict, match="already gave a verdict"):
        releases.review("sasha", info.id, approve=True, note="again")
    assert not (home / "releases" / "released").exists()

    # a third security member gives the second approval
    import tomllib

    import tomli_w

    catalog = home / "catalog.toml"
    data = tomllib.loads(catalog.read_text())
    data["users"]["rita"] = {"groups": ["security"], "email": "rita@dataroom.example"}
    catalog.write_text(tomli_w.dumps(data))
    releases.registry.catalog.users.update({"rita": type(releases.registry.catalog.users["sam"])(name="rita", groups=["security"])})
    two = releases.review("rita", info.id, approve=True, note="agree")
    assert two.status == "released" and sorted(two.approvers) == ["rita", "sasha"]
    assert two.released_sha256 == info.sha256

    got, data_bytes = releases.download("sam", info.id, via="test")
    assert hashlib.sha256(data_bytes).hexdigest() == two.released_sha256
    assert pl.read_csv(data_bytes).equals(frame)
    released = home / "releases" / "released" / two.released_sha256
    assert stat.S_IMODE(released.stat().st_mode) == 0o444
    assert [e.kind for e in got.events] == ["requested", "approved", "approved", "released", "downloaded"]

    with pytest.raises(PermissionDenied):  # bob is a project member, but not the requester nor security
        releases.download("bob", info.id, via="test")
    refusal = [r for r in registry_stream(AuditLog(Settings().audit_file)).records() if r.get("type") == "registry_refusal"][-1]
    assert (refusal["actor"], refusal["action"]) == ("bob", "release_read")
    with pytest.raises(PermissionDenied):
        releases.download("carol", info.id, via="test")
    releases.download("sasha", info.id, via="test")  # security may

    # a rejected request never downloads and takes no more verdicts
    rejected = releases.review("sam", other.id, approve=False, note="no")
    assert rejected.status == "rejected"
    with pytest.raises(Conflict):
        releases.review("rita", other.id, approve=True, note="yes")
    with pytest.raises(Conflict):
        releases.download("sasha", other.id, via="test")

    # the released file changed on disk: refused, and no download recorded
    os.chmod(released, 0o644)
    released.write_bytes(data_bytes + b"extra,1\n")
    before = len(releases.releases.get(info.id).events)
    with pytest.raises(RegistryError, match="no longer matches"):
        releases.download("sam", info.id, via="test")
    assert len(releases.releases.get(info.id).events) == before

    # every step is in the registry's audit stream, and the stream matches the database
    audit = AuditLog(Settings().audit_file)
    kinds = [r["row"]["kind"] for r in registry_stream(audit).records() if r.get("table") == "release_events" and r["op"] == "insert"]
    assert kinds.count("requested") == 2 and kinds.count("approved") == 2 and kinds.count("released") == 1 and kinds.count("rejected") == 1
    assert kinds.count("downloaded") == 2
    check = verify_registry(audit, registry.engine, Base.metadata)
    assert check.ok, check.describe()


def test_failed_checks_need_a_note_to_approve(svc, registry, releases) -> None:
    info = releases.request("alice", PROJECT, title="t", justification="j", obj=encode_object(pl.DataFrame({"n": [3]}), "t"), decision_ids=[])
    assert info.checks["status"] == "fail"
    with pytest.raises(RegistryError, match="needs a note"):
        releases.review("sam", info.id, approve=True)
    assert releases.review("sam", info.id, approve=True, note="3 is a published figure").status == "pending"


def test_bad_objects_are_refused_with_a_clear_error(tmp_path, releases) -> None:
    with pytest.raises(ReleaseObjectError, match="at most 5 MiB"):
        encode_object(pl.DataFrame({"x": ["a" * 1000] * (MAX_RELEASE_BYTES // 1000 + 10)}), "big")
    with pytest.raises(ReleaseObjectError, match="cannot release a dict"):
        encode_object({"a": 1}, "t")
    with pytest.raises(ReleaseObjectError, match="flatten nested columns"):
        encode_object(pl.DataFrame({"a": [[1, 2]]}), "t")
    binary = tmp_path / "data.parquet"
    binary.write_bytes(b"PAR1\0\0")
    with pytest.raises(ReleaseObjectError, match="only text files"):
        encode_object(binary, "t")
    fake = tmp_path / "notes.txt"
    fake.write_bytes(b"\xff\xfe\0binary")
    with pytest.raises(ReleaseObjectError, match="not UTF-8"):
        encode_object(fake, "t")
    # the HTTP entry point says what is wrong, and never stores anything for it
    assert release_request(releases, "alice", {"project": PROJECT, "title": "t", "justification": "j", "kind": "figure", "data": "aGVsbG8="})[0] == 400
    assert release_request(releases, "alice", {"project": PROJECT, "title": "t", "justification": "j", "kind": "table", "data": "%%%"})[0] == 400
    assert release_request(releases, "alice", [])[0] == 400
    status, payload = release_request(releases, "mallory", {"project": PROJECT, "title": "t", "justification": "j", "kind": "text", "data": "aGVsbG8="})
    assert status == 403 and "not a member" in payload["message"]


def test_concurrent_verdicts_release_exactly_once(registry, releases) -> None:
    """Two reviewers approving at the same moment (and one double-clicking): the request is released
    once, by two distinct approvers, and never left pending with two approvals."""
    import threading

    from dataroom.outputs.releases import ReleaseService

    frame = pl.DataFrame({"severity": ["high"], "n": [25]})
    for _ in range(3):
        info = releases.request("alice", PROJECT, title="race", justification="j", obj=encode_object(frame, "race"), decision_ids=[])
        outcomes: list[str] = []
        barrier = threading.Barrier(3)

        def approve(who: str) -> None:
            service = ReleaseService.from_settings(Settings(), registry)
            barrier.wait()
            try:
                outcomes.append(service.review(who, info.id, approve=True, note="ok").status)
            except RegistryError as exc:
                outcomes.append(type(exc).__name__)
            except Exception as exc:  # SQLite's lock timeout would be a defect here: record it
                outcomes.append(f"error {type(exc).__name__}")

        threads = [threading.Thread(target=approve, args=(who,)) for who in ("sam", "sasha", "sam")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = releases.releases.get(info.id)
        assert final.status == "released" and sorted(final.approvers) == ["sam", "sasha"], (outcomes, final.events)
        assert sorted(outcomes) == ["Conflict", "pending", "released"], outcomes  # sam's second click is refused
        assert [e.kind for e in final.events].count("released") == 1


def test_support_comes_from_the_aggregation_facts_of_the_linked_queries() -> None:
    from dataroom.outputs.checks import CheckContext, support_check

    def support(multi: bool, *policies) -> str:
        queries = [{"decision_id": f"d{i}", "output_policy": p} for i, p in enumerate(policies)]
        return support_check(CheckContext("p", multi, ["acme", "globex"], {}, queries)).status

    held = {"min_rows": 10, "min_tenants": 2, "suppressed": 3}
    assert support(True, held, held) == "pass"
    assert support(True, held, None) == "review"  # one query without the facts: support unknown
    assert support(True, {**held, "min_tenants": 1}) == "review"  # single-tenant groups were allowed
    assert support(True, {**held, "min_rows": 5}) == "review"  # below ACRO's threshold of 10
    assert support(False, {"min_rows": 10, "min_tenants": 1}) == "pass"  # a single-tenant project needs no tenant rule
    assert support(True) == "review"  # nothing linked
