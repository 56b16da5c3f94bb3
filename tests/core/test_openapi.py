"""The broker's OpenAPI document is valid OpenAPI and names every route the broker serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from dataroom.broker.openapi import openapi_spec


def test_openapi_document_is_valid_and_complete() -> None:
    spec = openapi_spec("/services/broker/", "broker")
    validate(spec)
    assert set(spec["paths"]) == {
        "/health", "/openapi.json", "/v1/whoami", "/v1/projects", "/v1/projects/{project}/tables", "/v1/query",
        "/v1/hypotheses", "/v1/models", "/v1/models/{name}/monitoring", "/v1/releases",
    }
    query = spec["paths"]["/v1/query"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "429", "500"} <= set(query)
