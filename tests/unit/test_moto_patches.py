"""local.moto_patches.lean_update_expressions: moto answers every update expression exactly as it
does unpatched (the same item afterwards, or the same error), only faster."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
from moto import mock_aws

from local import moto_patches
from tasks.core import ledger

TABLE = "t"
KEY = {"pk": {"S": "item"}}
START = {
    "pk": {"S": "item"},
    "a": {"M": {"b": {"S": "old"}}},
    "n": {"N": "1"},
    "tags": {"SS": ["x"]},
}

# (update expression, names, values): successes and each kind of error moto reports.
UPDATES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    (
        "SET #s = if_not_exists(#s, :v), n = n + :one",
        {"#s": "s"},
        {":v": {"S": "v"}, ":one": {"N": "1"}},
    ),
    ("SET a.b = :v REMOVE n ADD tags :t", {}, {":v": {"S": "new"}, ":t": {"SS": ["y"]}}),
    ("SET #x = :v, #x = :w", {"#x": "x"}, {":v": {"S": "1"}, ":w": {"S": "2"}}),
    ("SET a.b = :v, a = :w", {}, {":v": {"S": "1"}, ":w": {"M": {}}}),
    ("SET x = :v SET y = :w", {}, {":v": {"S": "1"}, ":w": {"S": "2"}}),
    ("ADD n :one ADD m :one", {}, {":one": {"N": "1"}}),
    ("SET pk = :v", {}, {":v": {"S": "other"}}),
    ("SET x = :missing", {}, {}),
    ("SET x = n + :s", {}, {":s": {"S": "text"}}),
]


@contextlib.contextmanager
def _table(lean: bool) -> Iterator[Any]:
    with mock_aws(), moto_patches.item_level_transactions():
        patches = moto_patches.lean_update_expressions() if lean else contextlib.nullcontext()
        with patches:
            client = boto3.client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="k",
                aws_secret_access_key="s",
            )
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client


def _outcome(client: Any, expression: str, names: dict[str, str], values: dict[str, Any]) -> Any:
    client.put_item(TableName=TABLE, Item=START)
    arguments: dict[str, Any] = {"TableName": TABLE, "Key": KEY, "UpdateExpression": expression}
    if names:
        arguments["ExpressionAttributeNames"] = names
    if values:
        arguments["ExpressionAttributeValues"] = values
    try:
        client.update_item(**arguments)
    except botocore.exceptions.ClientError as error:
        return ("error", error.response["Error"]["Code"], error.response["Error"]["Message"])
    return ("item", client.get_item(TableName=TABLE, Key=KEY)["Item"])


def _outcomes(lean: bool) -> list[Any]:
    with _table(lean) as client:
        # Each expression twice: a parsed text is reused, its values are not.
        return [_outcome(client, *update) for update in UPDATES + UPDATES]


def test_every_update_expression_ends_as_it_does_unpatched():
    plain, lean = _outcomes(lean=False), _outcomes(lean=True)
    assert lean == plain
    kinds = [outcome[0] for outcome in plain[: len(UPDATES)]]
    assert kinds.count("item") == 2
    assert kinds.count("error") == len(UPDATES) - 2  # every error case really is one


def _ledger_round(client: Any) -> list[Any]:
    """The ledger's own transactions: begin, a refused second begin, commit, abort."""
    first = ledger.Upload("r1", "b", "uploads/p/f", "p", "n", "2026-11-30T00:00:00.000Z")
    second = ledger.Upload("r2", "b", "uploads/p/f", "p", "n", "2026-11-30T00:00:00.000Z")
    outcomes: list[Any] = []
    for items in (
        ledger.begin(TABLE, first, attempt=0, now=100),
        ledger.begin(TABLE, second, attempt=0, now=100),  # lease held: refused
        ledger.commit(TABLE, first, version_id="v1", now=100),
    ):
        try:
            client.transact_write_items(TransactItems=items)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    outcomes.append(ledger.abort(client, TABLE, second, now=100))
    outcomes.append(sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: i["pk"]["S"]))
    return outcomes


def test_the_ledgers_transactions_end_alike():
    with _table(lean=False) as client:
        plain = _ledger_round(client)
    with _table(lean=True) as client:
        lean = _ledger_round(client)
    assert lean == plain
    assert plain[:4] == ["ok", "TransactionCanceledException", "ok", None]  # r2 never began
