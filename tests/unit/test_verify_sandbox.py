"""A function's sandbox seen from the host (verify.sandbox): started once, answering each
invocation, each call recorded for the report, a crash explained in one line. The guest runs on
this machine's Python here (the same script qemu runs): no emulation needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local.template import FunctionSpec
from verify import sandbox as sandbox_module
from verify.functions import GuestFunction
from verify.rootfs import Target
from verify.sandbox import Sandbox, SandboxFailed

HANDLERS = """
import os

def echo(event, context):
    print("handled", event)
    return {"echo": event}

def fail(event, context):
    raise KeyError("productId")

def crash(event, context):
    print("about to crash", flush=True)
    os._exit(3)
"""
ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "Stack-Fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Stack-Fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
}


class HostTarget(Target):
    """This machine's Python in place of the emulated one: its standard library stands for the
    guest's, its virtualenv stays out of bounds."""

    def command(self, *args: str) -> list[str]:
        return [sys.executable, *args]


@pytest.fixture(autouse=True)
def _only_the_virtualenv_is_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "HOST_PYTHON", [sys.prefix])


def sandbox(tmp_path: Path, handler: str) -> Sandbox:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    spec = FunctionSpec("Fn", "Stack-Fn", "arn:fn", handler, {}, 3, "/aws/lambda/Stack-Fn")
    function = GuestFunction(spec, 128, tmp_path, ())
    box = Sandbox(function, HostTarget(Path(sys.base_prefix), tmp_path / "sdk"), ENV)
    box.start()
    return box


def test_each_invocation_is_answered_and_recorded(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "handlers.echo")
    try:
        box.wait_ready(60)
        assert box.invoke({"n": 1}, "upload")["result"] == {"echo": {"n": 1}}
        assert box.invoke({"n": 2}, "session")["result"] == {"echo": {"n": 2}}
    finally:
        box.close()
    assert box.init_seconds is not None
    assert [(c.label, c.result, c.error) for c in box.calls] == [
        ("upload", {"echo": {"n": 1}}, None),
        ("session", {"echo": {"n": 2}}, None),
    ]


def test_an_unhandled_error_is_the_calls_error(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "handlers.fail")
    try:
        box.wait_ready(60)
        answer = box.invoke({}, "upload")
    finally:
        box.close()
    assert answer["error"]["errorType"] == "KeyError"
    assert box.calls[0].error == "KeyError: 'productId'"


def test_a_guest_that_dies_is_explained_by_its_status_and_last_log_line(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "handlers.crash")
    try:
        box.wait_ready(60)
        with pytest.raises(SandboxFailed, match=r"exited with status 3: about to crash$"):
            box.invoke({}, "upload")
    finally:
        box.close()
    assert box.calls[0].error is not None
    assert box.calls[0].error.startswith("SandboxFailed: the guest exited with status 3")


def test_a_handler_that_does_not_import_fails_the_start(tmp_path: Path) -> None:
    box = sandbox(tmp_path, "handlers_gone.handler")
    try:
        with pytest.raises(SandboxFailed, match="No module named 'handlers_gone'"):
            box.wait_ready(60)
    finally:
        box.close()
