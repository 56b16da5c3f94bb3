"""The review process: ``python -m dataroom.review``, started by JupyterHub as a managed service.

Like the broker, it takes everything from the environment the Hub gives a managed service
(``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_OAUTH_CALLBACK_URL`` ...) plus
``DATAROOM_*`` settings. It also evaluates the alert rules every ``--scan-interval`` seconds
(default ``DATAROOM_ALERT_INTERVAL_S``; in a thread, off the query path). SIGTERM or SIGINT stops it.
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
    parser.add_argument(
        "--scan-interval", type=float, default=None,
        help="seconds between alert evaluations (default: $DATAROOM_ALERT_INTERVAL_S, 5; 0: only when the alerts page opens)",
    )
    parser.add_argument(
        "--monitor-interval", type=float, default=0.0,
        help="seconds between model monitoring runs (every registered model, as the monitor's service principal; 0: never, run `dataroom monitor run`)",
    )
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

    interval = state.settings.alert_interval_s if args.scan_interval is None else args.scan_interval
    alert_loop = None
    if interval > 0:  # a thread, off the IO loop: a scan after a burst of thousands of records does not stall the pages
        from dataroom.alerts.loop import AlertLoop

        alert_loop = AlertLoop(state.settings, interval, scanner=state.scanner).start()
    monitor = None
    if args.monitor_interval > 0:
        monitor = PeriodicCallback(lambda: asyncio.ensure_future(monitor_models(state, logger)), args.monitor_interval * 1000)
        monitor.start()  # the first run after one interval: starting the service stays cheap
    logger.info("security review on http://%s:%d%s (audit %s)", args.ip, args.port, state.prefix, state.settings.audit_file)
    async with running_until_signalled(PID_FILE_ENV) as stop:
        try:
            await stop.wait()
        finally:
            if alert_loop is not None:
                alert_loop.stop()
            if monitor is not None:
                monitor.stop()
            server.stop()


_monitoring = asyncio.Lock()


async def monitor_models(state, logger: logging.Logger) -> None:
    """One monitoring run of every registered model, off the IO loop (a run in progress is not doubled)."""
    if _monitoring.locked():
        return
    async with _monitoring:
        def run() -> list:
            from dataroom.monitoring.runner import MonitorRunner
            from dataroom.pipeline import QueryService

            service = QueryService(state.settings)
            try:
                return MonitorRunner(service).run()
            finally:
                service.close()

        try:
            reports = await asyncio.get_running_loop().run_in_executor(None, run)
        except Exception:  # a failed run must not stop the review service
            logger.exception("model monitoring run failed")
            return
        for r in reports:
            for a in r.alerts:
                logger.warning("monitoring alert: %s", a["message"])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="[%(levelname).1s %(asctime)s review] %(message)s")
    asyncio.run(serve(args))
