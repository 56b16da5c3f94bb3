"""The notebook side: ``dataroom.connect(project=...)`` → ``.sql(...)`` → ``polars.DataFrame``.

Inside a notebook server spawned by the data room's JupyterHub, nothing needs configuring: the
broker's URL is in ``DATAROOM_BROKER_URL`` and the server's Hub token in
``JUPYTERHUB_API_TOKEN`` (both set by the Hub). The notebook never sees data paths or
credentials; it sends SQL to the broker, which decides, audits and executes it.

>>> import dataroom
>>> room = dataroom.connect(project="remediation-acme")
>>> room.tables()                     # what the project may see, with each column's classification
>>> df = room.sql("SELECT severity, avg(remediation_days) AS days FROM acme.findings GROUP BY 1")

A query the policy refuses raises :class:`QueryDenied`; its message lists the policy's reasons
(what to change). Other failures raise the other :class:`DataRoomError` subclasses.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl
import pyarrow as pa
import requests

BROKER_URL_ENV = "DATAROOM_BROKER_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
READ_CHUNK = 1 << 20

ProgressCallback = Callable[[int, int | None], None]  # (bytes received, total bytes or None)


class DataRoomError(Exception):
    """Base class of every error the data room client raises."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a stack trace
        return [f"{type(self).__name__}: {self}"]


class QueryInterrupted(KeyboardInterrupt):
    """The query was interrupted (Ctrl-C, the notebook's stop button); the broker was told to cancel it.

    A ``KeyboardInterrupt``, so a script still stops and ``except Exception`` does not swallow it;
    in IPython it shows as one line, not a stack trace.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class NotConfigured(DataRoomError):
    """No broker URL or no token in the environment (not inside a data room notebook server)."""


class BrokerUnavailable(DataRoomError):
    """The broker could not be reached or answered something unexpected."""


class HypothesisRefused(DataRoomError):
    """The registry refused to record a hypothesis (unknown project, foreign queries, not a member)."""


class ReleaseRefused(DataRoomError):
    """A release request was refused (not a table, figure or small text file; too large; foreign queries)."""


class ModelRefused(DataRoomError):
    """The registry refused a model (unsafe file, PII feature, hypothesis not in 5A/5B, unknown model)."""


@dataclass
class Decision:
    """The audited decision about one query, as the broker returned it."""

    decision_id: str
    outcome: str
    reasons: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    rows: int | None = None
    withheld_columns: list[dict[str, str]] = field(default_factory=list)
    suppressed: dict[str, Any] | None = None  # groups the project's output policy held back: {rows, of, rule}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Decision":
        return cls(
            decision_id=str(data.get("decision_id", "")),
            outcome=str(data.get("outcome", "")),
            reasons=list(data.get("reasons") or []),
            error=data.get("error"),
            rows=data.get("rows"),
            withheld_columns=list(data.get("withheld_columns") or []),
            suppressed=data.get("suppressed"),
        )


class QueryRefused(DataRoomError):
    """A query that did not produce a result; ``decision`` holds the audited decision."""

    headline = "query refused"

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        self.decision = decision
        lines = [f"{self.headline} (decision {decision.decision_id}):"]
        lines += [f"  - {r.get('message', '')} [{r.get('code', '')}]" for r in decision.reasons]
        if decision.error:
            lines.append(f"  - {decision.error}")
        if not decision.reasons and not decision.error and message:
            lines.append(f"  - {message}")
        super().__init__("\n".join(lines))

    @property
    def reasons(self) -> list[dict[str, str]]:
        return self.decision.reasons

    @property
    def decision_id(self) -> str:
        return self.decision.decision_id


LIMIT_CODES = {"time_limit", "memory_limit", "row_limit", "engine_guard", "engine_crash", "cancelled"}


class QueryDenied(QueryRefused):
    """The policy denied the query, or a limit stopped it. The message lists why and what to change."""

    headline = "query denied by policy"

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        if decision.reasons and all(r.get("code") in LIMIT_CODES for r in decision.reasons):
            self.headline = "query refused"  # a limit or the engine, not the policy
        super().__init__(decision, message)


class QueryInvalid(QueryRefused):
    """The query could not be decided: unparseable SQL, unknown project, malformed request."""

    headline = "invalid query"


class QueryFailed(QueryRefused):
    """The query was allowed but the data room failed to run it (an internal error)."""

    headline = "query failed"


class NotAuthorized(QueryRefused):
    """The broker refused the token itself (401/403 before any policy decision)."""

    headline = "not authorized"


_AUTH_CODES = {"missing_token", "invalid_token", "missing_scope", "not_a_user", "hub_unavailable"}
_REFUSALS = {"denied": QueryDenied, "invalid": QueryInvalid, "error": QueryFailed}


class DataRoom:
    """A connection to the broker for one project; create it with :func:`connect`."""

    def __init__(self, url: str, token: str, project: str | None, *, timeout: float | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.project = project
        self.timeout = timeout
        self.last_decision: Decision | None = None
        self.decisions: list[str] = []  # every query's decision id, in order: what a hypothesis links
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"token {token}"
        self._http.headers["User-Agent"] = "dataroom-client"

    def __repr__(self) -> str:
        return f"<DataRoom project={self.project!r} broker={self.url!r}>"

    # -- requests ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, self.url + path, timeout=(10, self.timeout), **kwargs)
        except requests.ConnectionError as exc:
            raise BrokerUnavailable(f"cannot reach the data room broker at {self.url}: {exc}") from exc
        except KeyboardInterrupt:
            self._hang_up()
            raise

    def _hang_up(self) -> None:
        """Close every connection (the broker cancels a query whose client went away) and start afresh."""
        headers = dict(self._http.headers)
        self._http.close()
        self._http = requests.Session()
        self._http.headers.update(headers)

    def _refusal(self, response: requests.Response) -> DataRoomError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        decision = body.get("decision") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(decision, dict):
            return BrokerUnavailable(f"broker answered {response.status_code}: {response.text[:300]}")
        parsed = self._remember(Decision.from_json(decision))
        if any(r.get("code") in _AUTH_CODES for r in parsed.reasons):
            return NotAuthorized(parsed, message)
        return _REFUSALS.get(parsed.outcome, QueryFailed)(parsed, message)

    def _json(self, path: str) -> dict[str, Any]:
        response = self._request("GET", path)
        if response.status_code != 200:
            raise self._refusal(response)
        return response.json()

    # -- API -----------------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """The caller as the broker sees them: Hub user name and groups."""
        return self._json("v1/whoami")

    def projects(self) -> pl.DataFrame:
        """The projects you are a member of."""
        return pl.DataFrame(self._json("v1/projects")["projects"])

    def tables(self, project: str | None = None) -> pl.DataFrame:
        """Every table of the project with each column's classification and whether you may see it."""
        project = self._project(project)
        data = self._json(f"v1/projects/{requests.utils.quote(project, safe='')}/tables")
        rows = [
            {
                "table": t["table"],
                "tenant": t["tenant"],
                "column": c["name"],
                "classification": c["classification"],
                "visible": c["visible"],
                "withheld_because": c["reason"],
            }
            for t in data["tables"]
            for c in t["columns"]
        ]
        schema = {"table": pl.String, "tenant": pl.String, "column": pl.String, "classification": pl.String, "visible": pl.Boolean, "withheld_because": pl.String}
        return TableListing(rows, schema=schema)

    def arrow(self, sql: str, project: str | None = None, progress: ProgressCallback | None = None) -> pa.Table:
        """Run ``sql`` through the broker; the result as a ``pyarrow.Table``."""
        project = self._project(project)
        try:
            response = self._request("POST", "v1/query", json={"project": project, "sql": sql}, stream=True)
            with response:
                if response.status_code != 200:
                    raise self._refusal(response)
                if not response.headers.get("Content-Type", "").startswith(ARROW_STREAM):
                    raise BrokerUnavailable(f"broker sent {response.headers.get('Content-Type')!r}, expected an Arrow stream")
                header = response.headers.get("X-Dataroom-Decision")
                self.last_decision = self._remember(Decision.from_json(json.loads(header))) if header else None
                data = _read_body(response, progress)
        except KeyboardInterrupt:
            self._hang_up()  # the broker sees the client go and cancels the query (audited as cancelled)
            raise QueryInterrupted(f"query interrupted; the broker cancels it (project {project})") from None
        return pa.ipc.open_stream(data).read_all()

    def sql(self, sql: str, project: str | None = None, progress: ProgressCallback | None = None) -> pl.DataFrame:
        """Run ``sql`` through the broker (decided, audited, executed there); a ``polars.DataFrame``.

        Raises :class:`QueryDenied` (with the policy's reasons), :class:`QueryInvalid` or
        :class:`QueryFailed`; ``last_decision`` holds the decision either way.
        """
        from dataroom.frames import to_polars

        table = self.arrow(sql, project, progress)
        _show_notes(result_notes(self.last_decision, table))
        return to_polars(table)

    def register_hypothesis(
        self, statement: str, decision_ids: list[str] | None = None, project: str | None = None, note: str = ""
    ) -> dict[str, Any]:
        """Record a hypothesis in the project, linking the queries behind it (default: this session's).

        The hypothesis starts in phase 2 (Data Exploration) and becomes the change ticket auditors
        follow; advance it with ``dataroom hypothesis advance``. Raises :class:`HypothesisRefused`.
        """
        body = {
            "project": self._project(project),
            "statement": statement,
            "decision_ids": list(self.decisions if decision_ids is None else decision_ids),
            "note": note,
        }
        response = self._request("POST", "v1/hypotheses", json=body)
        if response.status_code != 201:
            raise HypothesisRefused(_message(response))
        return response.json()["hypothesis"]

    def hypotheses(self, project: str | None = None) -> pl.DataFrame:
        """Hypotheses of your projects (or of ``project``)."""
        params = {"project": project} if project else None
        response = self._request("GET", "v1/hypotheses", params=params)
        if response.status_code != 200:
            raise HypothesisRefused(_message(response))
        return pl.DataFrame(response.json()["hypotheses"])

    # -- models and their monitoring ------------------------------------------------------------
    def register_model(
        self,
        name: str,
        estimator: Any,
        *,
        hypothesis: str,
        features: list[str],
        target: str,
        reference: tuple[Any, Any],
        segment: str = "tenant",
        table: str = "findings",
        time_column: str = "detected_at",
        note: str = "",
    ) -> dict[str, Any]:
        """Register a fitted scikit-learn linear estimator for production monitoring, per ``segment``.

        The estimator travels as a skops file (never a pickle) and is validated by the broker. The
        hypothesis must be in phase 5A or 5B; ``reference`` is the period it was fitted on
        (start, end exclusive). Each registration of a name is a new version. Raises :class:`ModelRefused`.
        """
        import skops.io as sio

        body = {
            "name": name,
            "artifact": base64.b64encode(sio.dumps(estimator)).decode("ascii"),
            "hypothesis": hypothesis,
            "features": list(features),
            "target": target,
            "reference": [str(reference[0]), str(reference[1])],
            "segment": segment,
            "table": table,
            "time_column": time_column,
            "note": note,
        }
        response = self._request("POST", "v1/models", json=body)
        if response.status_code != 201:
            raise ModelRefused(_message(response))
        return response.json()["model"]

    def models(self) -> pl.DataFrame:
        """The models of your projects (latest versions)."""
        response = self._request("GET", "v1/models")
        if response.status_code != 200:
            raise ModelRefused(_message(response))
        return pl.DataFrame(response.json()["models"])

    def monitor(self, name: str) -> dict[str, Any]:
        """Run the monitor for model ``name`` now (as the monitor's service principal); the run's document."""
        response = self._request("POST", f"v1/models/{name}/monitoring")
        if response.status_code != 200:
            raise ModelRefused(_message(response))
        return response.json()["run"]

    def monitoring(self, name: str, alerts: bool = False) -> pl.DataFrame:
        """Stored monitoring results of model ``name``: one row per tenant and week (n, r2, rmse, mae and
        per monitored column ``<column>_ks``, ``_ks_p``, ``_psi``, ``_wasserstein``); ``alerts=True``
        gives its alerts instead."""
        response = self._request("GET", f"v1/models/{name}/monitoring")
        if response.status_code != 200:
            raise ModelRefused(_message(response))
        doc = response.json()
        if alerts:
            return pl.DataFrame(doc["alerts"])
        rows = []
        for w in doc["windows"]:
            row = {k: w[k] for k in ("segment", "window_start", "n", "r2", "rmse", "mae")}
            for column, d in (w.get("drift") or {}).items():
                for stat in ("ks", "ks_p", "psi", "wasserstein"):
                    row[f"{column}_{stat}"] = d.get(stat)
            rows.append(row)
        frame = pl.DataFrame(rows, infer_schema_length=None)
        return frame.with_columns(pl.col("window_start").str.to_date()) if rows else frame

    def request_release(self, obj: Any, title: str, justification: str, *, project: str | None = None, decision_ids: list[str] | None = None) -> dict[str, Any]:
        """The one way a result leaves the room: ask for ``obj`` (a polars/pandas DataFrame, a matplotlib
        Figure, or the path of a text/CSV file of at most 5 MiB) to be released.

        The broker runs the output checks and files the request with the checker's report (returned
        here); two security reviewers decide, and a released object is downloaded from the review
        service. ``decision_ids`` are the queries behind it (default: this connection's queries).
        """
        from dataroom.outputs.objects import ReleaseObjectError, encode_object

        project = self._project(project)
        try:
            release = encode_object(obj, title)
        except ReleaseObjectError as exc:
            raise ReleaseRefused(str(exc)) from exc
        ids = list(dict.fromkeys(self.decisions if decision_ids is None else decision_ids))
        body = {"project": project, "title": title, "justification": justification, "kind": release.kind, "filename": release.filename,
                "data": base64.b64encode(release.data).decode(), "decision_ids": ids}
        response = self._request("POST", "v1/releases", json=body)
        if response.status_code != 201:
            raise ReleaseRefused(_message(response))
        return response.json()["release"]

    def _remember(self, decision: Decision) -> Decision:
        if decision.decision_id:
            self.decisions.append(decision.decision_id)
        self.last_decision = decision
        return decision

    def _project(self, project: str | None) -> str:
        project = project or self.project
        if not project:
            raise NotConfigured("name a project: dataroom.connect(project=...) (see .projects() for yours)")
        return project

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "DataRoom":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def result_notes(decision: Decision | None, table: pa.Table) -> list[str]:
    """Lines a person should read with a result: columns a ``*`` left out and why, duplicate
    column names made unique."""
    from dataroom.frames import notes

    lines = []
    if decision is not None and decision.withheld_columns:
        left_out = ", ".join(f"{w.get('table')}.{w.get('column')} ({w.get('reason')})" for w in decision.withheld_columns)
        lines.append(f"note: * left out withheld columns: {left_out}")
    if decision is not None and decision.suppressed and decision.suppressed.get("rows"):
        s = decision.suppressed
        lines.append(f"note: {s['rows']} of {s['of']} result rows suppressed: {s['rule']}")
    return lines + notes(table)


def _show_notes(lines: list[str]) -> None:
    """Notes about a result: under the cell's result in IPython (after it is displayed), else on stderr."""
    if not lines:
        return
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is None:
        print("\n".join(lines), file=sys.stderr)
        return

    def show(*_: Any) -> None:
        shell.events.unregister("post_execute", show)
        print("\n".join(lines), file=sys.stderr, flush=True)

    shell.events.register("post_execute", show)


class TableListing(pl.DataFrame):
    """``room.tables()``: a ``polars.DataFrame`` that shows every table and column, never a cut repr
    (a rich table in Jupyter, plain text elsewhere); operations on it return plain frames."""

    _FULL = {"tbl_rows": -1, "tbl_cols": -1, "fmt_str_lengths": 200, "tbl_width_chars": 200}

    def __repr__(self) -> str:
        with pl.Config(**self._FULL):
            return super().__repr__()

    def __str__(self) -> str:
        with pl.Config(**self._FULL):
            return super().__str__()

    def _repr_html_(self, **kwargs: Any) -> str:
        with pl.Config(**self._FULL):
            return super()._repr_html_(**kwargs)


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return f"broker answered {response.status_code}: {response.text[:300]}"


def _read_body(response: requests.Response, progress: ProgressCallback | None) -> pa.Buffer:
    """The body into one buffer (sized by Content-Length when given), reporting progress."""
    total = response.headers.get("Content-Length")
    expected = int(total) if total and total.isdigit() else None
    raw = response.raw
    if expected is not None:
        # one buffer from Arrow's memory pool (reused across queries; a fresh bytearray of this
        # size would cost a page fault per 4 KiB), filled in place, decoded without copies
        buf = pa.allocate_buffer(expected)
        view = memoryview(buf).cast("B")  # Arrow exports signed bytes; readers write unsigned
        got = 0
        last = time.monotonic()
        while got < expected:
            n = raw.readinto(view[got : got + READ_CHUNK])
            if not n:
                raise BrokerUnavailable(f"the result stream ended after {got} of {expected} bytes")
            got += n
            if progress and time.monotonic() - last > 0.2:
                progress(got, expected)
                last = time.monotonic()
        if progress:
            progress(got, expected)
        return buf
    parts = []
    got = 0
    for chunk in response.iter_content(READ_CHUNK):
        parts.append(chunk)
        got += len(chunk)
        if progress:
            progress(got, None)
    return pa.py_buffer(b"".join(parts))


_default: DataRoom | None = None


def connect(project: str | None = None, *, url: str | None = None, token: str | None = None, timeout: float | None = None) -> DataRoom:
    """Connect to the data room broker for ``project``.

    ``url`` and ``token`` default to ``$DATAROOM_BROKER_URL`` and ``$JUPYTERHUB_API_TOKEN``, which
    a data room notebook server has. The new connection becomes the default for ``%%sql``.
    ``timeout`` is the read timeout in seconds (default: none; the broker enforces its own limit).
    """
    global _default
    url = url or os.environ.get(BROKER_URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not url:
        raise NotConfigured(f"${BROKER_URL_ENV} is not set: run this inside a notebook server started by the data room's JupyterHub (`dataroom up`)")
    if not token:
        raise NotConfigured(f"${TOKEN_ENV} is not set: run this inside a notebook server started by the data room's JupyterHub (`dataroom up`)")
    room = DataRoom(url, token, project, timeout=timeout)
    _default = room
    return room


def default_connection() -> DataRoom | None:
    """The connection made last by :func:`connect` (used by ``%%sql``)."""
    return _default
