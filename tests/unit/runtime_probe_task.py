"""A stand-in task for tests/unit/test_lambda_runtime.py: prints, sleeps, then makes an AWS call
on a client whose HTTP session records what is sent."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

CALLS: list[str] = []  # what happened after the sleep: "sent", or the exception's type name
CLIENT: Any = None  # set by the test


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    print(f"probe printed {event['marker']}")
    time.sleep(event["sleep"])
    try:
        CLIENT.get_item(TableName="t", Key={"k": {"S": "v"}})
        CALLS.append("sent")
    except BaseException as exc:
        CALLS.append(type(exc).__name__)
        raise
    return {"ok": True}
