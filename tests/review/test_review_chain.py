"""The review UI's chain status: cached, but never stale about what verification depends on."""

from __future__ import annotations

import json

from dataroom.settings import Settings


def test_chain_status_notices_a_forged_checkpoint_file(svc) -> None:
    """The UI caches verification; editing only the checkpoints file must still show the chain broken."""
    from jupyterhub.services.auth import HubOAuth

    from dataroom.review.app import make_state

    svc.run("alice", "remediation-acme", "SELECT 1 AS x")
    svc.audit.checkpoint(force=True)
    state = make_state(Settings(), hub_auth=HubOAuth(api_url="http://127.0.0.1:1/hub/api", api_token="unused"), prefix="/")
    assert state.chain()[0].ok
    checkpoints = svc.audit.checkpoint_path
    lines = checkpoints.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["root"] = "0" * 64
    checkpoints.write_text("\n".join(lines[:-1] + [json.dumps(forged)]) + "\n")
    assert not state.chain()[0].ok
