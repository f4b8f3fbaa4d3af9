"""The emulated AWS services: moto in server mode, in-process, provisioned from the template."""

from __future__ import annotations

import collections
import contextlib
import copy
import datetime
import functools
import io
import json
import logging
import math
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local.saturation import Saturation
from local.template import (
    ACCOUNT_ID,
    REGION,
    FunctionSpec,
    Resolver,
    StateMachineSpec,
)
from tasks.contract.limits import STATE_PAYLOAD_LIMIT_BYTES

LOG = logging.getLogger("local.services")

# Executions kept per state machine (describe_execution works for the most recent ones).
MAX_EXECUTIONS_KEPT = 200
# Longest a polled execution may run (the fallback path): the API's 29 s, plus margin.
POLL_DEADLINE_SECONDS = 35.0
# One log stream per execution (as AWS writes Express logs); the oldest are deleted beyond this.
MAX_LOG_STREAMS_KEPT = 1_000
# History events logged at each level besides ALL (the Step Functions log levels).
_EXECUTION_FAILURES = frozenset({"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})
_SFN_ERROR_PREFIX = "com.amazonaws.swf.service.v2.model#"
# Connections the interpreter's shared Lambda client keeps open (one per concurrent task).
MAX_CONCURRENT_TASKS = 64


def configure_moto(port: int) -> None:
    """Apply what the emulator needs before any state machine exists."""
    from moto.core.config import default_user_config

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per AWS request
    os.environ["MOTO_PORT"] = str(port)  # the ASL interpreter calls Lambda at localhost:$MOTO_PORT
    default_user_config.update(
        {
            "stepfunctions": {"execute_state_machine": True},
            "lambda": {"use_docker": False},
        }
    )


@contextlib.contextmanager
def cached_jsonpath() -> Iterator[None]:
    """moto's ASL interpreter builds a new JSONPath parser (PLY lex + yacc) for every path it
    evaluates, which costs ~100 ms per execution; parsed expressions are immutable, so cache them
    for the emulator's lifetime."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    modules: list[Any] = [json_path, result_path]
    originals = [module.parse for module in modules]
    for module, parse in zip(modules, originals, strict=True):
        module.parse = functools.lru_cache(maxsize=1024)(parse)
    try:
        yield
    finally:
        for module, parse in zip(modules, originals, strict=True):
            module.parse = parse


@contextlib.contextmanager
def cached_moto_module_list() -> Iterator[None]:
    """moto's server routes every request through ``backends.list_of_moto_modules()``, which
    lists moto's package directory and stats each of its ~150 entries, under the server's global
    lock. The installed package does not change while the emulator runs: list it once."""
    from moto import backends

    module: Any = backends
    original = module.list_of_moto_modules
    listed = tuple(original())
    module.list_of_moto_modules = lambda: listed
    try:
        yield
    finally:
        module.list_of_moto_modules = original


@contextlib.contextmanager
def serialized_dynamodb() -> Iterator[None]:
    """moto's DynamoDB is not safe under concurrent requests: ``transact_write_items`` deep-copies
    every table it touches (its rollback snapshot) while other requests insert into the same
    table's item dict (``RuntimeError: dictionary changed size during iteration`` -> HTTP 500),
    and its rollback would even drop writes that other requests made meanwhile; ``UpdateItem``,
    ``Query`` and ``Scan`` deep-copy live items that a concurrent update mutates. DynamoDB itself
    isolates every request (and every transaction), so for the emulator's lifetime each DynamoDB
    request runs alone: one lock around the handler's ``call_action`` (the whole operation,
    including the deep copies made outside the backend). DynamoDB calls take ~1 ms here."""
    from moto.dynamodb import responses

    handler_class: Any = responses.DynamoHandler
    original = handler_class.call_action
    lock = threading.RLock()

    def call_action(handler: Any) -> Any:
        with lock:
            return original(handler)

    handler_class.call_action = call_action
    try:
        yield
    finally:
        handler_class.call_action = original


# Component modules whose objects keep per-execution state (Map's run records and job pools,
# Parallel's worker pools): a program that contains them is parsed per execution, as moto does.
_STATEFUL_COMPONENT_MODULES = (".state_map.", ".state_parallel.")


def _components(root: Any) -> Iterator[Any]:
    """Every object reachable from a parsed program through attributes, lists, tuples, dicts."""
    from moto.stepfunctions.parser.asl.component.component import Component

    seen: set[int] = set()
    pending = [root]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, dict):
            pending.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            pending.extend(current)
        elif isinstance(current, Component):
            yield current
            pending.extend(vars(current).values())


def _shareable(program: Any) -> bool:
    """True when ``program`` may serve many executions, concurrently: no component holds
    per-execution state. Checked in moto 5.2.1 for what Task (Lambda), Pass, Choice, Fail and
    Succeed states build: their evaluation keeps everything in the execution's ``Environment``
    (stack, heap, states, frames); the components only hold the definition. Retry counters live in
    ``env.heap`` under the component's ``heap_key``, a uid each component draws lazily on first use
    -- two executions drawing it at once could each see a different key, so draw every key now,
    before the program is shared."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    for component in _components(program):
        if any(part in type(component).__module__ for part in _STATEFUL_COMPONENT_MODULES):
            return False
        if isinstance(component, EvalComponent):
            _ = component.heap_key
    return True


@contextlib.contextmanager
def cached_state_machine_programs() -> Iterator[None]:
    """moto's interpreter re-parses the definition with ANTLR for every execution (~40% of the
    emulator's CPU under load). A parsed program that holds no per-execution state
    (:func:`_shareable`) is kept by definition text for the emulator's lifetime and shared by
    every execution; any other program is parsed per execution, as moto does."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend import execution_worker

    worker_class: Any = execution_worker.ExecutionWorker
    original = worker_class._get_evaluation_entrypoint
    programs: dict[str, Any] = {}
    unshareable: set[str] = set()
    lock = threading.Lock()

    def entrypoint(worker: Any) -> Any:
        definition = worker._evaluation_details.state_machine_details.definition
        with lock:
            program = programs.get(definition)
            parse_each_time = definition in unshareable
        if program is not None:
            return program
        if parse_each_time:
            return original(worker)
        program = AmazonStateLanguageParser.parse(definition)[0]
        with lock:
            if not _shareable(program):
                unshareable.add(definition)
                return program  # this execution's own; later ones parse their own
            return programs.setdefault(definition, program)

    worker_class._get_evaluation_entrypoint = entrypoint
    try:
        yield
    finally:
        worker_class._get_evaluation_entrypoint = original


@contextlib.contextmanager
def cached_interpreter_clients() -> Iterator[None]:
    """The interpreter creates a new boto3 client for every Lambda task it runs (~15 ms of CPU
    and a new connection each); botocore clients are thread-safe, so one per service and region
    serves every task, with a connection pool large enough for many concurrent executions. Fault
    injection wraps ``BaseClient._make_api_call`` for every client, so it still applies (and
    still only to the tasks' own calls)."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    invoker: Any = lambda_eval_utils  # the module that calls boto_client_for per task
    original = invoker.boto_client_for
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if botocore_stubber.enabled:  # in-process mock_aws, not the server: moto's own way
            return original(region, service, state_credentials)
        with lock:
            found = clients.get((region, service))
            if found is None:
                found = boto3.session.Session().client(
                    service,
                    region_name=region,
                    endpoint_url=f"http://localhost:{moto_server_port()}",
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",  # noqa: S106 - dummy credentials for moto
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=MAX_CONCURRENT_TASKS,
                    ),
                )
                clients[(region, service)] = found
            return found

    invoker.boto_client_for = boto_client_for
    try:
        yield
    finally:
        invoker.boto_client_for = original


@contextlib.contextmanager
def stretched_task_timeouts(saturation: Saturation) -> Iterator[None]:
    """A Task state's ``TimeoutSeconds``, stretched while the emulator is saturated (see
    :mod:`local.saturation`): the interpreter reads it when the task starts. Unset (default)
    timeouts and the state machine's own ``TimeoutSeconds`` are left alone."""
    from moto.stepfunctions.parser.asl.component.common.timeouts import timeout as timeouts

    timeout_class: Any = timeouts.TimeoutSeconds
    original = timeout_class._eval_seconds

    def eval_seconds(timeout: Any, env: Any) -> int:
        seconds: int = original(timeout, env)
        if timeout.is_default_value():
            return seconds
        return math.ceil(seconds * saturation.factor())

    timeout_class._eval_seconds = eval_seconds
    try:
        yield
    finally:
        timeout_class._eval_seconds = original


def client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - dummy credentials for the emulator
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )


@dataclass
class Provisioned:
    """Physical names of what was created, by logical id."""

    buckets: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # logical id -> key ARN
    log_groups: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "local mode runs the handler in-process\n")
    return buffer.getvalue()


def create_keys(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    """KMS keys first: their ids are only known once created, and other resources refer to them."""
    kms = client("kms", endpoint)
    for logical_id, resource in resolver.resources_of("AWS::KMS::Key").items():
        props = resource.get("Properties", {})
        created = kms.create_key(
            Description=str(props.get("Description", f"{resolver.stack_name}/{logical_id}")),
            KeyUsage=str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
            KeySpec=str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
        )["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=created["KeyId"])
        resolver.register(logical_id, created["KeyId"], Arn=created["Arn"], KeyId=created["KeyId"])
        provisioned.keys[logical_id] = created["Arn"]
    for logical_id in resolver.resources_of("AWS::KMS::Alias"):
        props = resolver.resolve(resolver.properties(logical_id))
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])


def create_storage(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    s3 = client("s3", endpoint)
    for logical_id in resolver.resources_of("AWS::S3::Bucket"):
        props = resolver.resolve(resolver.properties(logical_id))
        name = resolver.physical_id(logical_id)
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            rules = [
                {
                    (
                        "ApplyServerSideEncryptionByDefault"
                        if k == "ServerSideEncryptionByDefault"
                        else k
                    ): v
                    for k, v in rule.items()
                    if k in ("ServerSideEncryptionByDefault", "BucketKeyEnabled")
                }
                for rule in encryption
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        provisioned.buckets[logical_id] = name

    dynamodb = client("dynamodb", endpoint)
    for table_type in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        for logical_id in resolver.resources_of(table_type):
            props = resolver.resolve(resolver.properties(logical_id))
            name = resolver.physical_id(logical_id)
            arguments: dict[str, Any] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            indexes = [
                {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
                for index in props.get("GlobalSecondaryIndexes", [])
            ]
            if indexes:
                arguments["GlobalSecondaryIndexes"] = indexes
            dynamodb.create_table(**arguments)
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                specification = {"Enabled": True, "AttributeName": ttl["AttributeName"]}
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=specification)
            provisioned.tables[logical_id] = name


def create_log_groups(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    logs = client("logs", endpoint)
    for logical_id in resolver.resources_of("AWS::Logs::LogGroup"):
        props = resolver.resolve(resolver.properties(logical_id))
        name = resolver.physical_id(logical_id)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(props["RetentionInDays"])
            )
        provisioned.log_groups[logical_id] = name


def create_functions(
    functions: list[FunctionSpec], endpoint: str, provisioned: Provisioned
) -> None:
    lambda_client = client("lambda", endpoint)
    iam = client("iam", endpoint)
    role_arn = iam.create_role(
        RoleName=f"local-lambda-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = _dummy_zip()
    for spec in functions:
        lambda_client.create_function(
            FunctionName=spec.name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": code},
            Timeout=spec.timeout_seconds,
            Environment={"Variables": spec.environment},
        )
        provisioned.functions[spec.logical_id] = spec.name


def create_state_machines(
    machines: list[StateMachineSpec], endpoint: str, provisioned: Provisioned
) -> None:
    sfn = client("stepfunctions", endpoint)
    for spec in machines:
        arguments: dict[str, Any] = {
            "name": spec.name,
            "definition": spec.definition,
            "roleArn": spec.role_arn,
            "type": spec.machine_type,
        }
        if spec.logging:
            arguments["loggingConfiguration"] = _lower_keys(spec.logging)
        created = sfn.create_state_machine(**arguments)
        if created["stateMachineArn"] != spec.arn:
            raise RuntimeError(f"state machine ARN {created['stateMachineArn']} != {spec.arn}")
        # moto records every machine as STANDARD; the template's type is what StartSync checks.
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        machine = stepfunctions_parser_backends[ACCOUNT_ID][REGION].describe_state_machine(spec.arn)
        machine.type = machine.sm_type = spec.machine_type
        provisioned.state_machines[spec.logical_id] = spec.arn


def _lower_keys(value: Any) -> Any:
    """CloudFormation's PascalCase logging configuration -> the API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


class SfnApiError(Exception):
    """An error the Step Functions API itself answers with (before any execution runs)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, str]:
        return {"__type": _SFN_ERROR_PREFIX + self.error_type, "message": self.message}


class SyncExecutor:
    """``StartSyncExecution`` for the emulated state machines, which moto lacks as an API.

    Runs moto's own ``SyncExecution`` in the calling thread against the same backend the endpoint
    serves; the execution then shows up in ``describe_execution`` / ``get_execution_history``.
    Keeps the per-machine execution list and moto's thread registry bounded.
    """

    def __init__(
        self,
        logging_configs: dict[str, dict[str, Any]] | None = None,
        saturation: Saturation | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._saturation = saturation or Saturation()
        self._logging_configs = logging_configs or {}
        self._log_streams: collections.deque[tuple[str, str]] = collections.deque()

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._saturation.execution():
            return self._start_sync_execution(request)

    def _start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        machine_arn = request.get("stateMachineArn")
        name = request.get("name") or str(uuid.uuid4())
        execution_input = request.get("input", "{}")
        if not isinstance(machine_arn, str) or not machine_arn:
            raise SfnApiError(400, "ValidationException", "stateMachineArn is required")
        if not isinstance(execution_input, str):
            raise SfnApiError(400, "SerializationException", "input must be a string")
        if len(execution_input.encode()) > STATE_PAYLOAD_LIMIT_BYTES:
            raise SfnApiError(
                400,
                "ValidationException",
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {STATE_PAYLOAD_LIMIT_BYTES}",
            )
        if not isinstance(name, str) or not 1 <= len(name) <= 80:
            raise SfnApiError(400, "InvalidName", f"Invalid Name: '{name}'")
        try:
            json.loads(execution_input)
        except ValueError as exc:
            raise SfnApiError(
                400, "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'"
            ) from None
        try:
            from moto.stepfunctions.parser.backend.execution import SyncExecution
        except ImportError:
            # moto's internal API moved: start + poll through the public one instead.
            return self._publish(self._run_polling(machine_arn, name, execution_input))
        return self._publish(self._run_sync(SyncExecution, machine_arn, name, execution_input))

    def _backend(self) -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[ACCOUNT_ID][REGION]

    def _machine(self, machine_arn: str) -> Any:
        try:
            machine = self._backend().describe_state_machine(machine_arn)
        except Exception:
            raise SfnApiError(
                400, "StateMachineDoesNotExist", f"State Machine Does Not Exist: '{machine_arn}'"
            ) from None
        if machine.type != "EXPRESS":
            raise SfnApiError(
                400, "StateMachineTypeNotSupported", "This operation is for EXPRESS machines"
            )
        return machine

    def _run_sync(
        self, execution_class: Any, machine_arn: str, name: str, execution_input: str
    ) -> tuple[Any, dict[str, Any]]:
        from moto.stepfunctions.parser.api import StateMachineType

        machine = self._machine(machine_arn)
        execution_arn = (
            f"arn:aws:states:{REGION}:{ACCOUNT_ID}:express:{machine.name}:{name}:{uuid.uuid4()}"
        )
        execution = execution_class(
            name=name,
            sm_type=StateMachineType.EXPRESS,
            role_arn=machine.roleArn,
            exec_arn=execution_arn,
            account_id=ACCOUNT_ID,
            region_name=REGION,
            state_machine=_snapshot(machine),
            start_date=datetime.datetime.now(tz=datetime.UTC),
            cloud_watch_logging_session=None,  # moto's session is broken: see _publish
            input_data=execution_input,
            activity_store={},
        )
        with self._lock:
            machine.executions.append(execution)
            if len(machine.executions) > MAX_EXECUTIONS_KEPT:
                del machine.executions[: len(machine.executions) - MAX_EXECUTIONS_KEPT]
        execution.start()
        self._reap_threads()
        output = dict(execution.to_start_sync_execution_output())
        status = output.get("status")
        output["status"] = getattr(status, "value", status)
        return execution, _aws_shape(output)

    def _run_polling(
        self, machine_arn: str, name: str, execution_input: str
    ) -> tuple[Any, dict[str, Any]]:
        self._machine(machine_arn)
        unique = f"{name}-{uuid.uuid4().hex[:8]}"[:80]
        execution = self._backend().start_execution(
            machine_arn, name=unique, execution_input=execution_input
        )
        deadline = time.monotonic() + POLL_DEADLINE_SECONDS
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.01)
        described = dict(execution.to_describe_output())
        status = described.get("status")
        described["status"] = getattr(status, "value", status)
        if described["status"] == "RUNNING":
            described["status"] = "TIMED_OUT"
        elif described["status"] not in ("SUCCEEDED", "FAILED", "TIMED_OUT"):
            described["status"] = "FAILED"
        return execution, _aws_shape(described)

    def _publish(self, run: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
        """Write the execution's events to the state machine's log group, as Express logs them."""
        execution, output = run
        config = self._logging_configs.get(str(output.get("stateMachineArn", "")))
        if config is not None:
            try:
                self._publish_history(execution, output, config)
            except Exception:  # logging must never fail an execution
                LOG.exception("could not write the execution log")
        return output

    def _publish_history(
        self, execution: Any, output: dict[str, Any], config: dict[str, Any]
    ) -> None:
        """One log event per history event, in the JSON that Step Functions writes for Express
        workflows (see :mod:`ops.history`), to a new stream named as AWS names them."""
        from moto.logs.models import logs_backends

        level = str(config["level"])
        execution_arn = str(output.get("executionArn", ""))
        fallback_ms = int(time.time() * 1000)
        lines: list[dict[str, Any]] = []
        for event in execution.to_history_output().get("events", []):
            event_type = str(getattr(event.get("type"), "value", event.get("type")))
            if not _logged_at(level, event_type):
                continue
            details = _flat_details(event)
            if not config["include_data"]:
                details = _without_data(details)
            timestamp_ms = _epoch_ms(event.get("timestamp"))
            if timestamp_ms is None:
                timestamp_ms = lines[-1]["timestamp"] if lines else fallback_ms
            lines.append(
                {
                    "timestamp": timestamp_ms,
                    "message": json.dumps(
                        {
                            "id": str(event.get("id")),
                            "type": event_type,
                            "details": details,
                            "previous_event_id": str(event.get("previousEventId", 0)),
                            "event_timestamp": str(timestamp_ms),
                            "execution_arn": execution_arn,
                            "redrive_count": "0",
                        },
                        default=str,
                    ),
                }
            )
        if not lines:
            return
        lines.sort(key=lambda line: int(line["timestamp"]))  # PutLogEvents wants time order
        backend = logs_backends[ACCOUNT_ID][REGION]
        group = config["group"]
        machine_name = str(output.get("stateMachineArn", "")).rsplit(":", 1)[-1]
        minute = datetime.datetime.fromtimestamp(lines[0]["timestamp"] / 1000, datetime.UTC)
        stream = f"states/{machine_name}/{minute:%Y-%m-%d-%H-%M}/{uuid.uuid4().hex[:8]}"
        with self._lock:
            backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, lines)
            self._log_streams.append((group, stream))
            while len(self._log_streams) > MAX_LOG_STREAMS_KEPT:
                backend.delete_log_stream(*self._log_streams.popleft())

    @staticmethod
    def _reap_threads() -> None:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        if len(TMP_THREADS) > 64:
            TMP_THREADS[:] = [t for t in list(TMP_THREADS) if t.is_alive()]


def _snapshot(machine: Any) -> Any:
    """The machine as this execution sees it (without the list of earlier executions)."""
    clone = copy.copy(machine)
    clone.executions = []
    return clone


def _logged_at(level: str, event_type: str) -> bool:
    if level == "ALL":
        return True
    if level == "FATAL":
        return event_type in _EXECUTION_FAILURES
    return level == "ERROR" and event_type.endswith(("Failed", "TimedOut", "Aborted"))


def _flat_details(event: dict[str, Any]) -> dict[str, Any]:
    """The content of the event's ``*EventDetails`` object, which is what Express logs put in
    ``details`` (GetExecutionHistory wraps it: ``{"stateEnteredEventDetails": {...}}``)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return dict(value)
    return {}


def _epoch_ms(value: object) -> int | None:
    """A history event time (moto hands ISO 8601 strings, boto3 datetimes) -> epoch ms."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)  # epoch seconds, as the service's JSON protocol writes dates
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _without_data(details: dict[str, Any]) -> dict[str, Any]:
    """Drop inputs, outputs and parameters (includeExecutionData off: the file stays out)."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if key in ("input", "output", "parameters"):
            continue
        cleaned[key] = _without_data(value) if isinstance(value, dict) else value
    return cleaned


def _aws_shape(output: dict[str, Any]) -> dict[str, Any]:
    """Dates as epoch seconds, like the service's JSON protocol; plus billing details."""
    shaped: dict[str, Any] = {}
    for key, value in output.items():
        if isinstance(value, datetime.datetime):
            shaped[key] = value.timestamp()
        elif value is not None:
            shaped[key] = value
    if "startDate" in shaped and "stopDate" in shaped:
        duration_ms = int((shaped["stopDate"] - shaped["startDate"]) * 1000)
        shaped["billingDetails"] = {
            "billedMemoryUsedInMB": 64,
            "billedDurationInMilliseconds": max(100, -(-duration_ms // 100) * 100),
        }
    return shaped
