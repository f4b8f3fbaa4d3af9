"""moto's Lambda invocations routed to the sandboxes (verify.routing), and the scheduled input a
scheduled function is invoked with (verify.scenarios)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.template import FunctionSpec
from verify.routing import TIMED_OUT, Router
from verify.sandbox import Call, SandboxFailed
from verify.scenarios import CheckFailed, scheduled_input

SPEC = FunctionSpec("RecordFn", "Stack-RecordFn", "arn:record", "tasks.record.handler", {}, 1, "")


class FakeSandbox:
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer
        self.events: list[tuple[Any, str]] = []
        self.calls: list[Call] = []

    def invoke(self, event: Any, label: str) -> dict[str, Any]:
        self.events.append((event, label))
        if self.answer is None:
            raise SandboxFailed("the guest exited with status 1: boom")
        self.calls.append(Call(label, 0.1, self.answer.get("result"), None))
        return self.answer


def router(sandbox: FakeSandbox) -> Router:
    by_arn = {SPEC.name: SPEC, SPEC.arn: SPEC}
    return Router({SPEC.name: sandbox}, by_arn.get)  # type: ignore[dict-item]


def test_an_invocation_runs_in_the_functions_sandbox_under_the_scenarios_label() -> None:
    sandbox = FakeSandbox({"result": {"ok": True}})
    routed = router(sandbox)
    routed.label = "upload"
    headers: dict[str, str] = {}
    assert json.loads(routed.invoke("arn:record", b'{"requestId": "r"}', headers)) == {"ok": True}
    assert headers == {}
    assert sandbox.events == [({"requestId": "r"}, "upload")]
    assert routed.last_result(SPEC.name) == {"ok": True}


def test_an_unhandled_error_is_answered_as_lambda_answers_it() -> None:
    error = {"errorType": "StorageError", "errorMessage": "x", "stackTrace": []}
    headers: dict[str, str] = {}
    payload = router(FakeSandbox({"error": error})).invoke(SPEC.name, b"{}", headers)
    assert headers == {"x-amz-function-error": "Unhandled"}
    assert json.loads(payload) == error


def test_a_timed_out_invocation_runs_nothing_and_only_once() -> None:
    sandbox = FakeSandbox({"result": {}})
    routed = router(sandbox)
    routed.time_out_next(SPEC.name)
    headers: dict[str, str] = {}
    payload = json.loads(routed.invoke(SPEC.name, b"{}", headers))
    assert payload["errorType"] == TIMED_OUT == "Sandbox.Timedout"
    assert payload["errorMessage"] == "Task timed out after 1.00 seconds"
    assert headers == {"x-amz-function-error": "Unhandled"}
    assert sandbox.events == []
    routed.invoke(SPEC.name, b"{}", {})
    assert len(sandbox.events) == 1


@pytest.mark.parametrize(
    ("name", "sandbox", "error_type"),
    [
        ("Stack-Other", FakeSandbox({}), "ResourceNotFoundException"),
        (SPEC.name, FakeSandbox(), TIMED_OUT),
    ],
)
def test_an_unknown_function_or_a_dead_sandbox_is_an_error(
    name: str, sandbox: FakeSandbox, error_type: str
) -> None:
    headers: dict[str, str] = {}
    assert json.loads(router(sandbox).invoke(name, b"{}", headers))["errorType"] == error_type
    assert headers == {"x-amz-function-error": "Unhandled"}


def test_a_scheduled_function_gets_its_schedules_input_with_the_execution_id_filled_in() -> None:
    template = {
        "Resources": {
            "Schedule": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "Target": {
                        "Arn": {"Fn::GetAtt": ["SweepFn", "Arn"]},
                        "Input": '{"requestId":"<aws.scheduler.execution-id>"}',
                    }
                },
            }
        }
    }
    event = json.loads(scheduled_input(template, "SweepFn"))
    assert re.fullmatch(r"[0-9a-f-]{36}", event["requestId"])
    with pytest.raises(CheckFailed, match="no schedule targets OtherFn"):
        scheduled_input(template, "OtherFn")
