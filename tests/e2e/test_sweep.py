"""The orphan sweep through local mode, run while uploads are in flight: it never touches a
committed version or one younger than the grace period, and it deletes (with the flag) exactly
the versions of requests that did not commit once they are older than that."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.emulator import Emulator
from local.scheduler import Sweeper, SweepFailed
from tasks.contract import names
from tasks.contract.errors import ORPHAN_REPORTED_MESSAGE

from .conftest import Client, Upload, make_upload

GRACE_SECONDS = 8.0  # far longer than any upload here takes
WORKERS, UPLOADS_PER_WORKER = 3, 6


def _sweep_reports(emulator: Emulator) -> list[dict[str, Any]]:
    """Every ``ORPHAN: ...`` line the sweep function has logged, parsed."""
    events = emulator.client("logs").filter_log_events(
        logGroupName=emulator.function(names.SWEEP).log_group, filterPattern='"ORPHAN"'
    )["events"]
    lines = [json.loads(e["message"]) for e in events if e["message"].startswith("{")]
    return [line for line in lines if str(line.get("message", "")).startswith("ORPHAN: ")]


def _sweeper(emulator: Emulator) -> Sweeper:
    assert emulator.sweeper is not None  # set once local mode started
    return emulator.sweeper


class _Sweeping:
    """Runs the sweep (deleting) over and over on its own thread, as its schedule would."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._stop = threading.Event()
        self.runs: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.runs.append(
                _sweeper(self._emulator).run_once(grace_seconds=GRACE_SECONDS, deletes=True)
            )

    def __enter__(self) -> _Sweeping:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _uploads(worker: int) -> list[Upload]:
    """One worker's uploads: its own item, and an item every worker shares (races: 409s)."""
    own = make_upload(data=f"worker {worker} own 0".encode())
    shared_product = "SWEEP-SHARED"
    uploads = []
    for n in range(UPLOADS_PER_WORKER):
        if n % 2:
            uploads.append(
                make_upload(
                    data=f"w{worker} shared {n}".encode(),
                    productId=shared_product,
                    fileName="shared.txt",
                )
            )
        else:
            uploads.append(
                make_upload(
                    data=f"w{worker} own {n}".encode(),
                    productId=own.body["productId"],
                    fileName="own.txt",
                )
            )
    return uploads


def test_the_sweep_never_touches_committed_or_young_versions_while_uploads_run(
    client: Client, emulator: Emulator
):
    # Two uploads fail to record and then to compensate: their versions are orphans.
    emulator.faults.add(
        "dynamodb", "TransactWriteItems", "AccessDeniedException", count=2, task="record"
    )
    emulator.faults.add("s3", "DeleteObject", "AccessDenied", task="compensate")

    def worker(index: int) -> list[tuple[Upload, Any]]:
        return [(upload, client.post(upload.body)) for upload in _uploads(index)]

    with _Sweeping(emulator) as sweeping, ThreadPoolExecutor(WORKERS) as pool:
        results = [pair for batch in pool.map(worker, range(WORKERS)) for pair in batch]
    emulator.faults.clear()
    assert sweeping.runs, "the sweep never ran"

    stored = [(u, r.json()) for u, r in results if r.status_code == 200]
    orphaned = [(u, r.json()) for u, r in results if r.status_code == 500]
    assert {r.status_code for _, r in results} <= {200, 409, 500}
    assert len(orphaned) == 2, [r.text for _, r in results if r.status_code == 500]
    assert all(body["error"]["message"] == ORPHAN_REPORTED_MESSAGE for _, body in orphaned)
    # Every 200's version is still there, with its bytes.
    for upload, body in stored:
        assert client.object_bytes(upload.key, body["versionId"]) == upload.data
    # Each item points at the current version of its key.
    for key, product in {(u.key, u.body["productId"]) for u, _ in stored}:
        [current] = [v["VersionId"] for v in client.versions(key) if v["IsLatest"]]
        [item] = [i for i in client.items(product) if i["s3Key"] == key]
        assert item["versionId"] == current
    # The orphans are younger than the grace period: reported by their compensation, not swept.
    orphan_ids = {body["requestId"] for _, body in orphaned}
    swept_ids = {line["orphan"]["requestId"] for line in _sweep_reports(emulator)}
    assert not swept_ids & (orphan_ids | {body["requestId"] for _, body in stored})
    orphan_versions = {v["VersionId"] for u, _ in orphaned for v in client.versions(u.key)} - {
        body["versionId"] for _, body in stored
    }
    assert len(orphan_versions) == 2

    # Once they are older than the grace period, the sweep deletes exactly them.
    time.sleep(GRACE_SECONDS)
    _sweeper(emulator).run_once(grace_seconds=GRACE_SECONDS, deletes=True)
    remaining = {v["VersionId"] for u, _ in results for v in client.versions(u.key)}
    assert not remaining & orphan_versions
    assert {body["versionId"] for _, body in stored} <= remaining
    deleted = {
        line["orphan"]["versionIds"][0]
        for line in _sweep_reports(emulator)
        if line["orphan"]["requestId"] in orphan_ids
    }
    assert deleted == orphan_versions


def test_a_sweep_that_cannot_read_the_ledger_fails_and_the_next_one_runs(client, emulator):
    fault = emulator.faults.add("dynamodb", "Query", "AccessDeniedException", task=names.SWEEP)
    with pytest.raises(SweepFailed, match="StorageError"):
        emulator.sweeper.run_once(grace_seconds=GRACE_SECONDS)
    assert fault.injected >= 1
    emulator.faults.clear()
    result = emulator.sweeper.run_once(grace_seconds=GRACE_SECONDS)
    assert result["unfinished"] is False
