"""local.collector: full collections run only while no execution is in flight, and executions
that arrive meanwhile wait for the collection to end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from local.collector import Collector
from local.saturation import Saturation


def _saturation() -> Saturation:
    return Saturation(cores=2, load=lambda: 0.0)


def test_a_collection_waits_for_the_execution_in_flight():
    saturation = _saturation()
    events: list[str] = []
    collector = Collector(saturation, collect=lambda: events.append("collect"))
    running = threading.Event()
    finish = threading.Event()

    def execution() -> None:
        with saturation.execution():
            running.set()
            finish.wait(5)
            events.append("execution ended")

    worker = threading.Thread(target=execution)
    worker.start()
    running.wait(5)
    collecting = threading.Thread(target=collector.collect_between_executions)
    collecting.start()
    time.sleep(0.2)
    assert events == []  # held back while the execution runs
    finish.set()
    collecting.join(5)
    worker.join(5)
    assert events == ["execution ended", "collect"]
    assert collector.collections == 1


def test_an_execution_that_arrives_during_a_collection_starts_after_it():
    saturation = _saturation()
    events: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def collect() -> None:
        started.set()
        release.wait(5)
        events.append("collect")

    collector = Collector(saturation, collect=collect)
    collecting = threading.Thread(target=collector.collect_between_executions)
    collecting.start()
    started.wait(5)

    def execution() -> None:
        with saturation.execution():
            events.append("execution")

    worker = threading.Thread(target=execution)
    worker.start()
    time.sleep(0.2)
    assert events == []  # the new execution waits
    release.set()
    worker.join(5)
    collecting.join(5)
    assert events == ["collect", "execution"]


def test_without_draining_a_collection_never_holds_an_execution_back():
    saturation = _saturation()
    collected: list[int] = []
    collector = Collector(saturation, collect=lambda: collected.append(1))
    with saturation.execution():
        started = time.monotonic()
        assert collector.collect_between_executions(drain=False) is False
        assert time.monotonic() - started < 0.1
    assert collected == []
    assert collector.collect_between_executions(drain=False) is True  # idle now
    assert collected == [1]


def test_no_collection_when_the_executions_do_not_end_in_time(monkeypatch):
    monkeypatch.setattr("local.collector.DRAIN_SECONDS", 0.2)
    saturation = _saturation()
    collected: list[int] = []
    collector = Collector(saturation, collect=lambda: collected.append(1))
    with saturation.execution():
        assert collector.collect_between_executions() is False
        with saturation.execution():  # not held once the collector gave up
            pass
    assert collected == []
    assert collector.collections == 0


# The collector changes settings of the whole process (gc thresholds, frozen objects), and the
# test session may be running local mode with its own: this check runs in a fresh interpreter.
_START_STOP = """
import gc, json, time
from local.collector import Collector
from local.saturation import Saturation

before = gc.get_threshold()
collector = Collector(Saturation(cores=2, load=lambda: 0.0), poll_seconds=0.05)
collector.start()
seen = {"threshold_while_running": gc.get_threshold()[2], "frozen": gc.get_freeze_count()}
try:
    Collector(Saturation(cores=2, load=lambda: 0.0)).start()
except RuntimeError as error:
    seen["second_start"] = str(error)
deadline = time.monotonic() + 10
while collector.collections == 0 and time.monotonic() < deadline:
    [[] for _ in range(50_000)]  # garbage: young collections, then a due full one
    time.sleep(0.01)
seen["collections"] = collector.collections
collector.stop()
seen["threshold_restored"] = gc.get_threshold() == before
seen["frozen_after"] = gc.get_freeze_count()
print(json.dumps(seen))
"""


def test_while_running_automatic_full_collections_are_off_and_due_ones_run_between_executions():
    ran = subprocess.run(
        [sys.executable, "-c", _START_STOP],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    seen = json.loads(ran.stdout)
    assert seen["threshold_while_running"] > 10_000  # CPython never starts a full one itself
    assert seen["frozen"] > 0  # start-up objects are left out of collections
    assert seen["second_start"] == "a collector already runs in this process"
    assert seen["collections"] >= 1
    assert seen["threshold_restored"] is True
    assert seen["frozen_after"] == 0
