"""The broker's hypotheses route, ``(r"v1/hypotheses", HypothesisHandler)`` (mounted by ``server.py``).

``POST v1/hypotheses`` registers a hypothesis for the calling user (the notebook client's
``register_hypothesis``), ``GET v1/hypotheses[?project=]`` lists the caller's projects' hypotheses.
Authentication is the broker's own (:meth:`BrokerHandler.caller`: Hub token, scope re-checked);
the rules are the registry's (:mod:`dataroom.registry.api`).
"""

from __future__ import annotations

from dataroom.broker.app import RegistryHandler
from dataroom.registry.api import list_hypotheses_request, register_hypothesis_request


class HypothesisHandler(RegistryHandler):
    async def get(self) -> None:
        project = self.get_argument("project", None)
        registry = self.state.service.registry
        await self.answer(lambda caller: list_hypotheses_request(registry, caller.name, project), pool=True)

    async def post(self) -> None:
        registry = self.state.service.registry
        await self.answer(lambda caller, body: register_hypothesis_request(registry, caller.name, body), body="{project, statement, decision_ids}", pool=True)
