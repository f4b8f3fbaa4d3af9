"""Local mode under concurrency and odd input: moto's thread-unsafe DynamoDB transactions, bodies
nested deeper than Python's recursion limit, and the interpreter's per-execution parsing and
client creation (which made local mode slow enough to time tasks out under load)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from local.emulator import Emulator
from local.saturation import Saturation
from tests.e2e.conftest import make_upload
from tests.oracle import contract_problems

THREADS = 16
TRANSACTIONS_PER_THREAD = 12
PREFILLED_ITEMS = 300  # a table big enough that the rollback snapshot takes a while to copy


@pytest.fixture
def scratch_table(emulator: Emulator) -> Iterator[str]:
    dynamodb = emulator.client("dynamodb")
    name = f"robustness-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, PREFILLED_ITEMS, 25):
        dynamodb.batch_write_item(
            RequestItems={
                name: [
                    {"PutRequest": {"Item": {"pk": {"S": f"seed-{n}"}, "data": {"S": "x" * 200}}}}
                    for n in range(start, min(start + 25, PREFILLED_ITEMS))
                ]
            }
        )
    yield name
    dynamodb.delete_table(TableName=name)


def test_concurrent_transact_write_items_all_succeed(
    emulator: Emulator, scratch_table: str
) -> None:
    """moto deep-copies the whole table for its rollback snapshot while other requests insert
    into it: unserialized, some of these answer 500 (dictionary changed size during iteration)."""
    barrier = threading.Barrier(THREADS)

    def writer(number: int) -> list[str]:
        dynamodb = emulator.client("dynamodb")
        errors: list[str] = []
        barrier.wait()
        for n in range(TRANSACTIONS_PER_THREAD):
            items = [
                {"Put": {"TableName": scratch_table, "Item": {"pk": {"S": f"t{number}-{n}-{k}"}}}}
                for k in range(2)
            ]
            try:
                dynamodb.transact_write_items(TransactItems=items)
            except Exception as error:
                errors.append(repr(error))
        return errors

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        errors = [e for found in pool.map(writer, range(THREADS)) for e in found]

    assert errors == []
    dynamodb = emulator.client("dynamodb")
    count = dynamodb.scan(TableName=scratch_table, Select="COUNT")["Count"]
    assert count == PREFILLED_ITEMS + THREADS * TRANSACTIONS_PER_THREAD * 2


def test_conditional_transactions_stay_isolated(emulator: Emulator, scratch_table: str) -> None:
    """Many writers race to claim one key with attribute_not_exists: exactly one wins (moto's
    rollback of a cancelled transaction must not undo the winner's write)."""
    barrier = threading.Barrier(THREADS)
    key = f"claim-{uuid.uuid4().hex[:8]}"

    def claim(number: int) -> str:
        dynamodb = emulator.client("dynamodb")
        barrier.wait()
        try:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": scratch_table,
                            "Item": {"pk": {"S": key}, "owner": {"N": str(number)}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": scratch_table,
                            "Item": {"pk": {"S": f"{key}-{number}"}},
                        }
                    },
                ]
            )
        except dynamodb.exceptions.TransactionCanceledException:
            return "cancelled"
        return "won"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(claim, range(THREADS)))

    assert outcomes.count("won") == 1, outcomes
    dynamodb = emulator.client("dynamodb")
    item = dynamodb.get_item(TableName=scratch_table, Key={"pk": {"S": key}})["Item"]
    winner = outcomes.index("won")
    assert item["owner"] == {"N": str(winner)}
    assert "Item" in dynamodb.get_item(
        TableName=scratch_table, Key={"pk": {"S": f"{key}-{winner}"}}
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 100_000,  # unterminated too
    ],
    ids=["array", "object", "unterminated"],
)
def test_body_nested_beyond_the_recursion_limit_is_a_400(emulator: Emulator, raw: bytes) -> None:
    response = requests.post(
        emulator.api_url, data=raw, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 400, response.text
    assert contract_problems(response) == []


def test_state_machine_definition_is_parsed_once(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executions share one parsed program (moto parses it with ANTLR for each one)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse
    calls: list[int] = []

    def counting(definition: str) -> Any:
        calls.append(len(definition))
        return original(definition)

    assert requests.post(emulator.api_url, json=make_upload().body, timeout=60).status_code == 200
    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counting))
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(
            pool.map(
                lambda _: (
                    requests.post(emulator.api_url, json=make_upload().body, timeout=60).status_code
                ),
                range(8),
            )
        )
    assert statuses == [200] * 8
    assert calls == []


def test_interpreter_reuses_its_lambda_client(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's interpreter made a new boto3 client (and connection) for every task it ran."""
    import boto3.session

    original = boto3.session.Session.client
    created: list[str] = []

    def counting(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name == "lambda":
            created.append(service_name)
        return original(self, service_name, *args, **kwargs)

    assert requests.post(emulator.api_url, json=make_upload().body, timeout=60).status_code == 200
    monkeypatch.setattr(boto3.session.Session, "client", counting)
    for _ in range(3):
        assert (
            requests.post(emulator.api_url, json=make_upload().body, timeout=60).status_code == 200
        )
    assert created == []


def test_timeouts_stretch_only_when_the_emulator_is_saturated() -> None:
    load = [0.5]
    saturation = Saturation(cores=2, load=lambda: load[0])
    assert saturation.factor() == 1.0
    with saturation.execution(), saturation.execution():
        assert saturation.factor() == 1.0  # one execution per core: real time
        with saturation.execution(), saturation.execution():
            assert saturation.factor() == 2.0
    assert saturation.factor() == 1.0
    load[0] = 3.0  # the machine is busy with other work: 1.5 runnable tasks per core
    assert saturation.factor() == 1.5


def _slow_validate(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Validate takes ``seconds`` longer than usual (its timeout is the template's)."""
    import time

    assert emulator.runtime is not None
    module: Any = emulator.runtime.module(emulator.function("validate"))
    original = module.run

    def slow(event: dict[str, Any], *, env: Any) -> Any:
        time.sleep(seconds)
        return original(event, env=env)

    monkeypatch.setattr(module, "run", slow)


def test_a_task_over_its_timeout_fails_when_the_emulator_is_idle(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faithful: with one execution in flight, the template's timeouts apply unchanged."""
    monkeypatch.setattr(emulator.saturation, "load", lambda: 0.0)  # an idle machine
    timeout = emulator.function("validate").timeout_seconds
    _slow_validate(emulator, monkeypatch, timeout + 0.5)
    response = requests.post(emulator.api_url, json=make_upload().body, timeout=60)
    assert response.status_code == 500, response.text
    assert contract_problems(response) == []


def test_a_task_slowed_by_saturation_is_not_timed_out(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more executions in flight than cores (here: held open by the test), each one gets a
    share of a core, and the task timeouts stretch by that factor: a task slowed by the load
    finishes instead of failing the upload with a 500."""
    timeout = emulator.function("validate").timeout_seconds
    _slow_validate(emulator, monkeypatch, timeout + 0.5)
    with contextlib.ExitStack() as held:
        for _ in range(emulator.saturation.cores * 3):
            held.enter_context(emulator.saturation.execution())
        response = requests.post(emulator.api_url, json=make_upload().body, timeout=60)
    assert response.status_code == 200, response.text


def test_moto_routes_requests_without_listing_its_package(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's server listed its package directory (and stat'ed ~150 entries) on every request,
    under its global lock."""
    import os

    original = os.listdir
    listed: list[str] = []

    def counting(path: Any = ".") -> list[str]:
        listed.append(str(path))
        return original(path)

    monkeypatch.setattr(os, "listdir", counting)
    assert requests.post(emulator.api_url, json=make_upload().body, timeout=60).status_code == 200
    assert [path for path in listed if "moto" in path] == []
