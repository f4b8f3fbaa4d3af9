"""Local mode as the README starts it: a subprocess, the ready line, an upload, SIGTERM; a bad
``--fault`` refused at once."""

from __future__ import annotations

import base64
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import boto3
import requests

from local.emulator import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 180


def test_python_m_local_serves_uploads_and_stops_cleanly_on_sigterm():
    port, aws_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", str(port), "--aws-port", str(aws_port)],
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
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            line = lines.get(timeout=READY_TIMEOUT_SECONDS)
            if url in line:
                break
        assert sum(url in line for line in output) == 1, output
        assert any("Authentication is NOT checked" in line for line in output), output

        product_id = f"CLI-{uuid.uuid4().hex[:8]}"
        response = requests.post(
            f"{url}/upload",
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

        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{aws_port}",
            region_name="us-east-1",
            aws_access_key_id="any",
            aws_secret_access_key="any",
        )
        keys = [
            obj["Key"]
            for bucket in s3.list_buckets()["Buckets"]
            for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
        ]
        assert f"uploads/{product_id}/hello.txt" in keys
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, "".join(output)


def test_python_m_local_refuses_an_unknown_fault_target_at_once_in_one_line():
    command = ["-m", "local", "--fault", "dynamo:UpdateItem", "--port", "0", "--aws-port", "0"]
    completed = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=30,  # refused at start: it never gets as far as synthesizing
    )
    assert completed.returncode == 2, completed
    [line] = completed.stderr.splitlines()
    assert line.startswith("Error: --fault dynamo:UpdateItem: 'dynamo' is not an AWS service")
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""  # refused before anything started, synthesis included
