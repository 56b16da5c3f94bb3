"""The audit shipper's backlog (issue 10 item 2): in the broker's health output (real HTTP), in the
review header, and as an alert when it falls behind by more than DATAROOM_AUDIT_SHIP_MAX_LAG_S.

A real moto server bucket with Object Lock; the outage is a shipper pointed at a closed port (the
bucket unreachable). Restoring the endpoint drains the backlog.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from dataroom.alerts.lifecycle import AlertStore
from dataroom.alerts.loop import shipping_json
from dataroom.audit import AuditLog
from dataroom.audit.anchor import AnchorTarget, Shipper, s3_client, verify_anchor
from dataroom.cli.alerts import alerts as alerts_cli
from dataroom.pipeline import QueryService
from dataroom.settings import Settings
from tests.support.moto import moto_server, use_fake_credentials

_names = itertools.count()
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    use_fake_credentials(monkeypatch)
    name = f"audit-ship-{next(_names)}"
    client = s3_client(endpoint, "us-east-1")
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=name, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}
    )
    monkeypatch.setenv("DATAROOM_AUDIT_BUCKET", name)
    monkeypatch.setenv("DATAROOM_AUDIT_ANCHOR_PREFIX", "room-1")
    monkeypatch.setenv("DATAROOM_AUDIT_SHIP_MAX_LAG_S", "0.001")  # any checkpoint waiting is late: no sleeping in the test
    return name


@contextmanager
def broker(service: QueryService) -> Iterator[str]:
    """The broker application on a free loopback port, in a thread (health needs no Hub token)."""
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from dataroom.broker.app import make_app
    from dataroom.broker.auth import BrokerAuth

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = HTTPServer(make_app(service, auth=BrokerAuth("broker", hub_auth=object()), workers=1))  # hub auth never reached by /health
        server.add_sockets(sockets)
        ready.set()
        loop.run_forever()
        server.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def queries_and_checkpoint(svc: QueryService, n: int) -> None:
    for _ in range(n):
        svc.run("alice", "remediation-acme", "SELECT severity, count(*) FROM acme.findings GROUP BY 1")
    log = AuditLog.from_settings(Settings())
    log.checkpoint("forced", force=True)
    log.close()


def shipper(url: str) -> Shipper:
    settings = Settings()
    target = AnchorTarget(settings.audit_bucket or "", settings.audit_anchor_prefix)
    return Shipper(AuditLog.from_settings(settings), target, s3_client(url, "us-east-1"), attempts=2, backoff_s=0.0, sleep=lambda _: None)


def test_outage_grows_the_backlog_and_fires_the_alert_restoring_drains_it(bucket: str, endpoint: str, invoke) -> None:
    svc = QueryService(Settings())
    try:
        with broker(svc) as url:
            assert requests.get(url + "health", timeout=10).json()["audit_shipping"]["backlog"] == 0
            queries_and_checkpoint(svc, 3)
            down = shipper(UNREACHABLE).ship_once()
            assert down.shipped_now == 0 and down.backlog >= 1 and "after 2 attempts" in (down.error or "")
            health = requests.get(url + "health", timeout=10).json()["audit_shipping"]
            assert (health["backlog"], health["behind"], health["max_lag_s"]) == (down.backlog, True, 0.001)
            assert health["oldest_unshipped"] and health["lag_s"] >= 0

            r = invoke(alerts_cli, "scan")
            assert r.exit_code == 0 and f"[high] Audit shipping is behind: {down.backlog} checkpoint(s) of audit.jsonl are not anchored" in r.output
            queries_and_checkpoint(svc, 2)  # the room goes on; the bucket is still unreachable
            grown = shipper(UNREACHABLE).ship_once().backlog
            assert grown == down.backlog + 1
            invoke(alerts_cli, "scan")
            (alert,) = AlertStore(Settings()).alerts("open")
            assert (alert["rule"], alert["count"], alert["severity"]) == ("audit_shipping_lag", grown, "high")  # one alert, its count the backlog

            up = shipper(endpoint).ship_once()
            assert (up.shipped_now, up.backlog, up.error) == (grown, 0, None)
            health = requests.get(url + "health", timeout=10).json()["audit_shipping"]
            assert (health["backlog"], health["behind"]) == (0, False)
            assert shipping_json(Settings())["backlog"] == 0
            settings = Settings()
            assert verify_anchor(AuditLog.from_settings(settings), AnchorTarget(bucket, "room-1"), s3_client(endpoint, "us-east-1")).ok
    finally:
        svc.close()


def test_without_an_audit_bucket_there_is_no_backlog_to_report(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAROOM_AUDIT_BUCKET", raising=False)
    assert shipping_json(Settings()) is None
    svc = QueryService(Settings())
    try:
        with broker(svc) as url:
            doc = requests.get(url + "health", timeout=10).json()
            assert doc["status"] == "ok" and doc["audit_shipping"] is None
            assert json.dumps(doc).count("s3://") == 0
    finally:
        svc.close()
