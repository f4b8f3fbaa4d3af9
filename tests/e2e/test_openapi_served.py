"""Local mode serves the OpenAPI document (``GET /openapi.json``), and the document's operations
are the methods of the synthesized API, each with its success status."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import requests

from local.emulator import OPENAPI_FILE, Emulator

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _base_url(emulator: Emulator) -> str:
    return urlsplit(emulator.api_url)._replace(path="").geturl()


def test_local_mode_serves_the_generated_document(emulator: Emulator) -> None:
    from infra.openapi import REGENERATE_COMMAND, render  # loads the CDK library: only here

    response = requests.get(f"{_base_url(emulator)}/openapi.json", timeout=60)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == render().encode(), f"run `{REGENERATE_COMMAND}`"


def test_the_document_is_no_route_of_the_api(emulator: Emulator) -> None:
    response = requests.post(f"{_base_url(emulator)}/openapi.json", json={}, timeout=60)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_the_document_has_the_operations_of_the_synthesized_api(emulator: Emulator) -> None:
    document = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert emulator.gateway is not None
    methods = {
        (method.path, method.http_method.lower()): method
        for method in emulator.gateway.api.methods
        if method.http_method != "OPTIONS"  # CORS preflights, with corsOrigins only
    }
    documented = {
        (path, name): spec
        for path, item in document["paths"].items()
        for name, spec in item.items()
        if name in HTTP_METHODS
    }

    assert set(documented) == set(methods)
    for route, method in methods.items():
        [default] = [r for r in method.integration_responses if not r.selection_pattern]
        statuses = documented[route]["responses"]
        assert min(statuses, key=int) == default.status_code, route
        assert ("requestBody" in documented[route]) == bool(method.request_models), route
