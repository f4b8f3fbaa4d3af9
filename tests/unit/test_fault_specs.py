"""Local mode's ``--fault`` / ``--delay`` specs and :class:`local.faults.Faults`: targets checked
against botocore's models, one-line refusals, and a delay that holds a task's request after the
client's ``before-send`` hooks, just before it goes out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ClientError

from local.faults import Delay, Fault, Faults, parse_delay, parse_fault, task_scope


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("s3:PutObject", Fault("s3", "PutObject", "InternalServerError")),
        (" DynamoDB : UpdateItem = Throttling", Fault("dynamodb", "UpdateItem", "Throttling")),
        (
            "kms:GenerateDataKey=KMSInternalException",
            Fault("kms", "GenerateDataKey", "KMSInternalException"),
        ),
    ],
)
def test_good_fault_specs(spec, expected):
    assert parse_fault(spec) == expected


def test_a_spec_may_name_the_one_task_it_affects():
    fault = parse_fault("record/dynamodb:TransactWriteItems=TransactionCanceledException")
    assert (fault.task, fault.service, fault.operation) == (
        "record",
        "dynamodb",
        "TransactWriteItems",
    )
    assert fault.spec == "record/dynamodb:TransactWriteItems=TransactionCanceledException"
    assert parse_delay(" compensate / s3:DeleteObject=2").task == "compensate"
    assert parse_fault("s3:PutObject").task is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "recrod/dynamodb:GetItem",
            "recrod/dynamodb:GetItem: 'recrod' is not a task (did you mean 'record'?)",
        ),
        ("/s3:PutObject", "/s3:PutObject: not [TASK/]SERVICE:Operation[=ErrorCode]"),
    ],
)
def test_an_unknown_task_is_refused(spec, message):
    assert _refusal(parse_fault, spec) == message


@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("s3:PutObject=5", 5.0), ("dynamodb:GetItem=0.25", 0.25), ("s3:HeadObject= 1e-1 ", 0.1)],
)
def test_good_delay_specs(spec, seconds):
    service, operation = spec.partition("=")[0].split(":")
    assert parse_delay(spec) == Delay(service, operation, seconds=seconds)


BAD_TARGETS = [
    ("dynamo:UpdateItem", "'dynamo' is not an AWS service (did you mean 'dynamodb'?)"),
    ("s3:DeleteObjectVersion", "s3 has no operation DeleteObjectVersion"),
    ("dynamodb:update_item", "dynamodb has no operation update_item (did you mean 'UpdateItem'?)"),
    ("nosuchservice:PutObject", "'nosuchservice' is not an AWS service"),
]


def _refusal(function: Any, *args: Any) -> str:
    """The message ``function(*args)`` is refused with: one line."""
    with pytest.raises(ValueError, match=r"^[^\n]+$") as refused:
        function(*args)
    return str(refused.value)


@pytest.mark.parametrize(("target", "why"), BAD_TARGETS)
def test_unknown_targets_are_refused_in_one_line(target, why):
    for parse, spec in (
        (parse_fault, target),
        (parse_fault, f"{target}=SlowDown"),
        (parse_delay, f"{target}=1"),
    ):
        assert _refusal(parse, spec).startswith(f"{spec}: {why}")


@pytest.mark.parametrize(("target", "why"), BAD_TARGETS)
def test_the_api_refuses_the_same_targets_with_the_same_message(target, why):
    service, operation = target.split(":")
    faults = Faults()
    assert _refusal(faults.add, service, operation).startswith(f"{target}: {why}")
    assert _refusal(faults.delay, service, operation, 1).startswith(f"{target}=1: {why}")
    assert faults.active() == []
    assert faults.active_delays() == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("PutObject", "PutObject: not [TASK/]SERVICE:Operation[=ErrorCode]"),
        ("s3:", "s3:: not [TASK/]SERVICE:Operation[=ErrorCode]"),
        (":PutObject=SlowDown", ":PutObject=SlowDown: not [TASK/]SERVICE:Operation[=ErrorCode]"),
    ],
)
def test_malformed_fault_specs(spec, message):
    assert _refusal(parse_fault, spec) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("s3:PutObject", "s3:PutObject: not [TASK/]SERVICE:Operation=SECONDS"),
        ("s3:PutObject=", "s3:PutObject=: not [TASK/]SERVICE:Operation=SECONDS"),
        ("s3:PutObject=0", "s3:PutObject=0: SECONDS must be a positive number, not '0'"),
        ("s3:PutObject=-2", "s3:PutObject=-2: SECONDS must be a positive number, not '-2'"),
        ("s3:PutObject=soon", "s3:PutObject=soon: SECONDS must be a positive number, not 'soon'"),
        ("s3:PutObject=inf", "s3:PutObject=inf: SECONDS must be a positive number, not 'inf'"),
        ("s3:PutObject=nan", "s3:PutObject=nan: SECONDS must be a positive number, not 'nan'"),
    ],
)
def test_malformed_delay_specs(spec, message):
    assert _refusal(parse_delay, spec) == message


def test_the_api_refuses_a_delay_that_is_not_positive():
    message = _refusal(Faults().delay, "s3", "PutObject", 0)
    assert message == "s3:PutObject=0: SECONDS must be a positive number, not 0"


def test_clear_drops_faults_and_delays():
    faults = Faults()
    faults.add_spec("s3:PutObject=SlowDown")
    faults.add_delay_spec("s3:PutObject=2")
    faults.delay("dynamodb", "GetItem", 0.5, count=1)
    assert [d.spec for d in faults.active_delays()] == ["s3:PutObject=2", "dynamodb:GetItem=0.5"]
    faults.clear()
    assert faults.active() == []
    assert faults.active_delays() == []


# -- a delay at work, on a client whose HTTP session is a stand-in ----------------------------
class _Body:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


class _Recorder:
    """Stands in for the client's HTTP session: when the client's before-send hooks ran and when
    each request went out."""

    def __init__(self) -> None:
        self.hooked: list[float] = []
        self.sent: list[float] = []

    def before_send(self, **_: Any) -> None:
        self.hooked.append(time.monotonic())

    def send(self, request: Any) -> AWSResponse:
        self.sent.append(time.monotonic())
        return AWSResponse(request.url, 200, HeadersDict(), _Body())

    def close(self) -> None:
        pass

    def waits(self) -> list[float]:
        return [sent - hooked for hooked, sent in zip(self.hooked, self.sent, strict=True)]


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, _Recorder]]:
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    recorder = _Recorder()
    client.meta.events.register("before-send", recorder.before_send)
    client._endpoint.http_session = recorder
    yield client, recorder
    client.close()


def _get_item(client: Any) -> None:
    client.get_item(TableName="t", Key={"k": {"S": "v"}})


def test_a_delay_holds_a_tasks_request_after_its_before_send_hooks(dynamodb):
    client, recorder = dynamodb
    faults = Faults()
    delay = faults.delay("dynamodb", "GetItem", 0.3, count=1)
    with faults.installed(), task_scope("record"):
        _get_item(client)
        _get_item(client)  # beyond count: not delayed
    assert recorder.waits()[0] >= 0.3  # the hooks ran, then the request waited, then went out
    assert delay.injected == 1
    assert delay.remaining == 0


def test_an_installation_inside_another_waits_out_only_its_own_delay(dynamodb):
    # As in the test session, where local mode's installation runs while a test installs its own.
    client, recorder = dynamodb
    outer, inner = Faults(), Faults()
    outer.delay("dynamodb", "GetItem", 0.3)
    with inner.installed(), outer.installed(), task_scope("record"):
        _get_item(client)  # outer's delay taken, inner's (none) leaves it be
    with outer.installed(), inner.installed(), task_scope("record"):
        _get_item(client)
    assert len(recorder.waits()) == 2
    assert all(0.3 <= wait < 0.55 for wait in recorder.waits())  # once each, never twice


LONG = 30.0  # a delay no call below may wait out


def test_a_delay_spares_the_callers_that_are_not_tasks_and_other_operations(dynamodb):
    client, recorder = dynamodb
    faults = Faults()
    delay = faults.delay("dynamodb", "GetItem", LONG)
    with faults.installed():
        _get_item(client)  # the emulator's or a test's call
        with task_scope("record"):
            client.delete_item(TableName="t", Key={"k": {"S": "v"}})
    assert len(recorder.sent) == 2
    assert all(wait < LONG for wait in recorder.waits())
    assert delay.injected == 0


def test_a_fault_for_one_task_spares_the_other_tasks_calls(dynamodb):
    client, recorder = dynamodb
    faults = Faults()
    fault = faults.add("dynamodb", "GetItem", "Throttling", task="record")
    with faults.installed():
        with task_scope("store-fn", "store"):
            _get_item(client)
        with task_scope("record-fn", "record"), pytest.raises(ClientError, match="Throttling"):
            _get_item(client)
    assert len(recorder.sent) == 1
    assert fault.injected == 1
