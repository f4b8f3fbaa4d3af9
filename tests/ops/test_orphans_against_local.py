"""``upload-ops orphans`` against a real local-mode run: an upload whose compensation could not
delete its version is listed (once older than the grace period), ``--delete`` removes exactly
it, and a committed version is never listed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from typer.testing import CliRunner

from local.emulator import Emulator
from ops.cli import app
from tasks.contract import names


def _orphans(emulator: Emulator, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["orphans", *args, "--json", "--endpoint-url", emulator.aws_endpoint]
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def _orphans_command(emulator: Emulator, *args: str) -> tuple[int, dict[str, Any]]:
    """As an operator runs it: the installed command, its stdout one JSON document."""
    command = Path(sys.executable).with_name("upload-ops")
    result = subprocess.run(
        [str(command), "orphans", *args, "--json", "--endpoint-url", emulator.aws_endpoint],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _upload(emulator: Emulator, product: str, data: bytes) -> requests.Response:
    body: dict[str, Any] = {
        "productId": product,
        "productName": "Orphan Product",
        "price": 1,
        "fileName": "file.txt",
        "fileContent": base64.b64encode(data).decode(),
    }
    return requests.post(emulator.api_url, json=body, timeout=60)


def _versions(emulator: Emulator, product: str) -> set[str]:
    listed = emulator.client("s3").list_object_versions(
        Bucket=emulator.bucket_name, Prefix=f"uploads/{product}/"
    )
    return {v["VersionId"] for v in listed.get("Versions", [])}


def test_orphans_lists_then_deletes_exactly_the_uncommitted_version(emulator: Emulator) -> None:
    product = f"ORPH-{uuid.uuid4().hex[:8]}"
    committed = _upload(emulator, product, b"committed")
    assert committed.status_code == 200, committed.text
    emulator.faults.add("dynamodb", "TransactWriteItems", task=names.RECORD)
    emulator.faults.add("s3", "DeleteObject", task=names.COMPENSATE)
    try:
        failed = _upload(emulator, product, b"orphaned")
    finally:
        emulator.faults.clear()
    assert failed.status_code == 500, failed.text
    request_id = failed.json()["requestId"]
    [orphan_version] = _versions(emulator, product) - {committed.json()["versionId"]}

    # Younger than the grace period: not listed yet.
    _, young = _orphans(emulator, "--grace", "1h")
    assert request_id not in {o["requestId"] for o in young["orphans"]}

    time.sleep(2)
    code, found = _orphans_command(emulator, "--grace", "1s")
    mine = [o for o in found["orphans"] if o["requestId"] == request_id]
    assert code == 1  # orphans remain
    assert [(o["versionId"], o["deleted"]) for o in mine] == [(orphan_version, False)]
    assert committed.json()["requestId"] not in {o["requestId"] for o in found["orphans"]}
    assert _versions(emulator, product) == {committed.json()["versionId"], orphan_version}

    code, deleted = _orphans(emulator, "--grace", "1s", "--delete")
    mine = [o for o in deleted["orphans"] if o["requestId"] == request_id]
    assert code == 0
    assert [(o["versionId"], o["deleted"]) for o in mine] == [(orphan_version, True)]
    assert _versions(emulator, product) == {committed.json()["versionId"]}

    _, after = _orphans(emulator, "--grace", "1s")
    assert request_id not in {o["requestId"] for o in after["orphans"]}


def test_a_grace_that_is_not_a_duration_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(app, ["orphans", "--grace", "soon"])
    assert result.exit_code == 2
    assert "--grace" in result.output
    assert "'soon' is not like 90s, 30m, 24h or 7d" in result.output
    assert "Traceback" not in result.output
