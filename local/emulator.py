"""The whole system, offline: the synthesized stack on emulated AWS services plus the local API.

Used by ``python -m local`` and, in-process, by the end-to-end tests::

    with Emulator(port=0, aws_port=0) as emulator:
        requests.post(emulator.api_url, json=...)
        emulator.faults.add("dynamodb", "PutItem", count=1)
        emulator.faults.delay("s3", "PutObject", 0.5)
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from local import assembly as assembly_module
from local import moto_patches, provisioning
from local import template as tpl
from local.collector import Collector
from local.faults import Faults
from local.gateway import MAX_PAYLOAD_BYTES, Gateway, Request, Response
from local.lambda_runtime import LambdaRuntime
from local.saturation import Saturation
from local.scheduler import Sweeper
from local.step_functions import SyncExecutor
from tasks.contract import names

LOG = logging.getLogger("local")
# Local mode's own route, beside the API's (the deployed API has no such route): the API's
# OpenAPI document as the repository ships it (written by `make openapi`).
OPENAPI_PATH = "/openapi.json"
OPENAPI_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
HOST = "127.0.0.1"
# What each port is for, as a refusal names it.
API_PORT = "the local API's port"
AWS_PORT = "the emulated AWS services' port"
# How long moto's server may take to listen once its port was found free.
MOTO_START_SECONDS = 10.0


class PortUnavailable(Exception):
    """A port local mode must listen on is taken (or refused): ``role`` is :data:`API_PORT` or
    :data:`AWS_PORT`."""

    def __init__(self, port: int, role: str, reason: str) -> None:
        super().__init__(f"port {port} {reason} ({role})")
        self.port = port
        self.role = role


def _reason(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "is in use"
    return f"cannot be opened ({error.strerror})"


def check_port(port: int, role: str) -> None:
    """Raise :class:`PortUnavailable` unless a server can listen on ``port`` (0: the system picks
    a free one). The probe binds as the servers do, with SO_REUSEADDR: a port that a previous run
    left in TIME_WAIT is free."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
            probe.listen()
        except OSError as error:
            raise PortUnavailable(port, role, _reason(error)) from None


def start_moto(server: Any, port: int, timeout: float = MOTO_START_SECONDS) -> None:
    """``server.start()`` (moto's ``ThreadedMotoServer``), bounded: moto waits for its server
    thread without a timeout, and that thread exits when it cannot bind the port (werkzeug prints
    two lines and calls ``sys.exit``), so a port taken since it was checked would hang the start
    for good, deaf to signals."""
    check_port(port, AWS_PORT)
    starting = threading.Thread(target=server.start, name="moto-start", daemon=True)
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):  # werkzeug's lines about a taken port
        starting.start()
        starting.join(timeout)
    if starting.is_alive():
        check_port(port, AWS_PORT)  # taken in the meantime: the usual reason
        sys.stderr.write(printed.getvalue())
        raise RuntimeError(f"the emulated AWS services did not start within {timeout:g} s")


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _read_body(headers: Message, stream: io.BufferedIOBase) -> tuple[bytes, bool]:
    """The request body and whether it was over :data:`MAX_PAYLOAD_BYTES` (then it is read and
    dropped, so the connection stays usable, and the body is empty)."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(stream)
    length = int(headers.get("Content-Length") or 0)
    if length > MAX_PAYLOAD_BYTES:
        _discard(stream, length)
        return b"", True
    if length:
        return stream.read(length), False
    return b"", False


def _discard(stream: io.BufferedIOBase, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            break
        length -= len(chunk)


def _read_chunked(stream: io.BufferedIOBase) -> tuple[bytes, bool]:
    """A ``Transfer-Encoding: chunked`` body, read to its end; only kept within the limit."""
    parts: list[bytes] = []
    total = 0
    while True:
        size = int(stream.readline().split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline().strip():
                pass  # trailers
            break
        chunk = stream.read(size)
        stream.readline()
        total += len(chunk)
        if total <= MAX_PAYLOAD_BYTES:
            parts.append(chunk)
    return (b"".join(parts), False) if total <= MAX_PAYLOAD_BYTES else (b"", True)


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local-apigateway"
        sys_version = ""

        def _serve(self) -> None:
            body, too_large = _read_body(self.headers, self.rfile)
            if self.command == "GET" and urlsplit(self.path).path == OPENAPI_PATH:
                self._send(
                    Response(200, {"Content-Type": "application/json"}, OPENAPI_FILE.read_bytes())
                )
                return
            request = Request(
                method=self.command,
                target=self.path,
                headers=dict(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                too_large=too_large,
            )
            try:
                response = gateway.handle(request)
            except Exception:
                LOG.exception("local API failed on %s %s", self.command, self.path)
                response = gateway.gateway_response(
                    "API_CONFIGURATION_ERROR", {"requestId": request.request_id, "error": {}}
                )
            self._send(response)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def __getattr__(self, name: str) -> Any:
            # Every method reaches the gateway, TRACE and made-up ones too: API Gateway answers
            # a method the resource lacks with its gateway response, never an HTML 501.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # A request that is not HTTP enough to route (a malformed request line, a header line
            # over the limit...): the template's gateway response for a bad request, JSON as
            # every answer of the API, where BaseHTTPRequestHandler would send an HTML page.
            self.request_version = self.protocol_version  # a status line even when unparsed
            request_id = str(uuid.uuid4())
            response = gateway.gateway_response(
                "BAD_REQUEST_PARAMETERS", {"requestId": request_id, "error": {}}
            )
            response.headers["x-amzn-RequestId"] = request_id
            response.headers["Connection"] = "close"
            self._send(response)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are reported through the gateway's on_response

    return Handler


def api_server(gateway: Gateway, port: int) -> ThreadingHTTPServer:
    """The local API's server, listening on ``port``, not yet serving."""
    try:
        return _ApiServer((HOST, port), _handler_class(gateway))
    except OSError as error:
        raise PortUnavailable(port, API_PORT, _reason(error)) from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Emulator:
    """Starts moto (in-process server), provisions the template's resources, serves the API."""

    def __init__(
        self,
        *,
        port: int = 3000,
        aws_port: int = 5000,
        faults: list[str] | None = None,
        delays: list[str] | None = None,
        outdir: Path | None = None,
        root: Path = assembly_module.PROJECT_ROOT,
        on_response: Callable[[Request, Response, float], None] | None = None,
        sweep_interval: float | None = None,
        orphan_grace: float | None = None,
    ) -> None:
        self.port = port
        self.aws_port = aws_port
        self.faults = Faults()
        for spec in faults or []:
            self.faults.add_spec(spec)
        for spec in delays or []:
            self.faults.add_delay_spec(spec)
        self._outdir = outdir
        self._root = root
        self._on_response = on_response
        self._stack = contextlib.ExitStack()
        self.assembly: assembly_module.CloudAssembly | None = None
        self.outputs: dict[str, str] = {}
        self.functions: list[tpl.FunctionSpec] = []
        self.state_machines: list[tpl.StateMachineSpec] = []
        self.provisioned = provisioning.Provisioned()
        self.runtime: LambdaRuntime | None = None
        self.saturation = Saturation()  # stretches task timeouts under load: local.saturation
        self.gateway: Gateway | None = None
        # The orphan sweep, as its schedule runs it on AWS (local.scheduler): every
        # ``sweep_interval`` seconds (None: only when called), with ``orphan_grace``.
        self.sweeper: Sweeper | None = None
        self._sweep_interval = sweep_interval
        self._orphan_grace = orphan_grace
        self._moto: Any = None
        self._http: ThreadingHTTPServer | None = None

    # -- addresses ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/upload"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    def client(self, service: str) -> Any:
        """A boto3 client for the emulated services (no fault injection applies to it)."""
        return provisioning.client(service, self.aws_endpoint)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Emulator:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def check_ports(self) -> None:
        """Raise :class:`PortUnavailable` if either port is taken: before the slow part of the
        start (a synth can take a minute)."""
        check_port(self.aws_port, AWS_PORT)
        check_port(self.port, API_PORT)

    def _start(self) -> None:
        self.assembly = assembly_module.load(self._outdir, root=self._root)
        resolver = tpl.Resolver(self.assembly.template, self.assembly.stack_name)
        self._start_moto()
        endpoint = self.aws_endpoint

        provisioning.create_keys(resolver, endpoint, self.provisioned)
        provisioning.create_storage(resolver, endpoint, self.provisioned)
        provisioning.create_log_groups(resolver, endpoint, self.provisioned)
        self.functions = tpl.functions(resolver)
        self.state_machines = tpl.state_machines(resolver)

        self.runtime = LambdaRuntime(
            self.functions, aws_endpoint=endpoint, saturation=self.saturation
        )
        self._stack.enter_context(moto_patches.cached_jsonpath())
        self._stack.enter_context(moto_patches.cached_state_machine_programs())
        self._stack.enter_context(moto_patches.cached_interpreter_clients())
        self._stack.enter_context(moto_patches.serialized_dynamodb())
        self._stack.enter_context(moto_patches.item_level_transactions())
        self._stack.enter_context(moto_patches.lean_update_expressions())
        self._stack.enter_context(moto_patches.stretched_task_timeouts(self.saturation))
        self._stack.enter_context(self.faults.installed())
        self._stack.enter_context(self.runtime.installed())
        provisioning.create_functions(self.functions, endpoint, self.provisioned)
        provisioning.create_state_machines(self.state_machines, endpoint, self.provisioned)
        self.runtime.preload()
        self.sweeper = Sweeper(
            self.runtime,
            self.function(names.SWEEP),
            self.saturation,
            grace_seconds=self._orphan_grace,
        )
        if self._sweep_interval:
            self.sweeper.every(self._sweep_interval)
            self._stack.callback(self.sweeper.stop)

        apis = tpl.apis(resolver)
        if len(apis) != 1:
            raise tpl.TemplateError(f"expected one REST API in the template, found {len(apis)}")
        executor = SyncExecutor(_logging_configs(self.state_machines), saturation=self.saturation)
        self.gateway = Gateway(apis[0], executor, on_response=self._on_response)
        self.outputs = _outputs(resolver)
        self._start_http(self.gateway)
        collector = Collector(self.saturation)  # full GCs between executions: local.collector
        collector.start()
        self._stack.callback(collector.stop)

    def _start_moto(self) -> None:
        from local.s3_checks import CheckedMotoServer

        moto_patches.configure_moto(self.aws_port)
        self._stack.enter_context(moto_patches.cached_moto_module_list())
        self._moto = CheckedMotoServer(ip_address=HOST, port=self.aws_port, verbose=False)
        self._stack.enter_context(moto_patches.in_memory_s3_keys())
        self._stack.enter_context(
            moto_patches.lean_multipart_completion(self._moto.part_digests.get)
        )
        self._stack.enter_context(moto_patches.ranged_object_reads())
        start_moto(self._moto, self.aws_port)
        self._stack.callback(self._stop_moto)
        self.aws_port = int(self._moto.get_host_and_port()[1])
        moto_patches.configure_moto(self.aws_port)

    def _start_http(self, gateway: Gateway) -> None:
        self._http = api_server(gateway, self.port)
        self.port = int(self._http.server_address[1])
        thread = threading.Thread(target=self._http.serve_forever, name="local-api", daemon=True)
        thread.start()
        self._stack.callback(self._stop_http)

    def _stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def _stop_moto(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- convenience for tests and operators ----------------------------------------------
    def function(self, task: str) -> tpl.FunctionSpec:
        """The function whose handler module is ``tasks.<task>``."""
        for spec in self.functions:
            if spec.module.rsplit(".", 1)[-1] == task:
                return spec
        raise KeyError(task)

    @property
    def bucket_name(self) -> str:
        store = self.function("store")
        return store.environment[names.UPLOAD_BUCKET_NAME]

    @property
    def table_name(self) -> str:
        record = self.function("record")
        return record.environment[names.METADATA_TABLE_NAME]

    @property
    def idempotency_table_name(self) -> str:
        record = self.function("record")
        return record.environment[names.IDEMPOTENCY_TABLE_NAME]

    @property
    def sessions_table_name(self) -> str:
        return self.function("session").environment[names.SESSIONS_TABLE_NAME]

    @property
    def ledger_table_name(self) -> str:
        record = self.function("record")
        return record.environment[names.LEDGER_TABLE_NAME]


def _outputs(resolver: tpl.Resolver) -> dict[str, str]:
    outputs = {}
    for name, output in resolver.template.get("Outputs", {}).items():
        try:
            outputs[name] = str(resolver.resolve(output.get("Value")))
        except tpl.TemplateError:
            continue
    return outputs


def _logging_configs(machines: list[tpl.StateMachineSpec]) -> dict[str, dict[str, Any]]:
    """State machine ARN -> where and what its executions log (the template's configuration)."""
    configs = {}
    for machine in machines:
        logging_config = machine.logging or {}
        level = str(logging_config.get("Level", "OFF"))
        destinations = logging_config.get("Destinations") or []
        if level == "OFF" or not destinations:
            continue
        group_arn = str(destinations[0].get("CloudWatchLogsLogGroup", {}).get("LogGroupArn", ""))
        if ":log-group:" not in group_arn:
            continue
        group = group_arn.split(":log-group:", 1)[1].removesuffix(":*")
        configs[machine.arn] = {
            "group": group,
            "level": level,
            "include_data": bool(logging_config.get("IncludeExecutionData", False)),
        }
    return configs
