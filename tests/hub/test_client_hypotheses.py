"""Registering a hypothesis from the notebook client through the real broker and hub."""

from __future__ import annotations

import pytest
from hub_support import RunningRoom

from dataroom.client import HypothesisRefused, QueryDenied, connect


def test_register_hypothesis_links_this_sessions_queries(room: RunningRoom, tokens: dict[str, str]) -> None:
    client = connect("remediation-acme", url=room.broker_url, token=tokens["alice"])
    client.sql("SELECT round(cvss) AS c, avg(remediation_days) AS d FROM acme.findings GROUP BY 1")
    with pytest.raises(QueryDenied):
        client.sql("SELECT analyst_email FROM acme.findings")
    assert len(client.decisions) == 2
    hypothesis = client.register_hypothesis("Remediation days grow with CVSS for acme")
    assert hypothesis["project_id"] == "remediation-acme"
    assert sorted(hypothesis["decision_ids"]) == sorted(client.decisions)
    listed = client.hypotheses("remediation-acme")
    assert hypothesis["id"] in listed["id"].to_list()


def test_register_hypothesis_is_refused_outside_your_project(room: RunningRoom, tokens: dict[str, str]) -> None:
    client = connect("remediation-acme", url=room.broker_url, token=tokens["mallory"])
    with pytest.raises(HypothesisRefused, match="only members of remediation-acme"):
        client.register_hypothesis("I was never here", decision_ids=[])
