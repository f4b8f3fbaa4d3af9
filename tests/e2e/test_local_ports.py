"""A port local mode needs that is taken: ``python -m local`` ends at once with one line naming
the port and the option that changes it, before any synth; a port taken later, while it starts,
ends the start with the same refusal instead of a hang or a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.__main__ import port_refusal
from local.emulator import (
    API_PORT,
    AWS_PORT,
    HOST,
    Emulator,
    PortUnavailable,
    api_server,
    free_port,
    start_moto,
)
from local.s3_checks import CheckedMotoServer

ROOT = Path(__file__).resolve().parents[2]
# Generous for a loaded machine: the refusal itself comes before anything slow is started.
REFUSED_WITHIN_SECONDS = 20


@pytest.fixture(autouse=True)
def _no_faults() -> None:
    """Not the session's emulator for every test here (tests/e2e/conftest.py): the refusals
    start local mode themselves, and quickly."""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind((HOST, 0))
        other.listen()
        yield other.getsockname()[1]


def _local(*options: str) -> subprocess.CompletedProcess[str]:
    """``python -m local`` with ``options``, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "local", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,  # a safety net only: the tests want it over long before
    )


def _expected_line(port: int, role: str) -> str:
    option, variable = {API_PORT: ("--port", "PORT"), AWS_PORT: ("--aws-port", "AWS_PORT")}[role]
    return (
        f"Error: port {port} is in use ({role}); choose another with {option} PORT "
        f"(make local {variable}=PORT)"
    )


@pytest.mark.parametrize("role", [API_PORT, AWS_PORT], ids=["api-port", "aws-port"])
def test_a_taken_port_ends_local_mode_at_once_in_one_line(taken_port: int, role: str) -> None:
    port, aws_port = (taken_port, free_port()) if role == API_PORT else (free_port(), taken_port)
    started = time.monotonic()
    completed = _local("--port", str(port), "--aws-port", str(aws_port))
    elapsed = time.monotonic() - started

    assert elapsed < REFUSED_WITHIN_SECONDS, completed
    assert completed.returncode == 2, completed
    assert completed.stderr.splitlines() == [_expected_line(taken_port, role)], completed.stderr
    assert completed.stdout == ""  # refused before anything started, the synth included
    assert "Traceback" not in completed.stderr + completed.stdout


@pytest.mark.parametrize(
    ("options", "line"),
    [
        pytest.param(
            ["--port", "70000", "--aws-port", "0"],
            "Error: --port 70000: PORT must be 0 (any free port) to 65535",
            id="not-a-port",
        ),
        pytest.param(
            ["--port", "4000", "--aws-port", "4000"],
            "Error: --port and --aws-port are both 4000: the local API and the emulated AWS "
            "services need a port each",
            id="one-port-for-both",
        ),
    ],
)
def test_ports_local_mode_cannot_use_are_refused_at_once_in_one_line(
    options: list[str], line: str
) -> None:
    completed = _local(*options)
    assert completed.returncode == 2, completed
    assert completed.stderr.splitlines() == [line]
    assert completed.stdout == ""


# werkzeug's server thread ends in sys.exit when the port is taken, which pytest reports.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_aws_port_taken_while_moto_starts_is_refused_within_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The port is free when checked and taken before moto binds it: moto's own start would
    wait for good; the bounded start gives the same refusal, werkzeug's lines kept quiet."""
    port = free_port()
    moto = CheckedMotoServer(ip_address=HOST, port=port, verbose=False)
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    class TakenMeanwhile:
        def start(self) -> None:
            other.bind((HOST, port))  # another program gets there first
            other.listen()
            moto.start()

    started = time.monotonic()
    try:
        with pytest.raises(PortUnavailable) as raised:
            start_moto(TakenMeanwhile(), port, timeout=2.0)
    finally:
        other.close()

    assert time.monotonic() - started < REFUSED_WITHIN_SECONDS
    assert port_refusal(raised.value) == _expected_line(port, AWS_PORT)
    assert capsys.readouterr().err == ""


def test_the_api_port_taken_while_local_mode_starts_gets_the_same_refusal(
    emulator: Emulator, taken_port: int
) -> None:
    assert emulator.gateway is not None
    with pytest.raises(PortUnavailable) as raised:
        api_server(emulator.gateway, taken_port)

    assert port_refusal(raised.value) == _expected_line(taken_port, API_PORT)
