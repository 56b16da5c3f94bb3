"""The broker's hypotheses route, ``(r"v1/hypotheses", HypothesisHandler)`` (mounted by ``server.py``).

``POST v1/hypotheses`` registers a hypothesis for the calling user (the notebook client's
``register_hypothesis``), ``GET v1/hypotheses[?project=]`` lists the caller's projects' hypotheses.
Authentication is the broker's own (:meth:`BrokerHandler.caller`: Hub token, scope re-checked);
the rules are the registry's (:mod:`dataroom.registry.api`).
"""

from __future__ import annotations

import asyncio
import json

from dataroom.broker.app import BrokerHandler
from dataroom.registry.api import list_hypotheses_request, register_hypothesis_request

MAX_BODY_BYTES = 1 << 20


class HypothesisHandler(BrokerHandler):
    async def get(self) -> None:
        caller = await self.caller()
        if caller is None:
            return
        registry = self.state.service.registry
        project = self.get_argument("project", None)
        loop = asyncio.get_running_loop()
        status, payload = await loop.run_in_executor(self.state.executor, lambda: list_hypotheses_request(registry, caller.name, project))
        self.write_json(status, payload)

    async def post(self) -> None:
        caller = await self.caller()
        if caller is None:
            return
        if len(self.request.body) > MAX_BODY_BYTES:
            self.write_json(413, {"message": "request body too large"})
            return
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            self.write_json(400, {"message": "the body must be JSON: {project, statement, decision_ids}"})
            return
        registry = self.state.service.registry
        loop = asyncio.get_running_loop()
        status, payload = await loop.run_in_executor(self.state.executor, lambda: register_hypothesis_request(registry, caller.name, body))
        self.write_json(status, payload)
