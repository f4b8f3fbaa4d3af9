"""local.lambda_runtime as Lambda behaves: a timed-out invocation runs no further AWS call (the
sandbox is stopped), and what an invocation prints goes to its function's log group."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from moto.logs.models import logs_backends

from local.lambda_runtime import LambdaRuntime
from local.template import ACCOUNT_ID, REGION, FunctionSpec
from tests.unit import runtime_probe_task as probe

SPEC = FunctionSpec(
    logical_id="Probe",
    name="probe-function",
    arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:probe-function",
    handler="tests.unit.runtime_probe_task.handler",
    environment={},
    timeout_seconds=1,
    log_group="/aws/lambda/probe-function",
)


class _Session:
    """Stands in for the client's HTTP session: records each request sent."""

    def __init__(self) -> None:
        self.sent: list[float] = []

    def send(self, request: Any) -> AWSResponse:
        self.sent.append(time.monotonic())

        class Body:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield b"{}"

        return AWSResponse(request.url, 200, HeadersDict(), Body())

    def close(self) -> None:
        pass


@pytest.fixture
def runtime() -> Iterator[tuple[LambdaRuntime, _Session]]:
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    session = _Session()
    client._endpoint.http_session = session
    probe.CLIENT, probe.CALLS[:] = client, []
    runtime = LambdaRuntime([SPEC], aws_endpoint="http://127.0.0.1:9")
    with runtime.installed():
        yield runtime, session
    client.close()


def _invoke(runtime: LambdaRuntime, **event: Any) -> tuple[dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    payload = runtime.invoke(SPEC.name, json.dumps(event), headers)
    return json.loads(payload), headers


def _log_lines() -> list[str]:
    group = logs_backends[ACCOUNT_ID][REGION].groups[SPEC.log_group]
    return [e.message for stream in group.streams.values() for e in stream.events]


def test_a_timed_out_invocation_makes_no_further_call(runtime):
    runtime, session = runtime
    result, headers = _invoke(runtime, marker="late", sleep=SPEC.timeout_seconds + 0.5)
    assert (headers["x-amz-function-error"], result["errorType"]) == (
        "Unhandled",
        "Sandbox.Timedout",
    )
    deadline = time.monotonic() + 5
    while not probe.CALLS and time.monotonic() < deadline:
        time.sleep(0.05)
    assert probe.CALLS == ["SandboxStopped"]  # the thread woke up and was stopped at its call
    assert session.sent == []


def test_an_invocation_in_time_makes_its_call_and_its_prints_reach_its_log_group(runtime):
    runtime, session = runtime
    print("printed by the test, not by an invocation")
    result, headers = _invoke(runtime, marker="in-time", sleep=0)
    assert result == {"ok": True}
    assert "x-amz-function-error" not in headers
    assert probe.CALLS == ["sent"]
    assert len(session.sent) == 1
    lines = _log_lines()
    assert "probe printed in-time" in lines
    assert not any("printed by the test" in line for line in lines)
