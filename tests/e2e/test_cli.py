"""Local mode as the README starts it: a subprocess, the startup lines (the orphan sweep's
settings, every bucket and table, the variables for AWS clients among them), the ready line, an
upload, the README's boto3 example with only the printed variables, SIGTERM; a bad ``--fault``
or a bad number of seconds refused at once, in one line."""

from __future__ import annotations

import base64
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

from local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 180


def _readme_boto3_example() -> str:
    """The README's boto3 example ("Running it locally"), as written there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks: list[str] = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    [example] = [block for block in blocks if 'boto3.client("s3")' in block]
    return example


def _run_readme_boto3_example(exported: str, home: Path) -> str:
    """The example's output, run where nothing but the variables of local mode's ``export``
    line is set: no AWS configuration, HOME empty."""
    variables = dict(word.split("=", 1) for word in shlex.split(exported)[1:])
    completed = subprocess.run(
        [sys.executable, "-c", _readme_boto3_example()],
        capture_output=True,
        text=True,
        env={"HOME": str(home), **variables},
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _start_local(port: int, aws_port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """``python -m local`` as a user starts it, once it printed the ready line; its output."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local",
            "--port",
            str(port),
            "--aws-port",
            str(aws_port),
            # Not the defaults (30, 60), so that the line below shows they were passed on; no
            # sweep runs before the test ends.
            "--sweep-interval",
            "45",
            "--orphan-grace",
            "90.5",
            # A delay of a call a successful upload never makes: announced, never in the way.
            "--delay",
            "compensate/s3:DeleteObject=1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while f"http://127.0.0.1:{port}" not in lines.get(timeout=READY_TIMEOUT_SECONDS):
        pass
    return process, output


def _check_startup_lines(output: list[str], port: int, aws_port: int) -> str:
    """The lines before the ready line; the ``export`` line for AWS clients."""
    assert sum(f"http://127.0.0.1:{port}" in line for line in output) == 1, output
    assert any("Authentication is NOT checked" in line for line in output), output
    # The template's sweepDeletesOrphans is off by default (cdk.json does not set it).
    sweep = "Orphan sweep: every 45 s, grace 90.5 s (reports orphans, deletes none: "
    assert f"{sweep}sweepDeletesOrphans is off)\n" in output, output
    delay = "Delay injected: every s3:DeleteObject call by the compensate task takes 1 s longer"
    assert f"{delay}\n" in output, output
    for table in ("idempotency table", "ledger table", "upload sessions table"):
        assert any(re.fullmatch(f"  {table} UploadService-\\S+\n", o) for o in output), table
    assert "Local data lives in memory: it is gone when local mode stops.\n" in output
    exported = (
        f"export AWS_ENDPOINT_URL=http://127.0.0.1:{aws_port} AWS_REGION=us-east-1 "
        "AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    )
    assert f"{exported}\n" in output, output
    return exported


def test_python_m_local_serves_uploads_and_stops_cleanly_on_sigterm(tmp_path):
    port, aws_port = free_port(), free_port()
    process, output = _start_local(port, aws_port)
    try:
        exported = _check_startup_lines(output, port, aws_port)
        product_id = f"CLI-{uuid.uuid4().hex[:8]}"
        response = requests.post(
            f"http://127.0.0.1:{port}/upload",
            json={
                "productId": product_id,
                "productName": "From the CLI",
                "price": 1.5,
                "fileName": "hello.txt",
                "fileContent": base64.b64encode(b"hello").decode(),
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        # The README's example, verbatim: its bucket is the one local mode printed.
        [uploads] = [m[1] for o in output if (m := re.fullmatch(r"  bucket (\S+), table \S+\n", o))]
        assert f'Bucket="{uploads}"' in _readme_boto3_example()
        listed = _run_readme_boto3_example(exported, tmp_path)
        version_id = response.json()["versionId"]
        assert f"uploads/{product_id}/hello.txt {version_id} 5\n" in listed
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, "".join(output)


def _refused(*options: str) -> subprocess.CompletedProcess[str]:
    """``python -m local`` with ``options``, which it must refuse at start."""
    return subprocess.run(
        [sys.executable, "-m", "local", *options, "--port", "0", "--aws-port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,  # refused at start: it never gets as far as synthesizing
    )


def _assert_refused_in_one_line(completed: subprocess.CompletedProcess[str], start: str) -> None:
    assert completed.returncode == 2, completed
    [line] = completed.stderr.splitlines()
    assert line.startswith(start), completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""  # refused before anything started, synthesis included


def test_python_m_local_refuses_an_unknown_fault_target_at_once_in_one_line():
    completed = _refused("--fault", "dynamo:UpdateItem")
    _assert_refused_in_one_line(
        completed, "Error: --fault dynamo:UpdateItem: 'dynamo' is not an AWS service"
    )


def test_python_m_local_refuses_an_unknown_task_prefix_at_once_in_one_line():
    completed = _refused("--fault", "recrod/dynamodb:GetItem")
    _assert_refused_in_one_line(
        completed,
        "Error: --fault recrod/dynamodb:GetItem: 'recrod' is not a task (did you mean 'record'?)",
    )


@pytest.mark.parametrize(
    ("option", "value", "wanted"),
    [
        pytest.param("--orphan-grace", "-1", "a number above 0", id="negative-grace"),
        pytest.param("--orphan-grace", "nan", "a number above 0", id="nan-grace"),
        pytest.param(
            "--sweep-interval",
            "-5",
            "0 (no background sweep) or a number above 0",
            id="negative-interval",
        ),
    ],
)
def test_python_m_local_refuses_a_bad_number_of_seconds_at_once_in_one_line(option, value, wanted):
    completed = _refused(option, value)
    _assert_refused_in_one_line(completed, f"Error: {option} {value}: SECONDS must be {wanted}")
