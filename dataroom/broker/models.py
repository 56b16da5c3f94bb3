"""The broker's model routes (mounted by ``server.py``), for the notebook client:

* ``POST v1/models``: register a model (skops bytes in base64) for the calling user;
* ``GET v1/models``: the models of the caller's projects;
* ``GET v1/models/<name>/monitoring``: its stored per-tenant windows and alerts;
* ``POST v1/models/<name>/monitoring``: run the monitor for it now. The run queries as the
  monitor's service principal in its own project (every query decided and audited as such),
  whoever asked; the caller must be a member of the model's project.

Authentication is the broker's own (:meth:`BrokerHandler.caller`); the rules are the registry's
(:mod:`dataroom.registry.models_api`).
"""

from __future__ import annotations

from dataroom.broker.app import RegistryHandler
from dataroom.broker.auth import Caller
from dataroom.registry.models_api import list_models_request, monitoring_request, register_model_request


class ModelsHandler(RegistryHandler):
    async def get(self) -> None:
        registry = self.state.service.registry
        await self.answer(lambda caller: list_models_request(registry, caller.name))

    async def post(self) -> None:
        registry = self.state.service.registry
        await self.answer(
            lambda caller, body: register_model_request(registry, caller.name, body),
            body="{name, artifact, hypothesis, features, target, reference}",
        )


class MonitoringHandler(RegistryHandler):
    async def get(self, name: str) -> None:
        registry = self.state.service.registry
        await self.answer(lambda caller: monitoring_request(registry, caller.name, name))

    async def post(self, name: str) -> None:
        """Run the monitor for ``name`` now, if the caller may see the model."""
        service = self.state.service

        def run(caller: Caller) -> tuple[int, dict]:
            status, payload = monitoring_request(service.registry, caller.name, name)
            if status != 200:
                return status, payload
            from dataroom.monitoring.runner import MonitorError, MonitorRunner

            try:
                report = MonitorRunner(service).run(name)[0]
            except MonitorError as exc:
                return 500, {"message": service.public_message(str(exc))}
            return 200, {"run": report.to_dict()}

        await self.answer(run, pool=True)
