"""Several writers (issue 10 item 3): each writer its own stream; readers see one ordered view.

Streams are real files written by real processes; the load test runs three real broker
applications (dataroom.broker.app.make_app over HTTP) and CLI writers, kills them with SIGKILL at
random moments, and checks the log against what twenty clients were told. The one stand-in is
the Hub's ``GET /hub/api/user`` (a small real HTTP server answering the one call the brokers'
HubAuth makes), named as such: starting JupyterHub is not what this test is about.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from dataroom.audit import AuditLog
from dataroom.audit.reader import AuditView
from dataroom.audit.streams import default_stream_id, check_stream_id, writer_path
from dataroom.settings import Settings

DATAROOM = [sys.executable, "-m", "dataroom.cli"]


def _settings(home: Path, stream: str | None, **extra) -> Settings:
    return Settings(home=home, audit_stream=stream, audit_checkpoint_every=3, **extra)


def _write(home: Path, stream: str, n: int, prefix: str) -> list[dict]:
    log = AuditLog.from_settings(_settings(home, stream))
    out = [log.append({"type": "decision", "decision_id": f"{prefix}-{i}", "timestamp": f"2026-01-01T00:00:{i * 2 + (prefix == 'b'):02d}+00:00", "input": {}}) for i in range(n)]
    log.close()
    return out


def test_each_writer_has_its_own_stream_and_readers_merge_them_in_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a, b = _write(home, "broker-a", 5, "a"), _write(home, "cli-b", 5, "b")
    assert writer_path(_settings(home, "broker-a")) == home / "audit" / "streams" / "broker-a" / "audit.jsonl"
    assert {r["stream"] for r in a} == {"broker-a"} and {r["stream"] for r in b} == {"cli-b"}
    assert [r["seq"] for r in a] == [r["seq"] for r in b] == list(range(5))  # own chains
    for stream in ("broker-a", "cli-b"):
        checkpoints = (home / "audit" / "streams" / stream / "audit.jsonl.checkpoints").read_text().splitlines()
        assert checkpoints and all(json.loads(c)["stream"] == stream for c in checkpoints)
    keys = {(home / "audit" / "streams" / s / "audit.jsonl.pub").read_bytes() for s in ("broker-a", "cli-b")}
    assert len(keys) == 2  # own keys, own key ids
    view = AuditView(_settings(home, None))
    merged = [r["decision_id"] for r in view.records()]
    assert merged == [f"{p}-{i}" for i in range(5) for p in ("a", "b")]  # by timestamp across streams
    results = view.verify()
    assert [r.stream for r in results] == ["broker-a", "cli-b"] and all(r.result.ok for r in results)
    # the tail cursor continues per stream
    cursor, seen = {}, []
    for cursor, record in view.tail({}):
        seen.append(record["decision_id"])
    assert seen == merged and not list(view.tail(cursor))


def test_default_stream_ids_and_bad_ids() -> None:
    assert default_stream_id("broker", "Web-1.example.org") == "broker-web-1"
    assert default_stream_id("cli", "db_2") == "cli-db_2"
    for bad in ("../x", "audit", "registry", "A", "", "a/b"):
        with pytest.raises(ValueError):
            check_stream_id(bad)


def test_swapping_records_between_streams_is_detected_and_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _write(home, "broker-a", 4, "a")
    _write(home, "broker-b", 4, "b")
    pa, pb = (home / "audit" / "streams" / s / "audit.jsonl" for s in ("broker-a", "broker-b"))
    la, lb = pa.read_text().splitlines(), pb.read_text().splitlines()
    la[2], lb[2] = lb[2], la[2]
    pa.write_text("\n".join(la) + "\n")
    pb.write_text("\n".join(lb) + "\n")
    out = subprocess.run(DATAROOM + ["audit", "verify", "--no-registry"], capture_output=True, text=True, env={**os.environ, "DATAROOM_HOME": str(home)}, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "[stream broker-a] audit chain BROKEN at record seq=2 (line 3)" in out.stdout and "belongs to stream 'broker-b'" in out.stdout
    assert "[stream broker-b] audit chain BROKEN" in out.stdout and "belongs to stream 'broker-a'" in out.stdout and "[stream_swapped]" in out.stdout


def test_a_record_moved_from_the_single_file_log_into_a_stream_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    legacy = AuditLog(home / "audit" / "audit.jsonl")
    for i in range(3):
        legacy.append({"type": "decision", "decision_id": f"old-{i}", "timestamp": "2025-01-01T00:00:00+00:00", "input": {}})
    legacy.close()
    _write(home, "broker-a", 3, "a")
    view = AuditView(_settings(home, None))
    assert [r.stream for r in view.verify()] == ["audit", "broker-a"] and all(r.result.ok for r in view.verify())  # the single file: one stream
    assert [r["decision_id"] for r in view.records()][:3] == ["old-0", "old-1", "old-2"]
    path = home / "audit" / "streams" / "broker-a" / "audit.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = (home / "audit" / "audit.jsonl").read_text().splitlines()[1]
    path.write_text("\n".join(lines) + "\n")
    broken = {r.stream: r.result for r in view.verify()}
    assert broken["audit"].ok and not broken["broker-a"].ok and broken["broker-a"].kind == "stream_swapped"
    assert "the single-file log" in broken["broker-a"].problem


# -- load and faults ---------------------------------------------------------------------------
BROKER = """
import asyncio, sys
from jupyterhub.services.auth import HubAuth
from tornado.httpserver import HTTPServer
from dataroom.broker.app import make_app
from dataroom.broker.auth import BrokerAuth
from dataroom.pipeline import QueryService
from dataroom.settings import Settings

async def main():
    service = QueryService(Settings(audit_role="broker", audit_stream=sys.argv[2]))
    hub = HubAuth(api_url=sys.argv[3], api_token="stand-in", cache_max_age=0)
    app = make_app(service, auth=BrokerAuth("broker", hub_auth=hub), prefix="/", workers=4)
    HTTPServer(app).listen(int(sys.argv[1]), address="127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

CLI_WRITER = """
from dataroom.pipeline import QueryService
svc = QueryService()
i = 0
while True:
    out = svc.run("bob", "remediation-acme", f"SELECT {i} AS n")
    print(out.decision_id, out.outcome.value, flush=True)
    i += 1
"""

QUERIES = [
    ("alice", "SELECT count(*) AS n FROM acme.findings", "allowed"),
    ("alice", "SELECT analyst_email FROM acme.findings", "denied"),
    ("bob", "SELECT 1 AS one", "allowed"),
]


class _StandInHub(BaseHTTPRequestHandler):
    """Answers ``GET /hub/api/user`` for the tokens ``token-<user>`` (the one call HubAuth makes)."""

    def do_GET(self) -> None:  # noqa: N802
        token = self.headers.get("Authorization", "").removeprefix("token ").strip()
        if self.path.rstrip("/") != "/hub/api/user" or not token.startswith("token-"):
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"kind": "user", "name": token.removeprefix("token-"), "groups": [], "scopes": ["access:services!service=broker"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn_broker(port: int, stream: str, hub: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BROKER, str(port), stream, hub], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _ready(proc: subprocess.Popen) -> subprocess.Popen:
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _start_broker(port: int, stream: str, hub: str, env: dict[str, str]) -> subprocess.Popen:
    return _ready(_spawn_broker(port, stream, hub, env))


def test_three_brokers_and_cli_writers_killed_at_random_keep_every_answered_decision(dataroom_home: Path) -> None:
    hub = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    hub_url = f"http://127.0.0.1:{hub.server_address[1]}/hub/api"
    env = {**os.environ, "DATAROOM_HOME": str(dataroom_home), "DATAROOM_AUDIT_CHECKPOINT_EVERY": "7", "DATAROOM_AUDIT_CHECKPOINT_INTERVAL_S": "0.05"}
    ports = [_free_port() for _ in range(3)]
    started = time.monotonic()
    brokers: dict[int, subprocess.Popen] = {}
    try:
        brokers[0] = _start_broker(ports[0], "broker-0", hub_url, env)  # the first creates the registry (concurrent first starts race in it)
        brokers.update({i: _spawn_broker(ports[i], f"broker-{i}", hub_url, env) for i in (1, 2)})
        for i in (1, 2):
            _ready(brokers[i])
    except BaseException:  # never leave a broker behind
        for proc in brokers.values():
            proc.kill()
            proc.wait(timeout=30)
        hub.shutdown()
        raise
    print(f"brokers up in {time.monotonic() - started:.1f} s")
    rng = random.Random(103)
    answered: dict[str, str] = {}  # decision id -> outcome the client was told
    tally = {"allowed": 0, "denied": 0, "lost": 0}
    lock, stop = threading.Lock(), threading.Event()

    def client(n: int) -> None:
        local = random.Random(n)
        while not stop.is_set():
            user, sql, _ = local.choice(QUERIES)
            port = local.choice(ports)
            try:
                r = requests.post(f"http://127.0.0.1:{port}/v1/query", json={"project": "remediation-acme", "sql": sql}, headers={"Authorization": f"token token-{user}"}, timeout=30)
            except requests.RequestException:
                with lock:
                    tally["lost"] += 1  # the broker died with the request in flight (or is restarting): no answer, no promise
                time.sleep(0.3)
                continue
            if r.status_code == 200:
                decision_id, outcome = r.headers["X-Dataroom-Decision-Id"], "allowed"
            else:
                decision_id, outcome = r.json()["decision"]["decision_id"], r.json()["decision"]["outcome"]
            with lock:
                answered[decision_id] = outcome
                tally[outcome] = tally.get(outcome, 0) + 1
            time.sleep(0.05)  # think time: twenty clients, two cores

    cli_env = {**env, "DATAROOM_AUDIT_STREAM": "cli-test"}
    cli_told: dict[str, str] = {}
    cli_kills = [0]

    def cli_writers() -> None:
        """CLI writers one after the other, each killed -9 at a random moment once it has answered."""
        local = random.Random(7)
        while not stop.is_set():
            writer = subprocess.Popen([sys.executable, "-c", CLI_WRITER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env)
            assert writer.stdout is not None
            lines = [writer.stdout.readline()]  # blocks until the first answer
            time.sleep(local.uniform(0.0, 0.6))
            writer.send_signal(signal.SIGKILL)
            out, _ = writer.communicate(timeout=30)
            for line in lines + out.splitlines():
                if line.strip():
                    decision_id, outcome = line.split()
                    cli_told[decision_id] = outcome
            cli_kills[0] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)] + [threading.Thread(target=cli_writers)]
    for t in threads:
        t.start()
    kills = 0
    try:
        restarted = []
        for victim in rng.sample(range(3), 2):  # two brokers killed at random moments, each restarted at once
            time.sleep(rng.uniform(0.5, 3.0))
            brokers[victim].send_signal(signal.SIGKILL)
            brokers[victim].wait(timeout=30)
            kills += 1
            brokers[victim] = _spawn_broker(ports[victim], f"broker-{victim}", hub_url, env)
            restarted.append(victim)
            print(f"broker-{victim} killed at {time.monotonic() - started:.1f} s")
        for victim in restarted:  # the restarted writers continue their streams under load
            _ready(brokers[victim])
        print(f"restarted brokers serving at {time.monotonic() - started:.1f} s")
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        for proc in brokers.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        hub.shutdown()
    assert kills == 2 and cli_kills[0] >= 2 and tally["allowed"] > 20 and tally["denied"] > 5 and len(cli_told) > 3, (kills, cli_kills, tally, len(cli_told))

    print(f"load done at {time.monotonic() - started:.1f} s: {tally}, {len(cli_told)} CLI answers, {cli_kills[0]} CLI writers killed")
    verify = subprocess.run(DATAROOM + ["audit", "verify", "--no-registry"], capture_output=True, text=True, env={**os.environ, "DATAROOM_HOME": str(dataroom_home)}, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert all(f"[stream {s}] audit chain OK" in verify.stdout for s in ("broker-0", "broker-1", "broker-2", "cli-test"))

    view = AuditView(Settings(home=dataroom_home))
    decisions = {r["decision_id"]: r for r in view.records(types=("decision",))}
    completions = {r["decision_id"] for r in view.records(types=("completion",))}
    for decision_id, outcome in {**answered, **cli_told}.items():
        assert decision_id in decisions, f"{outcome} decision {decision_id} answered but not in the log"
        assert decisions[decision_id]["outcome"] == outcome
        if outcome == "allowed":
            assert decision_id in completions  # executed: its completion too
    by_stream = {s: sum(1 for d in decisions.values() if d["stream"] == s and d["decision_id"] in answered) for s in ("broker-0", "broker-1", "broker-2")}
    assert sum(by_stream.values()) == len(answered) and all(by_stream.values())  # every client answer is in a broker's stream
    broker_decisions = [d for d in decisions.values() if d["stream"].startswith("broker-")]
    assert len(answered) <= len(broker_decisions) <= len(answered) + tally["lost"]  # unanswered ones were in flight when a broker died
    assert sum(1 for d in answered.values() if d == "allowed") == tally["allowed"]
    for victim in restarted:  # the killed writer and its successor both signed the same stream
        lines = (dataroom_home / "audit" / "streams" / f"broker-{victim}" / "audit.jsonl.checkpoints").read_text().splitlines()
        assert len({json.loads(line)["writer"]["pid"] for line in lines}) >= 2


def test_show_and_alerts_read_every_stream(tmp_path: Path) -> None:
    from dataroom.alerts import AlertScanner

    home = tmp_path / "home"
    _write(home, "broker-a", 3, "a")
    _write(home, "cli-b", 3, "b")
    env = {**os.environ, "DATAROOM_HOME": str(home)}
    out = subprocess.run(DATAROOM + ["audit", "show"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    firsts = [line.split()[0] for line in out.stdout.splitlines()]
    assert firsts == ["broker-a:0", "cli-b:0", "broker-a:1", "cli-b:1", "broker-a:2", "cli-b:2"]  # one view, by time
    scanner = AlertScanner(_settings(home, None))
    assert scanner.scan().events == 6 and scanner.scan().events == 0  # a cursor per stream
    _write(home, "cli-b", 1, "c")  # appends seq 3 to cli-b
    assert scanner.scan().events == 1



def test_the_evidence_export_and_a_hypothesis_see_every_stream(dataroom_home: Path) -> None:
    from dataroom import evidence
    from dataroom.pipeline import QueryService

    settings = {s: Settings(home=dataroom_home, audit_stream=s) for s in ("broker-x", "cli-y")}
    ids = {}
    for stream, sql in (("broker-x", "SELECT 1 AS a"), ("cli-y", "SELECT 2 AS b")):
        service = QueryService(settings[stream])
        ids[stream] = service.run("alice", "remediation-acme", sql).decision_id
        service.close()
    service = QueryService(settings["cli-y"])
    try:
        hypothesis = service.registry.register_hypothesis("alice", "remediation-acme", "both streams count", [ids["broker-x"], ids["cli-y"]])  # checked in every stream
        collected = evidence.collect(service.registry, service.audit, "2000-01-01", "2100-01-01", settings["cli-y"])
    finally:
        service.close()
    chain = collected.sections["chain"]
    assert sorted(Path(c["audit_file"]).parent.name for c in chain) == ["broker-x", "cli-y"] and all(c["ok"] for c in chain)
    assert collected.sections["query_summary"] == [{"project_id": "remediation-acme", "outcome": "allowed", "attempts": 2}]
    proofs = {r["decision_id"]: r for r in collected.sections["inclusion_proofs"]}
    assert proofs[ids["broker-x"]]["proved"] and proofs[ids["cli-y"]]["proved"] and {r["hypothesis"] for r in proofs.values()} == {hypothesis.key}
    assert len({k["key_id"] for k in collected.sections["audit_keys"]}) == 2  # each stream its own key
    # the registry writes (the hypothesis) were recorded beside the writer's stream; verify replays every writer's registry stream
    assert (dataroom_home / "audit" / "streams" / "cli-y" / "registry.jsonl").exists()
    verify = subprocess.run(DATAROOM + ["audit", "verify"], capture_output=True, text=True, env={**os.environ, "DATAROOM_HOME": str(dataroom_home)}, timeout=300)
    assert verify.returncode == 0 and "registry OK" in verify.stdout, verify.stdout + verify.stderr
