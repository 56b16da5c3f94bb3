"""Anchoring: ship signed checkpoints and the log segments they close to an S3 Object Lock bucket, and verify against it.

Whatever happens to this machine later, the bucket keeps (Object Lock, compliance mode) every
checkpoint and the exact bytes of the records up to it::

    s3://BUCKET/PREFIX/STREAM/checkpoints/000000001000.json          the checkpoint line, as signed
    s3://BUCKET/PREFIX/STREAM/segments/000000000000-000000001000.jsonl  records 0..999, byte for byte

:class:`Shipper` runs beside the writer, never in a query: ``dataroom audit ship`` (once, or as a
loop). It ships checkpoints in order, each after the segment it closes, refuses to anchor a
segment that does not match its checkpoint, retries with exponential backoff, and keeps its
place in ``audit.jsonl.shipped``; whatever it could not ship stays queued (the local checkpoint
file is the queue) and :meth:`Shipper.status` reports the backlog and its age.

:func:`verify_anchor` reads the bucket back and names records missing locally, records that
differ from their anchored copy (a local chain recomputed from there on), and records added
locally after the fact (timestamps older than an anchored checkpoint that does not hold them).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataroom.audit.checkpoints import read_checkpoints, record_leaf, signed_message
from dataroom.audit.keys import hand_to_directory_owner, load_public_keys, signature_ok
from dataroom.audit.merkle import Frontier

if TYPE_CHECKING:
    from dataroom.audit.log import AuditLog
    from dataroom.audit.verify import VerifyResult


@dataclass(frozen=True)
class AnchorTarget:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "AnchorTarget":
        if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket, prefix.strip("/"))

    def key(self, stream: str, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, stream, *parts) if p)


def s3_client(endpoint_url: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10))


class ShipError(RuntimeError):
    """Shipping stopped; what was not shipped stays queued."""


@dataclass
class ShipStatus:
    shipped_size: int  # records anchored so far
    backlog: int  # checkpoints signed locally, not yet anchored
    oldest_unshipped: str | None  # timestamp of the oldest of them
    shipped_now: int = 0
    error: str | None = None

    @property
    def lag_s(self) -> float:
        if not self.oldest_unshipped:
            return 0.0
        return max(0.0, (dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(self.oldest_unshipped)).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {"shipped_size": self.shipped_size, "backlog": self.backlog, "oldest_unshipped": self.oldest_unshipped, "lag_s": round(self.lag_s, 1),
                "shipped_now": self.shipped_now, "error": self.error}


class Shipper:
    def __init__(
        self,
        log: "AuditLog",
        target: AnchorTarget,
        client: Any,
        retention_days: int = 365,
        attempts: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.log, self.target, self.client = log, target, client
        self.retention_days, self.attempts, self.backoff_s, self._sleep = retention_days, attempts, backoff_s, sleep
        self.state_path = log.path.with_name(log.path.name + ".shipped")

    def _state(self) -> dict[str, int]:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {"size": -1, "bytes": 0}

    def _save_state(self, size: int, offset: int) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"size": size, "bytes": offset}))
        os.chmod(tmp, 0o600)
        hand_to_directory_owner(tmp)
        os.replace(tmp, self.state_path)

    def _pending(self) -> list[dict[str, Any]]:
        cp_file = read_checkpoints(self.log.checkpoint_path)
        shipped = self._state()["size"]
        out, last = [], shipped
        for _, cp in cp_file.checkpoints if cp_file else []:
            if isinstance(cp.get("size"), int) and cp["size"] > last:
                out.append(cp)
                last = cp["size"]
        return out

    def status(self) -> ShipStatus:
        pending = self._pending()
        return ShipStatus(self._state()["size"], len(pending), pending[0].get("timestamp") if pending else None)

    def _put(self, key: str, body: bytes) -> None:
        until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=self.retention_days)
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                self.client.put_object(
                    Bucket=self.target.bucket, Key=key, Body=body, ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until, ContentType="application/json"
                )
                return
            except Exception as exc:  # endpoint down, throttled, denied: retried, then queued
                if attempt == self.attempts:
                    raise ShipError(f"cannot upload s3://{self.target.bucket}/{key} after {attempt} attempts: {exc}") from exc
                self._sleep(delay)
                delay *= 2

    def ship_once(self) -> ShipStatus:
        """Ship every queued checkpoint (segment first); stop at the first that cannot be shipped."""
        state = self._state()
        shipped_size, offset = max(state["size"], 0), state["bytes"]
        done = 0
        error = None
        try:
            with self.log.path.open("rb") as fh:
                for cp in self._pending():
                    fh.seek(offset)
                    segment = fh.read(int(cp["bytes"]) - offset)
                    lines = segment.split(b"\n")[:-1] if segment else []
                    if len(lines) != cp["size"] - shipped_size or (lines and json.loads(lines[-1]).get("hash") != cp.get("last_hash")):
                        raise ShipError(f"the local log does not match checkpoint of {cp['size']} records: not anchoring it (run `dataroom audit verify`)")
                    if lines:
                        self._put(self.target.key(self.log.stream, "segments", f"{shipped_size:012d}-{cp['size']:012d}.jsonl"), segment)
                    self._put(self.target.key(self.log.stream, "checkpoints", f"{cp['size']:012d}.json"), json.dumps(cp, sort_keys=True).encode())
                    shipped_size, offset = cp["size"], int(cp["bytes"])
                    self._save_state(shipped_size, offset)
                    done += 1
        except ShipError as exc:
            error = str(exc)
        status = self.status()
        status.shipped_now, status.error = done, error
        return status


@dataclass
class AnchorResult:
    ok: bool
    anchored_checkpoints: int = 0
    anchored_records: int = 0
    local: "VerifyResult | None" = None
    problems: list[str] = field(default_factory=list)
    missing_locally: tuple[int, int] | None = None  # seq range anchored but not in the local log
    first_difference: int | None = None  # first seq whose local bytes differ from the anchored copy
    backdated: list[int] = field(default_factory=list)  # local records after the anchor, timestamped before it

    def describe(self) -> str:
        head = f"anchor {'OK' if self.ok else 'MISMATCH'}: {self.anchored_checkpoints} anchored checkpoint(s) covering {self.anchored_records} record(s)"
        local = f"local log: {self.local.describe()}" if self.local else ""
        return "\n".join([head, *(f"  {p}" for p in self.problems), local])


BACKDATE_SLACK_S = 5.0  # a record stamped just before a checkpoint may wait for the lock and land after it


def _minus(stamp: str, seconds: float) -> str:
    try:
        return (dt.datetime.fromisoformat(stamp) - dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")
    except ValueError:
        return stamp


def _parsed(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line


def _list(client: Any, bucket: str, prefix: str) -> list[str]:
    keys, token = [], None
    while True:
        kwargs = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        page = client.list_objects_v2(**kwargs)
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return sorted(keys)
        token = page["NextContinuationToken"]


def verify_anchor(log: "AuditLog", target: AnchorTarget, client: Any, public_key: Path | None = None) -> AnchorResult:
    """Compare the local log with what the bucket holds (see the module docstring)."""
    result = AnchorResult(ok=True, local=log.verify(public_key))
    keys = load_public_keys(public_key or log.public_key_path)
    get = lambda key: client.get_object(Bucket=target.bucket, Key=key)["Body"].read()  # noqa: E731
    checkpoints = []
    for key in _list(client, target.bucket, target.key(log.stream, "checkpoints") + "/"):
        cp = json.loads(get(key))
        if cp.get("key_id") not in keys or not signature_ok(keys[cp["key_id"]], signed_message(cp), cp.get("sig", ""), cp.get("alg")):
            result.problems.append(f"anchored checkpoint {key} is not signed by the trusted key: ignored")
            continue
        checkpoints.append(cp)
    result.anchored_checkpoints = len(checkpoints)
    result.anchored_records = max((cp["size"] for cp in checkpoints), default=0)
    signed_roots = {cp["size"]: cp["root"] for cp in checkpoints}
    last = max(checkpoints, key=lambda cp: cp["size"]) if checkpoints else None
    backdated_before = _minus(last.get("timestamp", ""), BACKDATE_SLACK_S) if last else ""

    def anchored_lines() -> Iterator[bytes]:
        """The anchored records in order, one segment downloaded at a time."""
        expected = 0
        for key in _list(client, target.bucket, target.key(log.stream, "segments") + "/"):
            if int(key.rsplit("/", 1)[-1].split("-")[0]) != expected:
                result.problems.append(f"anchored segment {key} does not follow the previous one (expected to start at {expected})")
                return
            for line in get(key).split(b"\n")[:-1]:
                expected += 1
                yield line

    frontier = Frontier()
    local_count = anchored_count = 0
    theirs_iter = anchored_lines()
    with (log.path.open("rb") if log.path.exists() else io.BytesIO()) as local:
        for seq in itertools.count():
            theirs = next(theirs_iter, None)
            mine = local.readline()
            mine = mine[:-1] if mine.endswith(b"\n") else (None if not mine else mine)
            if theirs is None and mine is None:
                break
            if theirs is not None:
                anchored_count += 1
                frontier.push(record_leaf(json.loads(theirs)["hash"]))
                if signed_roots.get(frontier.size, frontier.root().hex()) != frontier.root().hex():
                    result.problems.append(f"anchored segments do not match the anchored checkpoint of {frontier.size} records")
            if mine is not None:
                local_count += 1
            if theirs is not None and mine is not None and result.first_difference is None and mine != theirs and _parsed(mine) != _parsed(theirs):
                result.first_difference = seq  # the same record written differently is the same record
                recomputed = result.local is not None and result.local.ok
                result.problems.append(
                    f"record seq {seq} differs from its anchored copy"
                    + (": the local chain was recomputed from there on (it verifies on its own)" if recomputed else " (edited, removed or inserted locally)")
                )
            if theirs is None and mine is not None and last and result.first_difference is None and seq >= result.anchored_records:
                stamp = (_parsed(mine) or {}).get("timestamp") if isinstance(_parsed(mine), dict) else None
                if stamp and stamp < backdated_before:
                    result.backdated.append(seq)
    if local_count < result.anchored_records:
        result.missing_locally = (local_count, result.anchored_records - 1)
        result.problems.append(f"records seq {local_count}..{result.anchored_records - 1} are anchored but missing locally (cut off or rolled back)")
    if result.backdated and last:
        result.problems.append(
            f"{len(result.backdated)} local record(s) after the anchor are dated before the anchored checkpoint of {last['size']} records "
            f"(signed {last.get('timestamp')}): added after the fact (seq {', '.join(map(str, result.backdated[:10]))})"
        )
    result.ok = not result.problems and (result.local is None or result.local.ok)
    return result
