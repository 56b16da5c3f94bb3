"""The broker's release routes (mounted by ``server.py``), for the notebook client's ``request_release``:

* ``POST v1/releases``: file a release request for the calling user: the object (base64, at most
  5 MiB decoded) is checked (:mod:`dataroom.outputs.checks`), stored by its SHA-256 and filed in
  the registry with the checker's report; the answer carries the request and its report;
* ``GET v1/releases``: the caller's own requests and where they stand.

Nothing is released here: two security reviewers decide in the review service, and only the review
service hands a released object out. Authentication is the broker's own (:meth:`BrokerHandler.caller`).
The body is streamed, so a body past the limit is counted and refused (413) without being kept.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado import web

from dataroom.broker.app import RegistryHandler
from dataroom.outputs.objects import MAX_RELEASE_BYTES
from dataroom.outputs.releases import ReleaseService, list_releases_request, release_request

MAX_RELEASE_BODY_BYTES = MAX_RELEASE_BYTES * 4 // 3 + (64 << 10)  # base64 of the object plus the JSON around it
MAX_DISCARDED_BYTES = 1 << 30


@web.stream_request_body
class ReleasesHandler(RegistryHandler):
    _service: ReleaseService | None = None

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        if self.request.method == "POST":
            self.request.connection.set_max_body_size(MAX_DISCARDED_BYTES)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= MAX_RELEASE_BODY_BYTES:
            self._chunks.append(chunk)

    def releases(self) -> ReleaseService:
        cls = type(self)
        if cls._service is None or cls._service.registry is not self.state.service.registry:
            cls._service = ReleaseService.from_settings(self.state.service.settings, self.state.service.registry)
        return cls._service

    async def get(self) -> None:
        service = self.releases()
        await self.answer(lambda caller: list_releases_request(service, caller.name))

    async def post(self) -> None:
        caller = await self.caller()
        if caller is None:
            return
        if self._size > MAX_RELEASE_BODY_BYTES:
            self.write_json(413, {"message": f"the request is {self._size:,} bytes; a release object may be at most {MAX_RELEASE_BYTES // 1048576} MiB"})
            return
        try:
            body: Any = json.loads(b"".join(self._chunks) or b"null")
        except (ValueError, RecursionError):
            self.write_json(400, {"message": "the body must be JSON: {project, title, justification, kind, data, decision_ids}"})
            return
        service = self.releases()
        status, payload = await asyncio.get_running_loop().run_in_executor(self.state.executor, lambda: release_request(service, caller.name, body))
        self.write_json(status, payload)
