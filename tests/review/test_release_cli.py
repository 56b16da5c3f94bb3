"""`dataroom release list/show/approve/reject/download`: the registry's release rules from the command line."""

from __future__ import annotations

import hashlib
import json

import polars as pl

from dataroom.cli.release import release
from dataroom.outputs.objects import encode_object
from dataroom.outputs.releases import ReleaseService
from dataroom.settings import Settings


def test_release_verbs_apply_the_two_person_rule(tmp_path, registry, invoke) -> None:
    service = ReleaseService.from_settings(Settings(), registry)
    frame = pl.DataFrame({"severity": ["high", "low"], "n": [25, 40]})
    filed = service.request("alice", "remediation-acme", title="Counts", justification="report", obj=encode_object(frame, "Counts"), decision_ids=[])
    other = service.request("alice", "remediation-acme", title="Other", justification="report", obj=encode_object(frame, "Other"), decision_ids=[])

    listed = invoke(release, "list", "--as", "sam", "--json")
    assert listed.exit_code == 0 and {json.loads(line)["key"] for line in listed.output.splitlines()} >= {filed.key, other.key}
    assert invoke(release, "list", "--as", "bob").output == ""  # bob asked for nothing
    assert filed.key in invoke(release, "list", "--as", "alice").output
    assert invoke(release, "show", filed.key, "--as", "bob").exit_code == 3
    shown = invoke(release, "show", filed.key, "--as", "sasha")
    assert shown.exit_code == 0 and "check threshold: pass" in shown.output and "requested by alice" in shown.output

    assert invoke(release, "approve", filed.key, "--as", "alice", "--note", "mine").exit_code == 3  # not security
    assert invoke(release, "approve", filed.key, "--as", "sam", "--note", "fine").exit_code == 0
    assert invoke(release, "approve", filed.key, "--as", "sam", "--note", "again").exit_code == 2  # one verdict each
    out = tmp_path / "counts.csv"
    pending = invoke(release, "download", filed.key, "--as", "alice", "-o", str(out))
    assert pending.exit_code == 2 and not out.exists()  # one approval is not enough
    released = invoke(release, "approve", filed.key, "--as", "sasha")
    assert released.exit_code == 0 and "released" in released.output

    assert invoke(release, "download", filed.key, "--as", "bob", "-o", str(out)).exit_code == 3 and not out.exists()
    done = invoke(release, "download", filed.key, "--as", "alice", "-o", str(out))
    assert done.exit_code == 0
    recorded = service.releases.get(filed.id)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == recorded.released_sha256 and recorded.released_sha256 in done.output
    assert [e.kind for e in recorded.events][-1] == "downloaded" and recorded.events[-1].details["via"] == "cli"

    assert invoke(release, "reject", other.key, "--as", "sasha", "--note", "no").exit_code == 0
    assert invoke(release, "download", other.key, "--as", "alice", "-o", str(tmp_path / "other.csv")).exit_code == 2
