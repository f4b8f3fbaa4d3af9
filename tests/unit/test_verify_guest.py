"""The sandbox's guest side (verify.guest): what may be on its import path and where its modules
may come from, and its JSON-lines protocol. The protocol is exercised with this machine's Python
in place of the emulated one: the guest is standard library only."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from verify import guest

HANDLERS = """
def echo(event, context):
    print("a log line")
    return {"event": event, "function": context.function_name, "ms": context.memory_limit_in_mb}

def fail(event, context):
    raise ValueError("no such product")
"""
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "Stack-Echo",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/Stack-Echo",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0",
}


def config(code: Path, **overrides: Any) -> guest.Config:
    base: guest.Config = {
        "handler": "handlers.echo",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:Stack-Echo",
        "timeout_seconds": 2.0,
        "rootfs": sys.base_prefix,  # stands in for the guest's: its standard library is there
        "front": [str(code)],
        "back": [],
        "host": [sys.prefix] if sys.prefix != sys.base_prefix else [],
        "warm_up": {"module": "no_such_sdk", "factory": "client", "services": ["s3"]},
    }
    return {**base, **overrides}  # type: ignore[typeddict-item]


def start(code: Path, cfg: guest.Config) -> subprocess.Popen[str]:
    command = [sys.executable, "-I", "-S", "-B", guest.__file__, json.dumps(cfg)]
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=LAMBDA_ENV,
        cwd=code,
    )


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    return tmp_path


def exchange(process: subprocess.Popen[str], *events: Any) -> list[dict[str, Any]]:
    assert process.stdin is not None
    assert process.stdout is not None
    answers = [json.loads(process.stdout.readline())]
    for number, event in enumerate(events, 1):
        process.stdin.write(json.dumps({"id": number, "event": event}) + "\n")
        process.stdin.flush()
        answers.append(json.loads(process.stdout.readline()))
    return answers


def test_the_handler_answers_each_event_and_what_it_prints_goes_to_the_log(code: Path) -> None:
    process = start(code, config(code))
    ready, first, second = exchange(process, {"n": 1}, {"n": 2})
    _, log = process.communicate(timeout=30)
    assert ready["ready"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert first["id"] == 1
    assert first["result"] == {"event": {"n": 1}, "function": "Stack-Echo", "ms": 512}
    assert second["result"]["event"] == {"n": 2}
    assert log.count("a log line") == 2
    assert process.returncode == 0


def test_an_unhandled_error_answers_with_lambdas_error_payload(code: Path) -> None:
    process = start(code, config(code, handler="handlers.fail"))
    _, answer = exchange(process, {})
    process.communicate(timeout=30)
    assert "result" not in answer
    assert answer["error"]["errorType"] == "ValueError"
    assert answer["error"]["errorMessage"] == "no such product"
    assert answer["error"]["stackTrace"]


def test_an_import_path_into_the_hosts_virtualenv_is_refused_before_any_import(
    code: Path, tmp_path: Path
) -> None:
    host = tmp_path / "host-venv"  # stands in for the host's virtualenv, wherever the tests run
    site = str(host / "lib" / "site-packages")
    Path(site).mkdir(parents=True)
    process = start(code, config(code, front=[str(code), site], host=[str(host)]))
    out, _ = process.communicate(timeout=30)
    assert json.loads(out) == {
        "failed": f"Foreign: the import path would hold {site}, outside the sandbox"
    }
    assert process.returncode == 1


def test_a_standard_library_outside_the_guests_root_is_refused(code: Path) -> None:
    cfg = config(code, rootfs="/guest-root")
    with pytest.raises(guest.Foreign, match=r"would hold /usr/lib/python3\.13,"):
        guest.import_path(cfg, ["/guest-root/usr/lib/python3.13", "/usr/lib/python3.13"])


def test_the_import_path_is_the_assets_then_the_standard_library_then_the_runtime() -> None:
    cfg = config(Path("/a/code"), rootfs="/g", front=["/a/code", "/a/layer"], back=["/sdk"])
    path = guest.import_path(cfg, ["/g/usr/lib/python3.13"])
    assert path == ["/a/code", "/a/layer", "/g/usr/lib/python3.13", "/sdk"]


def test_a_module_loaded_from_outside_the_roots_is_named(
    code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("smuggled")
    module.__file__ = "/elsewhere/smuggled.py"
    monkeypatch.setitem(sys.modules, "smuggled", module)
    with pytest.raises(guest.Foreign, match=r"loaded from /elsewhere/smuggled\.py"):
        guest.check_modules(config(code, rootfs="/", host=["/elsewhere"]))
    monkeypatch.setitem(sys.modules, "smuggled", types.ModuleType("smuggled"))
    guest.check_modules(config(code, rootfs="/", host=["/elsewhere"]))


@pytest.mark.parametrize(
    ("path", "inside"),
    [("/a/b", True), ("/a/b/c.py", True), ("/a/bc/d.py", False), ("/a", False), ("a/b", False)],
)
def test_within_compares_whole_path_components(path: str, inside: bool) -> None:
    assert guest.within(path, ["/a/b/"]) is inside


def test_the_sdks_clients_are_created_at_init_through_the_tasks_factory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[tuple[str, str]] = []
    sdk = types.ModuleType("fake_sdk")
    sdk.client = lambda service, env: created.append((service, env["AWS_REGION"]))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_sdk", sdk)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    guest.warm_up_clients({"module": "fake_sdk", "factory": "client", "services": ["s3", "sqs"]})
    assert created == [("s3", "us-east-1"), ("sqs", "us-east-1")]


def test_a_handler_using_botocore_another_way_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.session", types.ModuleType("botocore.session"))
    warm_up: guest.WarmUp = {"module": "no_such_sdk", "factory": "client", "services": ["s3"]}
    with pytest.raises(ImportError, match="uses botocore but not no_such_sdk"):
        guest.warm_up_clients(warm_up)
