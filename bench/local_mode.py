"""Local mode: state payload sizes from a real execution's history, and end-to-end throughput.

Both run against one in-process :class:`local.emulator.Emulator` (the synthesized template on
moto). Payload sizes come from ``get_execution_history`` through the emulator's endpoint, as an
operator would read them; throughput comes from :mod:`bench.load` in a separate process.
"""

from __future__ import annotations

import base64
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests

from local.emulator import Emulator
from tasks.contract.limits import MAX_FILE_BYTES, STATE_PAYLOAD_LIMIT_BYTES

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DATA_FIELDS: Final = ("input", "output", "parameters")


@dataclass(frozen=True)
class Boundary:
    """One payload crossing a state boundary, as the execution history records it."""

    event_id: int
    event_type: str
    state: str
    field: str
    size: int
    has_file: bool


@dataclass(frozen=True)
class LoadResult:
    clients: int
    latencies_ms: list[float]
    wall_seconds: float
    failures: list[str]

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``samples`` (``fraction`` 0.95 for p95)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def max_upload_body() -> dict[str, Any]:
    """A MAX_FILE_BYTES upload with ordinary other fields."""
    return {
        "productId": "BENCH-MAX",
        "productName": "Benchmark product with the largest file",
        "price": 99.99,
        "fileName": "largest-file.bin",
        "contentType": "application/octet-stream",
        "fileContent": base64.b64encode(os.urandom(MAX_FILE_BYTES)).decode("ascii"),
    }


def state_payloads(emulator: Emulator) -> tuple[int, list[Boundary]]:
    """Upload one MAX_FILE_BYTES file; (execution input size, every boundary's payload)."""
    response = requests.post(emulator.api_url, json=max_upload_body(), timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"the MAX_FILE_BYTES upload failed: {response.status_code}")
    request_id = response.json()["requestId"]
    events = execution_history(emulator, request_id)
    boundaries: list[Boundary] = []
    state = "(execution)"
    execution_input = 0
    for event in events:
        for name, details in event.items():
            if not name.endswith("EventDetails") or not isinstance(details, dict):
                continue
            if event["type"].endswith("StateEntered") or event["type"].endswith("StateExited"):
                state = str(details.get("name", state))
            for data_field in DATA_FIELDS:
                value = details.get(data_field)
                if not isinstance(value, str):
                    continue
                size = len(value.encode("utf-8"))
                if event["type"] == "ExecutionStarted":
                    execution_input = size
                boundaries.append(
                    Boundary(
                        int(event["id"]),
                        str(event["type"]),
                        state,
                        data_field,
                        size,
                        carries_file(value),
                    )
                )
    return execution_input, boundaries


def carries_file(value: str) -> bool:
    """Whether a state payload holds the client's file: a ``fileContent`` field in it, or in
    the client's body, which travels as JSON text inside the payload (``$.body``)."""
    try:
        document = json.loads(value)
    except ValueError:
        return '"fileContent"' in value or '\\"fileContent\\"' in value
    return _has_file(document)


def _has_file(node: object) -> bool:
    if isinstance(node, dict):
        return "fileContent" in node or any(_has_file(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_file(v) for v in node)
    if isinstance(node, str) and node.lstrip().startswith("{") and "fileContent" in node:
        try:
            return _has_file(json.loads(node))
        except ValueError:
            return False
    return False


def execution_history(emulator: Emulator, name: str) -> list[dict[str, Any]]:
    """The history events of the execution named ``name``: through the endpoint when it serves
    them, else from the emulator's Step Functions backend in this process (Express executions
    have no GetExecutionHistory on AWS, and moto follows)."""
    sfn = emulator.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        for execution in listed:
            if execution["name"] == name:
                try:
                    found = sfn.get_execution_history(
                        executionArn=execution["executionArn"], maxResults=1000
                    )
                    return list(found["events"])
                except sfn.exceptions.ClientError:
                    break
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from local.template import ACCOUNT_ID, REGION

    backend = stepfunctions_parser_backends[ACCOUNT_ID][REGION]
    for machine in backend.state_machines:
        for execution in getattr(machine, "executions", []):
            if execution.name == name:
                events = execution.to_history_output().get("events", [])
                return [{**e, "type": str(getattr(e["type"], "value", e["type"]))} for e in events]
    raise LookupError(f"no execution named {name}")


def run_load(emulator: Emulator, clients: int, uploads: int, size: int) -> LoadResult:
    command = [sys.executable, "-m", "bench.load", emulator.api_url, str(clients)]
    result = subprocess.run(  # noqa: S603
        [*command, str(uploads), str(size)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    document = json.loads(result.stdout.strip().splitlines()[-1])
    return LoadResult(
        clients,
        [s * 1000 for s in document["latencies"]],
        float(document["wall"]),
        list(document["failures"]),
    )


@contextmanager
def profiling_all_threads() -> Iterator[list[cProfile.Profile]]:
    """A cProfile profiler in every thread started inside the block (server, Lambda workers)."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def install(*_: Any) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the thread

    threading.setprofile(install)
    try:
        yield profiles
    finally:
        threading.setprofile(None)


# Where the CPU goes, by the file that owns each function's own time (tottime).
CATEGORIES: Final = (
    ("our tasks", "/tasks/"),
    ("moto: ASL parser (antlr4), per execution", "antlr4"),
    ("moto: ASL parser (antlr4), per execution", "moto/stepfunctions/parser/asl/antlr"),
    ("our local mode (gateway, VTL, runtime)", "/local/"),
    ("moto: Step Functions interpreter", "moto/stepfunctions"),
    ("moto: S3 / DynamoDB / KMS / Logs", "moto/"),
    ("werkzeug / flask (moto server)", "werkzeug"),
    ("werkzeug / flask (moto server)", "flask"),
    ("botocore / boto3 (tasks' SDK calls)", "botocore"),
    ("botocore / boto3 (tasks' SDK calls)", "boto3"),
    ("airspeed / jsonpath (templates)", "airspeed"),
    ("airspeed / jsonpath (templates)", "jsonpath"),
    ("msgspec / powertools", "msgspec"),
    ("msgspec / powertools", "aws_lambda_powertools"),
)


# Time a thread spends blocked (waiting for a lock, a socket, a poll) is not CPU: left out.
BLOCKING: Final = ("acquire", "recv_into", "recv", "poll", "select", "sleep", "accept", "wait")


def _category(filename: str) -> str:
    found = next((c for c, marker in CATEGORIES if marker in filename), None)
    return found or "python stdlib / other (http.server, json, threading...)"


def categorize(stats: pstats.Stats) -> dict[str, float]:
    """CPU seconds by category; a built-in's own time is charged to its callers' categories."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in raw.items():
        if filename == "~" and any(word in name for word in BLOCKING):
            continue
        if filename != "~" or not callers:
            category = _category(filename)
            totals[category] = totals.get(category, 0.0) + tottime
            continue
        weights = {caller: max(values[3], 1e-9) for caller, values in callers.items()}
        whole = sum(weights.values())
        for caller, weight in weights.items():
            category = _category(caller[0])
            totals[category] = totals.get(category, 0.0) + tottime * weight / whole
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def profile_load(
    emulator: Emulator, clients: int, uploads: int, size: int, output: Path
) -> tuple[dict[str, float], str]:
    """Run a load with every emulator thread profiled; (CPU by category, top entries text)."""
    with profiling_all_threads() as profiles:
        run_load(emulator, clients, uploads, size)
    stats: pstats.Stats | None = None
    for profile in profiles:
        profile.create_stats()
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is None:
        raise RuntimeError("no thread was profiled")
    output.parent.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(output))
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(25)
    output.with_suffix(".txt").write_text(text.getvalue())
    return categorize(stats), text.getvalue()


__all__ = [
    "MAX_FILE_BYTES",
    "STATE_PAYLOAD_LIMIT_BYTES",
    "Boundary",
    "LoadResult",
    "profile_load",
    "run_load",
    "state_payloads",
]
