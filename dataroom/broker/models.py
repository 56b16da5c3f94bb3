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

import asyncio
import json

from dataroom.broker.app import BrokerHandler
from dataroom.registry.models_api import list_models_request, monitoring_request, register_model_request

MAX_BODY_BYTES = 1 << 20  # as the broker server's own limit: a linear model's skops file is a few kB


class ModelsHandler(BrokerHandler):
    async def get(self) -> None:
        caller = await self.caller()
        if caller is None:
            return
        registry = self.state.service.registry
        status, payload = await asyncio.get_running_loop().run_in_executor(None, lambda: list_models_request(registry, caller.name))
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
            self.write_json(400, {"message": "the body must be JSON: {name, artifact, hypothesis, features, target, reference}"})
            return
        registry = self.state.service.registry
        status, payload = await asyncio.get_running_loop().run_in_executor(None, lambda: register_model_request(registry, caller.name, body))
        self.write_json(status, payload)


class MonitoringHandler(BrokerHandler):
    async def get(self, name: str) -> None:
        caller = await self.caller()
        if caller is None:
            return
        registry = self.state.service.registry
        status, payload = await asyncio.get_running_loop().run_in_executor(None, lambda: monitoring_request(registry, caller.name, name))
        self.write_json(status, payload)

    async def post(self, name: str) -> None:
        caller = await self.caller()
        if caller is None:
            return
        service = self.state.service
        status, payload = await asyncio.get_running_loop().run_in_executor(None, lambda: monitoring_request(service.registry, caller.name, name))
        if status != 200:
            self.write_json(status, payload)
            return

        def run() -> tuple[int, dict]:
            from dataroom.monitoring.runner import MonitorError, MonitorRunner

            try:
                report = MonitorRunner(service).run(name)[0]
            except MonitorError as exc:
                return 500, {"message": service.public_message(str(exc))}
            return 200, {"run": report.to_dict()}

        status, payload = await asyncio.get_running_loop().run_in_executor(self.state.executor, run)
        self.write_json(status, payload)
