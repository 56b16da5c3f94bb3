"""The broker process: ``python -m dataroom.broker``, started by JupyterHub as a managed service.

Under the Hub, everything comes from the environment the Hub sets for a managed service:
``JUPYTERHUB_SERVICE_URL`` (where to listen), ``JUPYTERHUB_SERVICE_PREFIX`` (the URL prefix),
``JUPYTERHUB_SERVICE_NAME``, ``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_API_TOKEN`` (to check
callers' tokens), plus the data room's own ``DATAROOM_*`` settings (catalog, audit log, limits)
and any AWS credentials: only this process holds them. Options override the environment.
SIGTERM or SIGINT stops it cleanly (in-flight queries are interrupted, the audit log closed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from dataroom.broker import DEFAULT_SERVICE_NAME
from dataroom.hub.service_process import running_until_signalled, service_arguments

PID_FILE_ENV = "DATAROOM_BROKER_PID_FILE"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_arguments("python -m dataroom.broker", "Data room broker (a JupyterHub service)", 8765)
    parser.add_argument("--name", default=os.environ.get("JUPYTERHUB_SERVICE_NAME", DEFAULT_SERVICE_NAME), help="service name (scope access:services!service=<name>)")
    parser.add_argument("--workers", type=int, default=8, help="query worker threads")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from tornado.httpserver import HTTPServer

    from dataroom.broker.app import MAX_BODY_BYTES, make_app
    from dataroom.broker.auth import BrokerAuth
    from dataroom.broker.hypotheses import HypothesisHandler
    from dataroom.broker.models import ModelsHandler, MonitoringHandler
    from dataroom.broker.releases import ReleasesHandler
    from dataroom.pipeline import QueryService
    from dataroom.settings import Settings

    service = QueryService(Settings(audit_role="broker"))  # its own audit stream (broker-<host>) when streams are on
    app = make_app(
        service,
        auth=BrokerAuth(args.name),
        prefix=args.prefix,
        service_name=args.name,
        workers=args.workers,
        extra_routes=[
            (r"v1/hypotheses", HypothesisHandler),
            (r"v1/models", ModelsHandler),
            (r"v1/models/([a-z0-9][a-z0-9._-]{1,62})/monitoring", MonitoringHandler),
            (r"v1/releases", ReleasesHandler),
        ],
    )
    server = HTTPServer(app, max_body_size=MAX_BODY_BYTES, xheaders=False)  # audit the real peer, not a header
    server.listen(args.port, address=args.ip)
    logging.getLogger("tornado.application").info(
        "data room broker %r on http://%s:%d%s (catalog %s, audit %s)", args.name, args.ip, args.port, args.prefix, service.settings.catalog_file, service.settings.audit_file
    )
    loop = asyncio.get_running_loop()
    async with running_until_signalled(PID_FILE_ENV) as stop:
        try:
            await stop.wait()
        finally:
            server.stop()
            state = app.settings["broker_state"]
            await state.flush_floods()  # counted 429s not yet written
            for job in list(state.jobs):  # stop what still runs; the pipeline audits it as failed
                job.cancel()
            try:
                await asyncio.wait_for(loop.run_in_executor(None, lambda: state.executor.shutdown(wait=True, cancel_futures=True)), 10)
            except asyncio.TimeoutError:
                logging.getLogger("tornado.application").warning("queries still running at shutdown")
            service.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="[%(levelname).1s %(asctime)s broker] %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
