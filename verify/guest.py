"""A function's sandbox, run INSIDE the emulated arm64 Python: standard library only.

Started by the host (:mod:`verify.sandbox`) as ``python3.13 -I -S -B guest.py CONFIG``: no
Python environment variables, no site-packages, no byte code written into the assets. The
import path is the function's own assets and the runtime's boto3 around the guest's standard
library, in the order the Lambda runtime puts them, and holds nothing else: nothing outside
these roots, nothing of the host's Python (its virtualenv, its installation). Then, as in
Lambda's init phase, the handler's module is imported. Every module loaded, then and after each
invocation, must come from those roots.

Under emulation botocore's first client takes seconds (it parses its service data), more than a
task's SDK deadline allows even when stretched (on Lambda it takes about 0.1 s). So when the
handler uses the SDK module named by ``warm_up``, the init phase also creates the services'
clients through it: the invocations then meet their time budget.

The protocol is JSON lines on the process's original stdout, which the handler cannot write to:
fd 1 is pointed at stderr first, so what the handler prints and logs (its log lines, its EMF
metrics) goes to stderr, as Lambda sends it to the log group.

* first line: ``{"ready": {"seconds", "modules", "python", "machine"}}``, or ``{"failed": "one
  line"}`` and exit status 1;
* then, for each ``{"id", "event"}`` read from stdin, ``{"id", "seconds", "result"}`` or
  ``{"id", "seconds", "error": {errorType, errorMessage, requestId, stackTrace}}`` (the payload
  Lambda returns for an unhandled error). The end of stdin ends the process.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import secrets
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, TypedDict

Handler = Callable[[Any, Any], Any]


class WarmUp(TypedDict):
    module: str  # the tasks' SDK module, e.g. "tasks.core.aws"
    factory: str  # its client factory, called as factory(service, os.environ)
    services: list[str]


class Config(TypedDict):
    handler: str  # "tasks.validate.handler"
    function_arn: str
    timeout_seconds: float
    rootfs: str  # the guest's root file system: its standard library
    front: list[str]  # before the standard library: the code asset, each layer's python/
    back: list[str]  # after it: the runtime's boto3
    host: list[str]  # the host's Python installations (its venv...): nothing may come from them
    warm_up: WarmUp


class Foreign(ImportError):
    """Something was, or could be, imported from outside the assets and the guest."""


def within(path: str, bases: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``bases`` or inside one (compared as absolute paths, symbolic
    links unresolved: an asset's file is the asset's even if it links elsewhere)."""
    absolute = os.path.abspath(path)
    return any(
        absolute == base or absolute.startswith(base.rstrip(os.sep) + os.sep)
        for base in map(os.path.abspath, bases)
    )


def isolation_breach(paths: Iterable[str], config: Config) -> str | None:
    """The first of ``paths`` that is outside the sandbox's roots or inside the host's Python."""
    roots = [config["rootfs"], *config["front"], *config["back"]]
    for path in paths:
        if within(path, config["host"]) or not within(path, roots):
            return path
    return None


def module_files() -> list[str]:
    """The file of every loaded module that has one (built-in modules have none), except this
    script's: the sandbox itself, as the runtime's bootstrap is on Lambda."""
    modules = [module for name, module in list(sys.modules.items()) if name != "__main__"]
    files = [getattr(module, "__file__", None) for module in modules]
    return [file for file in files if isinstance(file, str)]


def import_path(config: Config, stdlib: Sequence[str]) -> list[str]:
    """The sandbox's ``sys.path``; Foreign if it would reach outside the sandbox."""
    path = [*config["front"], *stdlib, *config["back"]]
    breach = isolation_breach(path, config)
    if breach is not None:
        raise Foreign(f"the import path would hold {breach}, outside the sandbox")
    return path


def check_modules(config: Config) -> None:
    breach = isolation_breach(module_files(), config)
    if breach is not None:
        raise Foreign(f"a module was loaded from {breach}, outside the sandbox")


def trace_header() -> str:
    """An X-Ray trace header, as Lambda sets ``_X_AMZN_TRACE_ID`` for each invocation."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"


class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(self, config: Config, request_id: str) -> None:
        env = os.environ
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = env["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = config["function_arn"]
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + config["timeout_seconds"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What Lambda returns for an unhandled error (Step Functions reads ``errorType``)."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def init(config: Config) -> Handler:
    """Lambda's init phase: the import path, the handler, the SDK's clients."""
    sys.path[:] = import_path(config, list(sys.path))  # -I -S: the standard library only
    module_name, _, attribute = config["handler"].rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    warm_up_clients(config["warm_up"])
    check_modules(config)
    return handler


def warm_up_clients(warm_up: WarmUp) -> None:
    """Create the SDK's clients through the tasks' own factory, when the handler uses the SDK."""
    sdk = sys.modules.get(warm_up["module"])
    if sdk is None and "botocore.session" in sys.modules:
        raise ImportError(
            f"the handler uses botocore but not {warm_up['module']}, the module whose "
            "clients the sandbox creates at init (verify.sandbox.SDK_WARM_UP)"
        )
    for service in warm_up["services"] if sdk is not None else []:
        getattr(sdk, warm_up["factory"])(service, os.environ)


def invoke(config: Config, handler: Handler, event: Any) -> dict[str, Any]:
    """One invocation: the handler's result, or the error payload."""
    request_id = str(uuid.uuid4())
    os.environ["_X_AMZN_TRACE_ID"] = trace_header()
    try:
        result = handler(event, LambdaContext(config, request_id))
        json.dumps(result)  # Lambda answers with JSON: anything else fails the invocation
        check_modules(config)
    except Exception as exc:
        return {"error": error_payload(exc, request_id)}
    return {"result": result}


def serve(config: Config, handler: Handler, channel: IO[str]) -> None:
    """Answer each invocation read from stdin, one at a time, as a Lambda sandbox does."""
    for line in sys.stdin:
        request = json.loads(line)
        started = time.monotonic()
        answer = {"id": request["id"], **invoke(config, handler, request["event"])}
        answer["seconds"] = round(time.monotonic() - started, 3)
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


def main() -> int:
    config: Config = json.loads(sys.argv[1])
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints and logs go to stderr, never into the protocol
    started = time.monotonic()
    try:
        handler = init(config)
    except Exception as exc:
        channel.write(json.dumps({"failed": f"{type(exc).__name__}: {exc}".splitlines()[0]}))
        channel.write("\n")
        return 1
    ready = {
        "seconds": round(time.monotonic() - started, 3),
        "modules": len(sys.modules),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    channel.write(json.dumps({"ready": ready}) + "\n")
    channel.flush()
    serve(config, handler, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
