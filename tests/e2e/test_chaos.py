"""Chaos: rounds of concurrent uploads to a few items under a random mixture of faults and delays
(some past the tasks' timeouts, so calls land after their task gave up), then the promise is
checked as an operator would:

- every 200's version exists, with its bytes;
- no report (compensate, report, sweep) names a committed version;
- ``upload-ops orphans --json`` lists exactly the uncommitted versions (those of requests that did
  not end in 200) once they are older than the grace period;
- after ``upload-ops orphans --delete`` only committed versions remain, and each item points at
  the current version of its key.

The mixture is drawn from a fixed seed (the plan is in every failure message); the timing is the
machine's, and the invariants hold whatever it is.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from local.emulator import Emulator
from ops.cli import app
from tasks.contract import names
from tasks.contract.keys import REQUEST_ID_METADATA
from tasks.contract.timing import TIMINGS

from .conftest import Client, Upload, make_upload

SEED = 20261130
ROUNDS, PARALLEL, ITEMS = 3, 8, 5
REPORTING_TASKS = (names.COMPENSATE, names.REPORT, names.SWEEP)


def _past_timeout(task: str, emulator: Emulator) -> float:
    """A delay past ``task``'s timeout even as local mode stretches it for PARALLEL executions."""
    stretch = max(1.0, PARALLEL / emulator.saturation.cores)
    return TIMINGS[task].lambda_timeout_seconds * stretch + 1.0


@dataclass(frozen=True)
class Injection:
    kind: str  # fault | delay
    task: str
    service: str
    operation: str
    value: str | float  # the error code, or the delay's seconds
    count: int

    def apply(self, emulator: Emulator) -> None:
        if self.kind == "fault":
            emulator.faults.add(
                self.service, self.operation, str(self.value), count=self.count, task=self.task
            )
        else:
            emulator.faults.delay(
                self.service, self.operation, float(self.value), count=self.count, task=self.task
            )


def _menu(emulator: Emulator) -> list[Injection]:
    return [
        Injection("fault", names.STORE, "s3", "PutObject", "SlowDown", 1),
        Injection(
            "fault", names.RECORD, "dynamodb", "TransactWriteItems", "AccessDeniedException", 2
        ),
        Injection("fault", names.COMPENSATE, "s3", "DeleteObject", "AccessDenied", 1),
        Injection("fault", names.COMPENSATE, "s3", "HeadObject", "AccessDenied", 1),
        Injection("delay", names.STORE, "s3", "PutObject", _past_timeout(names.STORE, emulator), 1),
        Injection(
            "delay",
            names.RECORD,
            "dynamodb",
            "TransactWriteItems",
            _past_timeout(names.RECORD, emulator),
            1,
        ),
        Injection(
            "delay",
            names.COMPENSATE,
            "s3",
            "ListObjectVersions",
            _past_timeout(names.COMPENSATE, emulator),
            1,
        ),
        Injection("delay", names.STORE, "s3", "PutObject", 0.3, 2),  # slow, within the timeout
    ]


@dataclass
class Outcome:
    upload: Upload
    status: int
    body: dict[str, Any]


def _round(client: Client, items: list[Upload], rng: random.Random, n: int) -> list[Outcome]:
    uploads = []
    for i in range(PARALLEL):
        item = rng.choice(items)
        uploads.append(
            make_upload(
                data=f"round {n} upload {i} {rng.random()}".encode(),
                productId=item.body["productId"],
                fileName="chaos.bin",
            )
        )
    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(lambda u: client.post(u.body), uploads))
    return [Outcome(u, r.status_code, r.json()) for u, r in zip(uploads, responses, strict=True)]


def _versions(client: Client, key: str) -> dict[str, str]:
    """Every version of ``key`` -> the request that wrote it."""
    listed = client.s3.list_object_versions(Bucket=client.bucket, Prefix=key)
    return {
        v["VersionId"]: client.s3.head_object(
            Bucket=client.bucket, Key=key, VersionId=v["VersionId"]
        )["Metadata"][REQUEST_ID_METADATA]
        for v in listed.get("Versions", [])
        if v["Key"] == key
    }


def _reported_versions(emulator: Emulator) -> set[str]:
    """Every version id an ORPHAN line of the reporting tasks names."""
    named: set[str] = set()
    for task in REPORTING_TASKS:
        events = emulator.client("logs").filter_log_events(
            logGroupName=emulator.function(task).log_group, filterPattern='"ORPHAN"'
        )["events"]
        for event in events:
            if event["message"].startswith("{"):
                orphan = json.loads(event["message"]).get("orphan") or {}
                named.update(orphan.get("versionIds") or [])
    return named


def _orphans(emulator: Emulator, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["orphans", *args, "--json", "--grace", "1s", "--endpoint-url", emulator.aws_endpoint]
    )
    assert result.exit_code in (0, 1), result.output
    return list(json.loads(result.stdout)["orphans"])


def test_chaos_rounds_keep_the_promise(client: Client, emulator: Emulator) -> None:
    rng = random.Random(SEED)
    menu = _menu(emulator)
    items = [make_upload(fileName="chaos.bin") for _ in range(ITEMS)]
    keys = {item.key for item in items}
    outcomes: list[Outcome] = []
    plan: list[list[Injection]] = []
    latest_landing = time.monotonic()
    for n in range(ROUNDS):
        chosen = rng.sample(menu, k=rng.randint(2, 3))
        plan.append(chosen)
        for injection in chosen:
            injection.apply(emulator)
        started = time.monotonic()
        outcomes += _round(client, items, rng, n)
        emulator.faults.clear()
        delays = [float(i.value) for i in chosen if i.kind == "delay"]
        latest_landing = max(latest_landing, started + max(delays, default=0.0))
    # Let every call still in flight land, and age past the 1 s grace period.
    time.sleep(max(0.0, latest_landing - time.monotonic()) + 2.0)

    statuses = Counter(o.status for o in outcomes)
    context = f"plan={plan} statuses={dict(statuses)}"
    assert set(statuses) <= {200, 409, 500}, context
    ok = {o.body["requestId"]: o for o in outcomes if o.status == 200}
    committed = {o.body["versionId"] for o in ok.values()}

    # Every 200's version exists, with its bytes.
    for outcome in ok.values():
        stored = client.object_bytes(outcome.upload.key, outcome.body["versionId"])
        assert stored == outcome.upload.data, context
    # No report names a committed version.
    assert not _reported_versions(emulator) & committed, context
    # The orphans are exactly the versions of requests that did not end in 200.
    versions = {v: rid for key in keys for v, rid in _versions(client, key).items()}
    uncommitted = {v for v, rid in versions.items() if rid not in ok}
    assert {v for v, rid in versions.items() if rid in ok} == committed, context
    listed = [o for o in _orphans(emulator) if o["s3Key"] in keys]
    assert {o["versionId"] for o in listed} == uncommitted, context
    assert not {o["requestId"] for o in listed} & set(ok), context

    removed = [o for o in _orphans(emulator, "--delete") if o["s3Key"] in keys]
    assert {o["versionId"] for o in removed if o["deleted"]} == uncommitted, context
    for item in items:
        current = [
            v["VersionId"] for v in client.versions(item.key) if v["IsLatest"] and "VersionId" in v
        ]
        records = client.items(item.body["productId"])
        assert set(_versions(client, item.key)) <= committed, context
        if current:
            [record] = records
            assert record["versionId"] == current[0], context
        else:
            assert records == [], context
    print(  # shown with pytest -s
        f"chaos: {ROUNDS} rounds x {PARALLEL} uploads to {ITEMS} items, statuses {dict(statuses)}, "
        f"orphans found and deleted {len(uncommitted)}"
    )
