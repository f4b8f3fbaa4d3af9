"""No file content, base64 payload, Authorization or x-api-key value in any log line.

Uploads with distinctive file bytes, an ``Authorization`` and an ``x-api-key`` header go through
local mode on every path: success, validation errors (the file still in the body), a body that is
not JSON, a file over the limit, a failed record with compensation, and a failed compensation
(orphan report). Then every log group of the emulated CloudWatch Logs (state machine and each
task), every Python log record of this process during the run (formatted with its handler's
formatter, plus all of its attributes) and everything written to stdout/stderr are searched for
the secrets and for any 24-character piece of the file's base64.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import make_upload

WINDOW = 24


class _Everything(logging.Handler):
    """Keeps every record, formatted the way its logger's own handler would, and its attributes."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        formatters = [h.formatter for h in logger.handlers if h.formatter and h is not self]
        for formatter in formatters or [logging.Formatter()]:
            try:
                self.texts.append(formatter.format(record))
            except Exception:
                self.texts.append(record.getMessage())
        self.texts.append(repr(vars(record)))


@pytest.fixture
def every_log_record() -> Iterator[_Everything]:
    handler = _Everything()
    loggers = [logging.getLogger()] + [
        lg
        for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.propagate
    ]
    for lg in loggers:  # at the levels the process runs with
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def _all_log_events(emulator: Any) -> dict[str, list[str]]:
    logs = emulator.client("logs")
    groups = [
        g["logGroupName"]
        for page in logs.get_paginator("describe_log_groups").paginate()
        for g in page["logGroups"]
    ]
    events: dict[str, list[str]] = {}
    for group in groups:
        events[group] = [
            e["message"]
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group)
            for e in page["events"]
        ]
    return events


def test_no_secret_reaches_any_log(client, emulator, every_log_record, capfd):
    marker = uuid.uuid4().hex
    data = f"TOP-SECRET-FILE-CONTENT-{marker}-".encode() * 4
    encoded = base64.b64encode(data).decode()
    authorization = f"Bearer AUTHZ-SECRET-{marker}"
    api_key = f"APIKEY-SECRET-{marker}"
    headers = {"Authorization": authorization, "x-api-key": api_key}
    request_ids: list[str] = []

    executed: list[str] = []  # requests that reached the workflow (the others end at the edge)

    def send(body: Any = None, raw: bytes | None = None, status: int = 200) -> None:
        if raw is not None:
            response = client.post(raw=raw, headers={**headers, "Content-Type": "application/json"})
        else:
            response = client.post(body, headers=headers)
        assert response.status_code == status, response.text
        request_ids.append(response.json()["requestId"])
        if raw is None and status != 413:
            executed.append(response.json()["requestId"])

    ok = make_upload(data=data)
    send(ok.body)
    invalid = make_upload(data=data, price="12.34")
    send(invalid.body, status=400)
    unknown = make_upload(data=data, owner=encoded)
    send(unknown.body, status=400)
    send(raw=b'{"fileContent": "' + encoded.encode() + b'", broken', status=400)
    too_large = make_upload(data=data * 2000)
    send(too_large.body, status=413)
    emulator.faults.add("dynamodb", "TransactWriteItems", task="record")
    send(make_upload(data=data).body, status=500)  # record fails, compensation deletes
    emulator.faults.add("s3", "DeleteObject")
    send(make_upload(data=data).body, status=500)  # compensation fails: the orphan report
    emulator.faults.clear()
    keyed = make_upload(data=data)
    client_headers = {**headers, "Idempotency-Key": f"IDEM-{marker}"}
    for _ in range(2):  # the claim, then the replay
        response = client.post(keyed.body, headers=client_headers)
        assert response.status_code == 200, response.text

    secrets = [authorization, api_key, f"AUTHZ-SECRET-{marker}", f"APIKEY-SECRET-{marker}"]
    secrets += [data.decode(), f"TOP-SECRET-FILE-CONTENT-{marker}"]
    pieces = {encoded[i : i + WINDOW] for i in range(len(encoded) - WINDOW + 1)}

    def leaks(text: str) -> list[str]:
        found = [s for s in secrets if s in text]
        found += sorted(p for p in pieces if p in text)[:1]
        return found

    groups = _all_log_events(emulator)
    task_groups = {emulator.function(t).log_group for t in ("validate", "store", "record")}
    task_groups.add(emulator.function("compensate").log_group)
    assert task_groups <= set(groups)
    searched = "\n".join(line for lines in groups.values() for line in lines)
    # Not vacuous: our requests are in the task logs and in the state machine's.
    for request_id in executed:
        assert request_id in searched, f"request {request_id} left no log line"
    machine_groups = set(groups) - task_groups
    assert any(
        any(rid in line for line in groups[g] for rid in executed) for g in machine_groups
    ), "no state machine log line names our executions"
    assert "ORPHAN" in searched

    for group, lines in groups.items():
        for line in lines:
            assert not leaks(line), f"{group}: {leaks(line)} in {line[:300]}"
    for text in every_log_record.texts:
        assert not leaks(text), f"python log record: {leaks(text)} in {text[:300]}"
    out, err = capfd.readouterr()
    for stream, text in (("stdout", out), ("stderr", err)):
        assert not leaks(text), f"{stream}: {leaks(text)}"
    assert every_log_record.texts, "no Python log record was captured"
