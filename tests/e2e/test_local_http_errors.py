"""Every answer of the local API is JSON in the API's error shape, as API Gateway's: a method no
resource has (TRACE, a made-up one) gets the 403 gateway response, and a request that is not
HTTP enough to route (a malformed request line, a header line over the limit) a 400, never
the HTML pages of Python's HTTP server."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

from local.emulator import HOST, Emulator

TOO_LONG = 70_000  # over the HTTP server's 65,536 bytes per line


def _exchange(emulator: Emulator, raw: bytes) -> tuple[int, http.client.HTTPMessage, Any]:
    """Send ``raw`` as it is; the status, headers and JSON body of the answer."""
    with socket.create_connection((HOST, emulator.port), timeout=30) as connection:
        connection.sendall(raw)
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read()
    return response.status, response.headers, json.loads(body)


def _assert_api_error(answer: tuple[int, http.client.HTTPMessage, Any], status: int, code: str):
    got_status, headers, body = answer
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error", "requestId"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    assert headers["x-amzn-RequestId"] == body["requestId"]


@pytest.mark.parametrize("method", ["TRACE", "BREW"])
def test_a_method_no_resource_has_gets_the_missing_token_gateway_response(
    emulator: Emulator, method: str
) -> None:
    raw = f"{method} /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n".encode()
    _assert_api_error(_exchange(emulator, raw), 403, "Forbidden")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="one-word-request-line"),
        pytest.param(b"GET /upload HTTP/1.1 extra\r\n\r\n", id="four-word-request-line"),
        pytest.param(b"POST /upload HTTP/2.0\r\n\r\n", id="http-2-request-line"),
        pytest.param(b"GET /" + b"a" * TOO_LONG + b" HTTP/1.1\r\n\r\n", id="request-line-too-long"),
        pytest.param(
            b"POST /upload HTTP/1.1\r\nX-Long: " + b"a" * TOO_LONG + b"\r\n\r\n",
            id="header-line-too-long",
        ),
        pytest.param(
            b"POST /upload HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % n for n in range(120))
            + b"\r\n",
            id="too-many-headers",
        ),
    ],
)
def test_a_request_not_http_enough_to_route_gets_a_json_400(emulator: Emulator, raw: bytes) -> None:
    _assert_api_error(_exchange(emulator, raw), 400, "ValidationError")
