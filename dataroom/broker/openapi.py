"""OpenAPI 3.1 description of the broker's HTTP API, served at ``<prefix>openapi.json``."""

from __future__ import annotations

from typing import Any

ARROW_STREAM = "application/vnd.apache.arrow.stream"

_REASON = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "examples": ["pii_column"]},
        "message": {"type": "string", "examples": ["column acme.findings.analyst_email is PII (referenced in select): leave it out of the query"]},
    },
}

_DECISION = {
    "type": "object",
    "description": "The audited decision (no result rows); `decision_id` names its audit record.",
    "required": ["decision_id", "outcome", "allowed", "reasons"],
    "properties": {
        "decision_id": {"type": "string", "format": "uuid"},
        "outcome": {"type": "string", "enum": ["allowed", "denied", "invalid", "error"]},
        "allowed": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}},
        "error": {"type": ["string", "null"]},
        "rows": {"type": ["integer", "null"]},
        "withheld_columns": {
            "type": "array",
            "description": "Columns left out of a `*` expansion, with why.",
            "items": {
                "type": "object",
                "properties": {k: {"type": "string"} for k in ("table", "column", "classification", "reason")},
            },
        },
        "suppressed": {
            "type": ["object", "null"],
            "description": "Under the project's output policy: result rows held back for too little support, of how many, and the rule.",
            "properties": {"rows": {"type": "integer"}, "of": {"type": "integer"}, "rule": {"type": "string"}},
        },
    },
}

_REFUSAL = {
    "type": "object",
    "required": ["decision"],
    "properties": {"decision": {"$ref": "#/components/schemas/Decision"}, "message": {"type": "string"}},
}


def _refusal(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}}


_AUTH_ERRORS = {
    "401": _refusal("No token, or a token JupyterHub does not accept. Audited."),
    "403": _refusal(
        "The token lacks `access:services!service=<name>`; or the project does not exist or the caller is not a member "
        "(one answer for both: `project_not_available`); or (queries) the policy, a limit or the engine guard refused it "
        "(reason codes such as `pii_column`, `function_not_allowed`, `time_limit`, `memory_limit`, `row_limit`, `engine_crash`). Audited."
    ),
    "429": _refusal("Too many refused requests from this client: answered without a Hub lookup, counted in a coalesced audit record. Retry after `Retry-After` seconds."),
    "503": _refusal("JupyterHub could not be asked about the token. Audited."),
}


def openapi_spec(prefix: str = "/", service_name: str = "broker") -> dict[str, Any]:
    """The API description; ``prefix`` is the service's URL prefix (``/services/<name>/`` under the Hub)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Data room broker",
            "version": "1",
            "description": (
                "The governed path from a notebook to production data. Every request carries the caller's JupyterHub "
                "token; every query is analysed, decided by policy, audited and only then executed. "
                "Results are Arrow IPC streams."
            ),
        },
        "servers": [{"url": prefix.rstrip("/") or "/"}],
        "components": {
            "securitySchemes": {
                "hubToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": f"`token <JupyterHub API token>` holding the scope access:services!service={service_name}",
                }
            },
            "schemas": {
                "Reason": _REASON,
                "Decision": _DECISION,
                "Refusal": _REFUSAL,
                "QueryRequest": {
                    "type": "object",
                    "required": ["project", "sql"],
                    "properties": {
                        "project": {"type": "string", "description": "The approved project the query belongs to", "examples": ["remediation-acme"]},
                        "sql": {"type": "string", "description": "One SQL statement (DuckDB dialect)"},
                    },
                },
            },
        },
        "security": [{"hubToken": []}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness: the broker is up and its policy bundle is loaded",
                    "security": [],
                    "responses": {"200": {"description": "Up", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
            "/v1/whoami": {
                "get": {
                    "summary": "The caller as the broker sees them (user, Hub groups)",
                    "responses": {"200": {"description": "The caller"}, **_AUTH_ERRORS},
                }
            },
            "/v1/projects": {
                "get": {
                    "summary": "Projects the caller is a member of",
                    "responses": {"200": {"description": "Projects"}, **_AUTH_ERRORS},
                }
            },
            "/v1/projects/{project}/tables": {
                "get": {
                    "summary": "A project's tables, every column with its classification and whether the project may see it",
                    "parameters": [{"name": "project", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "Tables and columns"},
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/v1/hypotheses": {
                "get": {"summary": "Hypotheses of a project the caller is a member of (`?project=`)", "responses": {"200": {"description": "Hypotheses"}, **_AUTH_ERRORS}},
                "post": {
                    "summary": "Register a hypothesis linking audited queries: {project, statement, decision_ids, note}",
                    "responses": {"201": {"description": "Registered"}, "400": _refusal("Malformed request."), **_AUTH_ERRORS},
                },
            },
            "/v1/models": {
                "get": {"summary": "Models of the caller's projects", "responses": {"200": {"description": "Models"}, **_AUTH_ERRORS}},
                "post": {
                    "summary": "Register a model (a skops file, base64) from a hypothesis in phase 5A/5B: {name, artifact, hypothesis, features, target, reference}",
                    "responses": {"201": {"description": "Registered"}, "400": _refusal("Not a safe model file, PII features, wrong phase, or a malformed request."), "413": _refusal("Larger than 1 MiB."), **_AUTH_ERRORS},
                },
            },
            "/v1/models/{name}/monitoring": {
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "Per-tenant, per-window metrics, drift and alerts of a model", "responses": {"200": {"description": "Monitoring results"}, "404": _refusal("No such model in the caller's projects."), **_AUTH_ERRORS}},
                "post": {"summary": "Run the monitor for the model now (every query governed and audited as the monitor's principal)", "responses": {"200": {"description": "The run"}, **_AUTH_ERRORS}},
            },
            "/v1/releases": {
                "get": {"summary": "The caller's release requests and where they stand (a security reviewer's: all)", "responses": {"200": {"description": "Release requests"}, **_AUTH_ERRORS}},
                "post": {
                    "summary": "Ask for a result to leave the room: {project, title, justification, kind (table|figure|text), data (base64), filename?, decision_ids}",
                    "description": (
                        "The output checks run (ACRO's threshold, dominance and p-ratio rules where they apply; no PII or quasi-identifier "
                        "values; no single-tenant cells in multi-tenant projects; the support of the linked queries) and the request is filed "
                        "with the checker's report. Two security reviewers other than the requester release it in the review service, "
                        "which alone hands released objects out."
                    ),
                    "responses": {
                        "201": {"description": "Filed, with the checker's report"},
                        "400": _refusal("Not a table, figure or text; not valid base64 or CSV; linked queries not the caller's in the project; a malformed request."),
                        "413": _refusal("The object is larger than 5 MiB."),
                        **_AUTH_ERRORS,
                    },
                },
            },
            "/v1/query": {
                "post": {
                    "summary": "Run one SQL statement through the governed pipeline",
                    "description": (
                        "Analyse, decide (Rego), audit, execute with the broker's time, memory and row limits, audit. "
                        "Closing the connection cancels a running query."
                    ),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}}},
                    "responses": {
                        "200": {
                            "description": "Allowed and executed: the result as an Arrow IPC stream. Header `X-Dataroom-Decision` holds the Decision as JSON.",
                            "headers": {
                                "X-Dataroom-Decision": {"schema": {"type": "string"}, "description": "Decision (JSON)"},
                                "X-Dataroom-Decision-Id": {"schema": {"type": "string"}},
                            },
                            "content": {ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "400": _refusal("Invalid: unparseable SQL or text that is not UTF-8, SQL DuckDB rejects, or a malformed request. Audited."),
                        "413": _refusal("The request body is larger than 1 MiB. Audited."),
                        **_AUTH_ERRORS,
                        "500": _refusal("An internal failure of the data room (data unreachable, the policy could not decide). Audited."),
                    },
                }
            },
        },
    }
