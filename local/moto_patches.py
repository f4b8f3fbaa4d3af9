"""moto, set up and patched for the emulator's lifetime: speed and thread-safety fixes.

:func:`configure_moto` sets moto's options; each context manager replaces one moto function or
method and restores it on exit. :class:`local.emulator.Emulator` applies them all before it
serves requests.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import functools
import hashlib
import importlib
import io
import itertools
import logging
import math
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

import boto3
from botocore.config import Config

from local.saturation import Saturation

if TYPE_CHECKING:
    from moto.s3.models import FakeKey, FakeMultipart

# Connections the interpreter's shared Lambda client keeps open (one per concurrent task).
MAX_CONCURRENT_TASKS = 64

# S3 objects and parts up to this size stay in memory (in_memory_s3_keys).
IN_MEMORY_KEY_BYTES = 512 * 1024 * 1024

# (upload id, part number, the part's ETag) -> the part's SHA-256 digest, or None when unknown:
# local.s3_checks.PartDigests.get.
KnownDigest = Callable[[str, int, str], bytes | None]


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


@contextlib.contextmanager
def lean_update_expressions() -> Iterator[None]:
    """moto spends about 10 ms of CPU on each update expression of the ledger's (a dozen
    actions), and local mode runs in one interpreter, so this caps its throughput. Three of its
    costs change no outcome:
    - it parses the same expression text again on every call, though it never changes a parsed
      tree (each validation deep-copies it first): parse each text once;
    - each validation pass rebuilds its table of node types at every node: build it once a pass;
    - the action-count and overlapping-path checks run at every nested ``UpdateExpression``
      node, each collecting every clause below it (quadratic in the actions): run them at the
      root only, which sees every clause and raises the same errors."""
    # Typed as Any: these modules export the names below only implicitly.
    validators: Any = importlib.import_module("moto.dynamodb.parsing.validators")
    parser: Any = importlib.import_module(
        "moto.dynamodb.parsing.expressions"
    ).UpdateExpressionParser
    traverser: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes").DepthFirstTraverser
    checks = [
        (validators.ActionCountValidator, "verify_action_counts"),
        (validators.OverlappingPathsValidator, "check_for_overlapping_paths"),
    ]
    parsed: dict[str, Any] = {}
    make = parser.make

    def make_once(_: type, expression: str) -> Any:
        tree = parsed.get(expression)
        if tree is None:
            tree = parsed[expression] = make(expression)
        return tree

    def processing_map(traverser: Any) -> dict[type, Any]:
        table = traverser.__dict__.get("_processing_table")
        if table is None:
            table = traverser.__dict__["_processing_table"] = traverser._processing_map()
        return cast("dict[type, Any]", table)

    def nodes_to_be_processed(traverser: Any) -> tuple[type, ...]:
        types = traverser.__dict__.get("_processing_types")
        if types is None:
            types = traverser.__dict__["_processing_types"] = tuple(processing_map(traverser))
        return cast("tuple[type, ...]", types)

    def copy_tree(tree: Any) -> Any:
        # A parsed tree holds plain objects only: a pickle round trip copies it several times
        # faster than deepcopy's per-object bookkeeping. The bytes never leave this line.
        return pickle.loads(pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))  # noqa: S301

    def process(traverser: Any, node: Any) -> Any:
        for node_type, processor in processing_map(traverser).items():
            if isinstance(node, node_type):
                return processor(node)
        return None

    def at_the_root(check: Any) -> Any:
        return lambda validator, node: node if node.parent is not None else check(validator, node)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(parser, "make", classmethod(make_once)))
        patches.enter_context(
            mock.patch.object(traverser, "nodes_to_be_processed", nodes_to_be_processed)
        )
        patches.enter_context(mock.patch.object(traverser, "process", process))
        patches.enter_context(mock.patch.object(validators, "deepcopy", copy_tree))
        for owner, name in checks:
            patches.enter_context(mock.patch.object(owner, name, at_the_root(getattr(owner, name))))
        yield


@contextlib.contextmanager
def item_level_transactions() -> Iterator[None]:
    """moto's ``transact_write_items`` deep-copies every table it touches before it starts (its
    rollback snapshot): a transaction's cost grows with the table, and the ledger and metadata
    tables grow with every upload -- after a few thousand uploads a transaction outlives the
    tasks' SDK deadline. A rollback only needs the items the transaction touches: snapshot those,
    let moto's table copy be the table itself, and restore the items if the transaction fails.
    Runs inside :func:`serialized_dynamodb`'s lock, so nothing else changes the tables
    meanwhile."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    backend_class: Any = DynamoDBBackend
    table_class: Any = Table
    original = backend_class.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshots = _touched_items(backend, transact_items)
        table_class.__deepcopy__ = lambda table, memo: table
        try:
            original(backend, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(snapshots):
                if attributes is None:
                    if backend.get_item(table_name, key) is not None:
                        backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, attributes)
            raise
        finally:
            del table_class.__deepcopy__

    backend_class.transact_write_items = transact_write_items
    try:
        yield
    finally:
        backend_class.transact_write_items = original


def _touched_items(
    backend: Any, transact_items: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key, the item's attributes before the transaction or None) for each operation
    on a table that exists (moto reports the others itself)."""
    snapshots: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for operation in transact_items:
        _, parameters = next(iter(operation.items()))
        table_name = parameters.get("TableName")
        if table_name not in backend.tables:
            continue
        table = backend.tables[table_name]
        key = parameters.get("Key")
        if key is None:  # a Put: the key is in the item
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n is not None]
            key = {name: parameters["Item"][name] for name in names if name in parameters["Item"]}
        current = backend.get_item(table_name, key)
        attributes = copy.deepcopy(current.to_json()["Attributes"]) if current else None
        snapshots.append((table_name, key, attributes))
    return snapshots


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


@contextlib.contextmanager
def in_memory_s3_keys(max_bytes: int = IN_MEMORY_KEY_BYTES) -> Iterator[None]:
    """moto holds each object's and part's bytes in a SpooledTemporaryFile that moves to a
    temporary file past ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE`` (5 MiB by default), so every large
    part is written to disk, and read back to complete its upload. Keep keys up to ``max_bytes``
    in memory instead. Memory holds each stored byte once: moto drops an upload's parts when it
    completes, and with :func:`lean_multipart_completion` the new object takes over their bytes
    (a few GiB of objects are a few GiB of the emulator's memory; delete what is not needed)."""
    from moto.s3 import models

    def buffer_size() -> int:
        return max_bytes

    with mock.patch.object(models, "get_s3_default_key_buffer_size", buffer_size):
        yield


@contextlib.contextmanager
def lean_multipart_completion(known_digest: KnownDigest | None = None) -> Iterator[None]:
    """moto completes a multipart upload by reading every part twice (its bytes and its
    checksum), joining them into one bytes object and writing that into the new key's buffer:
    seconds for 256 MiB, where S3 takes about the same time whatever the size. An upload with
    SHA-256 COMPOSITE checksums (the service's) is completed from what is known already: the
    checksum from the parts' digests (``known_digest``; only the parts it does not know are
    hashed), the new key's value from the parts' bytes themselves, shared rather than copied
    (:class:`_JoinedBytes`; if a part was on disk, all are written into the key's buffer once).
    The answer and the object are moto's: the same ETag, checksum, bytes and errors. Other
    uploads complete as moto completes them."""
    from moto.s3.models import FakeKey, FakeMultipart

    key_class: Any = FakeKey
    original_complete = FakeMultipart.complete
    value = key_class.value  # the property: moto's getter and setter

    def complete(multipart: FakeMultipart, body: Iterator[tuple[int, str]]) -> Any:
        if not _sha256_composite(multipart):
            return original_complete(multipart, body)
        parts = _completed_parts(multipart, body)
        # Taken now: moto disposes of the parts (closes their buffers) before it makes the key.
        completed = _CompletedParts([part for _, part in parts])
        md5s = b"".join(bytes.fromhex(_unquoted(part.etag)) for _, part in parts)
        digests = b"".join(
            _sha256(multipart.id, number, part.etag, chunk, known_digest)
            for (number, part), chunk in zip(parts, completed.chunks, strict=True)
        )
        etag = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"
        checksum = base64.b64encode(hashlib.sha256(digests).digest()).decode()
        return completed, etag, ("COMPOSITE", checksum, len(parts))

    def set_value(key: Any, new_value: Any) -> None:
        if isinstance(key._value_buffer, _JoinedBytes):
            # moto sets a value only on a new key; a shared one is not written to, but replaced
            # (the key owns the new buffer: moto closes it when the key goes)
            key._value_buffer = tempfile.SpooledTemporaryFile(key._max_buffer_size)  # noqa: SIM115
        if isinstance(new_value, _CompletedParts):
            new_value.write_into(key)
        else:
            value.fset(key, new_value)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(FakeMultipart, "complete", complete))
        patches.enter_context(mock.patch.object(key_class, "value", value.setter(set_value)))
        yield


def _sha256_composite(multipart: FakeMultipart) -> bool:
    """True when moto completes the upload with a SHA-256 COMPOSITE checksum (the defaults of
    ``moto.s3.models.MultipartChecksumBuilder``)."""
    algorithm = multipart.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    kind = multipart.metadata.get("x-amz-checksum-type") or (
        "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    )
    return bool(algorithm == "SHA256" and kind == "COMPOSITE")


def _completed_parts(
    multipart: FakeMultipart, body: Iterator[tuple[int, str]]
) -> list[tuple[int, FakeKey]]:
    """(number, part) for each part ``body`` names, checked as ``FakeMultipart.complete`` checks
    them: the same errors, in the same order."""
    # Typed as Any: the module exports these names only implicitly (and tests may patch the size).
    models: Any = importlib.import_module("moto.s3.models")

    parts: list[tuple[int, FakeKey]] = []
    for number, etag in body:
        part = multipart.parts.get(number)
        if part is None or _unquoted(part.etag) != etag.replace('"', ""):
            raise models.InvalidPart
        if parts and parts[-1][1].contentsize < models.S3_UPLOAD_PART_MIN_SIZE:
            raise models.EntityTooSmall
        parts.append((number, part))
    if not parts:
        raise models.MalformedXML
    return parts


def _sha256(
    upload_id: str, number: int, etag: str, chunk: bytes, known_digest: KnownDigest | None
) -> bytes:
    digest = None if known_digest is None else known_digest(upload_id, number, etag)
    return digest if digest is not None else hashlib.sha256(chunk).digest()


def _unquoted(etag: str) -> str:
    return etag.replace('"', "")


def _shared_bytes(part: FakeKey) -> bytes | None:
    """A part's bytes without a copy when moto holds them in memory, else None. A
    SpooledTemporaryFile not rolled over to disk keeps them in a BytesIO, whose ``getvalue``
    hands out its buffer itself as an immutable bytes object (a later write would copy first)."""
    held = getattr(part._value_buffer, "_file", None)
    return held.getvalue() if isinstance(held, io.BytesIO) else None


class _CompletedParts:
    """What the patched ``FakeMultipart.complete`` hands moto as the completed object's value:
    its parts' bytes, in order (``shared`` when none had to be copied, all being in memory).
    moto passes it on untouched to the new key's ``value`` setter."""

    def __init__(self, parts: list[FakeKey]) -> None:
        found = [_shared_bytes(part) for part in parts]
        self.shared = all(chunk is not None for chunk in found)
        self.chunks = [
            part.value if chunk is None else chunk for part, chunk in zip(parts, found, strict=True)
        ]

    def write_into(self, key: Any) -> None:
        """Make the parts' bytes ``key``'s value: shared when they were in memory, else written
        into its own buffer (which moves to disk past its size, as moto's does)."""
        buffer = key._value_buffer
        if self.shared:
            buffer.close()
            key._value_buffer = _JoinedBytes(self.chunks)
        else:
            buffer.seek(0)
            buffer.truncate()
            for chunk in self.chunks:
                buffer.write(chunk)
        key.contentsize = sum(map(len, self.chunks))


class _JoinedBytes(io.BufferedIOBase):
    """A read-only file over byte strings one after another, copied only as far as it is read:
    a completed upload's value over its parts' bytes. moto reads a key's buffer with seek, tell
    and read (under the key's lock), and closes it when the key goes."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = [chunk for chunk in chunks if chunk]
        self._starts = list(itertools.accumulate(map(len, self._chunks), initial=0))
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check_open()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._starts[-1]}
        if whence not in base:
            raise ValueError(f"invalid whence ({whence})")
        if base[whence] + offset < 0:
            raise ValueError(f"negative seek value {base[whence] + offset}")
        self._position = base[whence] + offset
        return self._position

    def read(self, size: int | None = -1, /) -> bytes:
        self._check_open()
        start, length = self._position, self._starts[-1]
        end = length if size is None or size < 0 else min(length, start + size)
        self._position = max(start, end)
        return self._slice(start, end)

    def close(self) -> None:
        self._chunks, self._starts = [], [0]
        super().close()

    def _slice(self, start: int, end: int) -> bytes:
        pieces: list[bytes | memoryview] = []
        index = bisect.bisect_right(self._starts, start) - 1
        while start < end:
            chunk, offset = self._chunks[index], start - self._starts[index]
            take = min(len(chunk) - offset, end - start)
            whole = offset == 0 and take == len(chunk)
            pieces.append(chunk if whole else memoryview(chunk)[offset : offset + take])
            start += take
            index += 1
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]  # a whole part: its bytes themselves, as immutable as a copy
        return b"".join(pieces)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")


@contextlib.contextmanager
def ranged_object_reads() -> Iterator[None]:
    """moto answers a GetObject with a Range header by reading the whole object, then slicing it
    (``S3Response._handle_range_header``): 4 KiB of a 256 MiB object cost the 256 MiB. While
    moto's ``get_object`` makes such an answer, the key it reads is a :class:`_RangedKey`, whose
    value is read only as far as moto slices it; an answer that keeps the whole value (a range
    moto ignores) gets it whole. The status, headers and body are moto's."""
    from moto.s3.responses import S3Response

    response_class: Any = S3Response
    original_get_object = response_class.get_object
    original_key_response = response_class.key_response

    def get_object(response: Any) -> Any:
        if not response.headers.get("range"):
            return original_get_object(response)
        get_key = response._get_key

        def ranged_key(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
            key, not_modified = get_key(*args, **kwargs)
            return _RangedKey(key), not_modified

        with mock.patch.object(response, "_get_key", ranged_key):
            return original_get_object(response)

    def key_response(response: Any, *args: Any, **kwargs: Any) -> Any:
        status, headers, body = original_key_response(response, *args, **kwargs)
        return status, headers, bytes(body) if isinstance(body, _KeyBytes) else body

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(response_class, "get_object", get_object))
        patches.enter_context(mock.patch.object(response_class, "key_response", key_response))
        yield


class _RangedKey:
    """A FakeKey as moto's ``get_object`` sees it while it answers a Range: the key itself, but
    for its ``value``."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> _KeyBytes:
        return _KeyBytes(self._key)


class _KeyBytes:
    """A key's value that reads from the key's buffer only the slice taken (moto takes its
    ``len`` and one slice); ``bytes()`` reads it whole, as ``FakeKey.value`` does."""

    def __init__(self, key: Any) -> None:
        self._key = key
        self._size: int = key.size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: slice) -> bytes:
        start, stop, step = index.indices(self._size)
        if step != 1:
            return bytes(self)[index]
        with self._key.lock:
            buffer = self._key._value_buffer
            buffer.seek(start)
            data: bytes = buffer.read(max(0, stop - start))
        return data

    def __bytes__(self) -> bytes:
        data: bytes = self._key.value
        return data
