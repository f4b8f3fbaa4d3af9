"""Ctrl-C while local mode synthesizes (a first run): the signal reaches the terminal's whole
process group; local mode stops the synth, its jsii Node process included, and ends with one
line and status 130, no traceback from either process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the app and local mode read: a copy without cdk.out synthesizes, leaving ROOT's alone.
SOURCES = ("local", "infra", "tasks", "main.py", "cdk.json")
SYNTH_STARTS_WITHIN_SECONDS = 120
STOPS_WITHIN_SECONDS = 20  # an interrupted synth may finish the jsii call it is in (10 s at most)


@pytest.fixture(autouse=True)
def _no_faults() -> None:
    """Not the session's emulator (tests/e2e/conftest.py): this test starts local mode itself."""


@pytest.fixture
def first_run(tmp_path: Path) -> Path:
    """The app's sources, never synthesized."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            ignored = shutil.ignore_patterns("__pycache__", ".*_cache")
            shutil.copytree(source, tmp_path / name, ignore=ignored)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def _processes() -> dict[int, tuple[str, str, int]]:
    """Every process: its command name, state and parent (/proc/PID/stat)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue  # gone
        if stat:
            name, fields = stat.split(" (", 1)[1].rsplit(") ", 1)
            state, parent = fields.split()[:2]
            found[int(entry.name)] = (name, state, int(parent))
    return found


def _descendants(pid: int) -> dict[int, str]:
    """The processes ``pid`` started, and theirs: pid -> command name."""
    processes = _processes()
    found: dict[int, str] = {}
    parents = {pid}
    while parents:
        children = {child for child, (_, _, parent) in processes.items() if parent in parents}
        found.update((child, processes[child][0]) for child in children)
        parents = children - parents
    return found


def _still_running(started: dict[int, str]) -> dict[int, str]:
    processes = _processes()
    return {
        pid: name
        for pid, name in started.items()
        if pid in processes and processes[pid][0] == name and processes[pid][1] != "Z"
    }


def test_ctrl_c_during_the_synth_ends_in_one_line_with_nothing_left_running(
    first_run: Path,
) -> None:
    local = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--aws-port", "0"],
        cwd=first_run,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + SYNTH_STARTS_WITHIN_SECONDS
        started = _descendants(local.pid)
        while "node" not in started.values() and time.monotonic() < deadline:
            assert local.poll() is None, local.communicate()
            time.sleep(0.1)
            started = _descendants(local.pid)
        assert "node" in started.values(), "the synth's jsii Node process never started"
        os.killpg(local.pid, signal.SIGINT)  # what Ctrl-C at the terminal does
        interrupted = time.monotonic()
        stdout, stderr = local.communicate(timeout=60)
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGKILL)
            local.communicate()

    assert time.monotonic() - interrupted < STOPS_WITHIN_SECONDS
    assert local.returncode == 130, (stdout, stderr)
    assert stderr.splitlines()[-1:] == [
        "Stopped before local mode was ready; nothing is left running."
    ], stderr
    assert "Traceback" not in stdout + stderr
    assert "Error" not in stderr
    assert _still_running(started) == {}  # the synth and its Node process included
    assert not (first_run / "cdk.out" / "manifest.json").exists()
