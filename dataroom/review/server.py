"""The review process: ``python -m dataroom.review``, started by JupyterHub as a managed service.

Like the broker, it takes everything from the environment the Hub gives a managed service
(``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_OAUTH_CALLBACK_URL`` ...) plus
``DATAROOM_*`` settings. It also scans the audit log for alerts every ``--scan-interval`` seconds
(off the query path). SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from dataroom.hub.service_process import running_until_signalled, service_arguments

DEFAULT_SERVICE_NAME = "review"
DEFAULT_PORT = 8766
PID_FILE_ENV = "DATAROOM_REVIEW_PID_FILE"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_arguments("python -m dataroom.review", "Data room security review (a JupyterHub service)", DEFAULT_PORT)
    parser.add_argument("--scan-interval", type=float, default=30.0, help="seconds between alert scans of the audit log (0: only when the alerts page opens)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import PeriodicCallback

    from dataroom.review.app import make_app, make_state

    state = make_state(prefix=args.prefix)
    app = make_app(state)
    server = HTTPServer(app, xheaders=True)
    server.listen(args.port, address=args.ip)
    logger = logging.getLogger("dataroom.review")

    def scan() -> None:
        try:
            raised = state.scan()
            if raised:
                logger.warning("%d new alert(s): %s", len(raised), "; ".join(a["message"] for a in raised))
        except Exception:  # a scan problem must not stop the review service
            logger.exception("alert scan failed")

    scanner = None
    if args.scan_interval > 0:
        scan()
        scanner = PeriodicCallback(scan, args.scan_interval * 1000)
        scanner.start()
    logger.info("security review on http://%s:%d%s (audit %s)", args.ip, args.port, state.prefix, state.settings.audit_file)
    async with running_until_signalled(PID_FILE_ENV) as stop:
        try:
            await stop.wait()
        finally:
            if scanner is not None:
                scanner.stop()
            server.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="[%(levelname).1s %(asctime)s review] %(message)s")
    asyncio.run(serve(args))
