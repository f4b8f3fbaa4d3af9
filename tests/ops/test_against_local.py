"""The CLI against a real local-mode run (``local.emulator.Emulator`` in-process, free ports):
real uploads, then ``history`` and ``executions`` through the emulator's endpoint."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from local.emulator import Emulator
from ops.cli import app


def _json(emulator: Emulator, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json", "--endpoint-url", emulator.aws_endpoint])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _states(document: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    return [(s["name"], s["attempts"], s["error"]) for s in document["states"]]


def test_history_of_a_success(emulator: Emulator, uploads: dict[str, str]) -> None:
    document = _json(emulator, "history", uploads["ok"])
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "SUCCEEDED",
        200,
        None,
    )
    assert _states(document) == [
        ("Validate", 1, None),
        ("Store", 1, None),
        ("DiscardFileContent", 0, None),
        ("AlreadyUploaded", 0, None),  # the idempotency Choice
        ("Record", 1, None),
        ("Uploaded", 0, None),
    ]
    assert [line["task"] for line in document["taskLogs"]] == ["validate", "store", "record"]
    assert document["taskLogs"][0]["fields"]["productId"] == uploads["product"]
    assert document["durationMs"] > 0
    assert document["startedAt"] < document["stoppedAt"]


def test_history_of_a_validation_failure(emulator: Emulator, uploads: dict[str, str]) -> None:
    document = _json(emulator, "history", uploads["bad"])
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "FAILED",
        400,
        "ValidationError",
    )
    assert _states(document) == [("Validate", 1, "ValidationError"), ("Rejected", 0, None)]
    assert [line["message"] for line in document["taskLogs"]] == ["Request rejected"]
    assert document["taskLogs"][0]["fields"]["productId"] == uploads["product"]


def test_history_of_a_compensation(emulator: Emulator, uploads: dict[str, str]) -> None:
    document = _json(emulator, "history", uploads["compensated"])
    assert (document["status"], document["httpStatus"], document["error"]) == (
        "FAILED",
        500,
        "InternalError",
    )
    assert document["compensated"] is True
    assert _states(document) == [
        ("Validate", 1, None),
        ("Store", 1, None),
        ("DiscardFileContent", 0, None),
        ("AlreadyUploaded", 0, None),  # the idempotency Choice
        ("Record", 2, "TransientStorageError"),  # retried once, then caught
        ("RecordFailed", 0, None),  # tells Compensate which state failed, and how
        ("Compensate", 1, None),
        ("Compensated", 0, None),  # the Choice: a content mismatch would be a 400
        ("UploadFailed", 0, None),
    ]
    lines = [(line["task"], line["message"]) for line in document["taskLogs"]]
    assert [task for task, _ in lines[:4]] == ["validate", "store", "record", "record"]
    assert [message for _, message in lines[4:]] == [
        "Request fenced",
        "Lease released",
        "Compensated",
    ]
    # the event times are the execution's own (not the time they were logged): the retry of
    # Record waits its interval, so Record lasts that long and the others do not
    durations = {s["name"]: s["durationMs"] for s in document["states"]}
    assert durations["Record"] >= 900
    assert document["durationMs"] >= durations["Record"]
    assert durations["Compensate"] < durations["Record"]
    assert document["executionArn"].split(":")[7] == uploads["compensated"]


def test_executions(emulator: Emulator, uploads: dict[str, str]) -> None:
    rows = {r["requestId"]: r for r in _json(emulator, "executions")["executions"]}
    seen = [
        (rows[uploads[k]]["status"], rows[uploads[k]]["httpStatus"], rows[uploads[k]]["error"])
        for k in ("ok", "bad", "compensated")
    ]
    assert seen == [
        ("SUCCEEDED", 200, None),
        ("FAILED", 400, "ValidationError"),
        ("FAILED", 500, "InternalError"),
    ]
    # the product of a rejected request comes from the validate task's "Request rejected" line
    assert [rows[uploads[k]]["productId"] for k in ("ok", "bad", "compensated")] == [
        uploads["product"]
    ] * 3
    failed = _json(emulator, "executions", "--status", "FAILED", "--product", uploads["product"])
    assert [r["requestId"] for r in failed["executions"]] == [
        uploads["bad"],
        uploads["compensated"],
    ]
    assert all(r["durationMs"] > 0 for r in failed["executions"])
