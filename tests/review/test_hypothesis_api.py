"""Registering a hypothesis over HTTP, as the notebook client will: the broker route in dataroom.broker.hypotheses.

The broker application (dataroom.broker.app.make_app) runs in-process with the hypothesis route
mounted, authenticating callers against the real JupyterHub of ``review_room`` with their real
Hub tokens.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests

from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import Registry
from dataroom.registry.api import register_hypothesis_request
from dataroom.settings import Settings


def test_request_validation_and_rules(registry: Registry, svc: QueryService):
    q = svc.run("alice", "remediation-acme", "SELECT cvss FROM acme.findings LIMIT 3")
    assert q.outcome is Outcome.ALLOWED
    status, body = register_hypothesis_request(registry, "alice", {"project": "remediation-acme", "statement": "CVSS matters", "decision_ids": [q.decision_id]})
    assert status == 201 and body["hypothesis"]["decision_ids"] == [q.decision_id] and body["hypothesis"]["author"] == "alice"
    assert register_hypothesis_request(registry, "alice", ["not", "an", "object"])[0] == 400
    assert register_hypothesis_request(registry, "alice", {"project": "remediation-acme", "statement": ""})[0] == 400
    assert register_hypothesis_request(registry, "alice", {"project": "remediation-acme", "statement": "x", "decision_ids": "abc"})[0] == 400
    status, body = register_hypothesis_request(registry, "mallory", {"project": "remediation-acme", "statement": "x"})
    assert status == 403 and "only members" in body["message"]
    assert register_hypothesis_request(registry, "alice", {"project": "nope", "statement": "x"})[0] == 404


@pytest.fixture(scope="module")
def broker_with_hypotheses(review_room):
    """The broker app with the hypothesis route, on a free port, in a background event loop."""
    from jupyterhub.services.auth import HubAuth
    from tornado.httpserver import HTTPServer

    from dataroom.broker.app import make_app
    from dataroom.broker.auth import BrokerAuth
    from dataroom.hub.launcher import free_port
    from dataroom.broker.hypotheses import HypothesisHandler

    service = QueryService(Settings(home=review_room.home))
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        hub_auth = HubAuth(api_url=f"{review_room.hub_url}/hub/api", api_token="unused-for-user-tokens", cache_max_age=0)
        app = make_app(service, auth=BrokerAuth("broker", hub_auth=hub_auth), prefix="/services/broker/")
        app.add_handlers(r".*", [(r"/services/broker/v1/hypotheses", HypothesisHandler, {"state": app.settings["broker_state"]})])
        holder["server"] = HTTPServer(app)
        holder["server"].listen(port, address="127.0.0.1")
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{port}/services/broker/", service
    loop.call_soon_threadsafe(holder["server"].stop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    service.close()


def test_register_hypothesis_through_the_broker(review_room, broker_with_hypotheses):
    url, service = broker_with_hypotheses
    alice = review_room.login("alice")
    token = alice.new_token(note="hypothesis api test")
    q = service.run("alice", "remediation-acme", "SELECT cvss, remediation_days FROM acme.findings LIMIT 10")
    headers = {"Authorization": f"token {token}"}
    body = {"project": "remediation-acme", "statement": "Remediation days rise with CVSS", "decision_ids": [q.decision_id]}

    assert requests.post(url + "v1/hypotheses", json=body, timeout=30).status_code == 401
    created = requests.post(url + "v1/hypotheses", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    h = created.json()["hypothesis"]
    assert (h["author"], h["project_id"], h["phase"], h["decision_ids"]) == ("alice", "remediation-acme", "data_exploration", [q.decision_id])
    listed = requests.get(url + "v1/hypotheses", params={"project": "remediation-acme"}, headers=headers, timeout=30)
    assert h["key"] in [x["key"] for x in listed.json()["hypotheses"]]

    mallory = review_room.login("mallory").new_token(note="hypothesis api test")
    refused = requests.post(url + "v1/hypotheses", json=body, headers={"Authorization": f"token {mallory}"}, timeout=30)
    assert refused.status_code == 403 and "only members of remediation-acme" in refused.json()["message"]
    bad = requests.post(url + "v1/hypotheses", data=b"{not json", headers=headers, timeout=30)
    assert bad.status_code == 400
