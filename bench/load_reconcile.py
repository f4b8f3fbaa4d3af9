"""Load with nothing lost: concurrent clients against local mode, then a full reconciliation.

    .venv/bin/python bench/load_reconcile.py [--clients 16] [--uploads 500] [--seed 1]
    .venv/bin/python bench/load_reconcile.py --url http://127.0.0.1:3000/upload \\
        --aws-url http://127.0.0.1:5000

Without ``--url`` the emulator is started in-process on free ports; with ``--url``/``--aws-url``
a running ``python -m local`` is driven (bucket and table names are read from the emulated
functions' environment). ``--clients`` threads, each with its own HTTP session, send ``--uploads``
requests in total: valid uploads, invalid bodies, re-uploads of the same key, and requests that
repeat an ``Idempotency-Key`` (same body, then a different body). Whether the service honours
idempotency keys is probed first (a repeated key with the same body returns the same
``versionId``); the reconciliation then expects replays and 409s, or independent uploads.

Reconciliation (:func:`reconcile`), the one code path shared with ``tests/e2e/test_load.py``:
every response has a CONTRACT.md status and body shape; no 5xx (no faults are injected); every
200 is in S3 (that version, those bytes, KMS-encrypted) and in DynamoDB (the item points at the
newest 200 of its product, with its sha256, size and exact price); nothing else exists under the
run's product-id prefix: no extra version, no delete marker, no extra item. Prints throughput and
latency percentiles; exits 1 when anything does not reconcile.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import queue
import random
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REGION: Final = "us-east-1"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
SUCCESS_MESSAGE: Final = "File uploaded successfully"

# CONTRACT.md, "Responses": the 200 body's keys and the error code each status carries.
SUCCESS_FIELDS: Final = frozenset(
    {
        "message",
        "requestId",
        "productId",
        "productName",
        "price",
        "fileName",
        "contentType",
        "size",
        "sha256",
        "s3Key",
        "versionId",
        "timestamp",
    }
)
ERROR_CODE_BY_STATUS: Final = {
    400: "ValidationError",
    403: "Forbidden",
    409: "IdempotencyConflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
CONTRACT_STATUSES: Final = frozenset({200, *ERROR_CODE_BY_STATUS})
# What a response must never contain (CONTRACT.md: no stack trace, SDK text, cause, ARN).
LEAK_MARKERS: Final = ("Traceback", 'File "', "arn:aws", "botocore", "Injected fault")
_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


# --- the contract's response shape ------------------------------------------------------------


def contract_problems(response: requests.Response, *, replay: bool = False) -> list[str]:
    """Everything about one response that CONTRACT.md does not allow (empty: conforms).

    ``replay``: the response repeats an earlier request's result (same Idempotency-Key and body),
    whose ``requestId`` may be the first request's rather than this one's.
    """
    status = response.status_code
    problems: list[str] = []
    if status not in CONTRACT_STATUSES:
        problems.append(f"status {status} is not a contract status")
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        problems.append(f"Content-Type is {response.headers.get('Content-Type')!r}")
    problems.extend(f"leaks {marker!r}" for marker in LEAK_MARKERS if marker in response.text)
    try:
        body = response.json()
    except ValueError:
        return [*problems, "body is not JSON"]
    if not isinstance(body, dict):
        return [*problems, "body is not a JSON object"]
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id:
        problems.append("requestId missing")
    elif not replay and response.headers.get("x-amzn-RequestId", request_id) != request_id:
        problems.append("requestId differs from the x-amzn-RequestId header")
    if status == 200:
        problems.extend(_success_problems(body))
    else:
        problems.extend(_error_problems(status, body))
    return problems


def _success_problems(body: dict[str, Any]) -> list[str]:
    if set(body) != SUCCESS_FIELDS:
        return [f"200 body keys {sorted(body)} != {sorted(SUCCESS_FIELDS)}"]
    problems = []
    if body["message"] != SUCCESS_MESSAGE:
        problems.append(f"message {body['message']!r}")
    for name in ("productId", "productName", "fileName", "contentType", "s3Key", "versionId"):
        if not isinstance(body[name], str) or not body[name]:
            problems.append(f"{name} is not a non-empty string")
    price = body["price"]
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
        problems.append(f"price {price!r} is not a finite JSON number")
    size = body["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        problems.append(f"size {size!r}")
    if not isinstance(body["sha256"], str) or not _SHA256_RE.match(body["sha256"]):
        problems.append(f"sha256 {body['sha256']!r}")
    if body["s3Key"] != f"uploads/{body['productId']}/{body['fileName']}":
        problems.append(f"s3Key {body['s3Key']!r} is not uploads/<productId>/<fileName>")
    if not isinstance(body["timestamp"], str) or not _TIMESTAMP_RE.match(body["timestamp"]):
        problems.append(f"timestamp {body['timestamp']!r}")
    return problems


def _error_problems(status: int, body: dict[str, Any]) -> list[str]:
    if set(body) != {"error", "requestId"}:
        return [f"error body keys {sorted(body)} != ['error', 'requestId']"]
    error = body["error"]
    allowed = {"code", "message", "details"}
    if not isinstance(error, dict) or not {"code", "message"} <= set(error) <= allowed:
        return [f"error object {error!r} is not {{code, message[, details]}}"]
    problems = []
    expected = ERROR_CODE_BY_STATUS.get(status)
    if error["code"] != expected:
        problems.append(f"status {status} carries code {error['code']!r}, not {expected!r}")
    if not isinstance(error["message"], str) or not error["message"]:
        problems.append("error.message is not a non-empty string")
    details = error.get("details")
    if "details" in error and (
        not isinstance(details, list)
        or not all(
            isinstance(d, dict)
            and set(d) == {"field", "message"}
            and all(isinstance(v, str) for v in d.values())
            for d in details
        )
    ):
        problems.append(f"details {details!r} is not a list of {{field, message}}")
    return problems


def echo_problems(sent: dict[str, Any], data: bytes, body: dict[str, Any]) -> list[str]:
    """A 200 body against the request that produced it."""
    problems = []
    for name in ("productId", "productName", "price", "fileName", "contentType"):
        # An optional field sent as null counts as absent: the service fills in its default.
        if sent.get(name) is not None and body.get(name) != sent[name]:
            problems.append(f"{name} {body.get(name)!r} != sent {sent[name]!r}")
    if body.get("size") != len(data):
        problems.append(f"size {body.get('size')!r} != {len(data)}")
    if body.get("sha256") != hashlib.sha256(data).hexdigest():
        problems.append("sha256 is not the hash of the sent bytes")
    return problems


def exact_price(sent_price: Any) -> Decimal:
    """The number as the client wrote it in JSON (what DynamoDB must hold)."""
    return Decimal(json.dumps(sent_price))


# --- targets and stored state ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    api_url: str
    aws_endpoint: str
    bucket: str
    table: str

    @classmethod
    def from_emulator(cls, emulator: Any) -> Target:
        return cls(
            emulator.api_url, emulator.aws_endpoint, emulator.bucket_name, emulator.table_name
        )

    @classmethod
    def discover(cls, api_url: str, aws_endpoint: str) -> Target:
        """Bucket and table from the emulated functions' environment (a running local mode)."""
        bucket = table = None
        for function in aws_client("lambda", aws_endpoint).list_functions()["Functions"]:
            variables = function.get("Environment", {}).get("Variables", {})
            bucket = bucket or variables.get("UPLOAD_BUCKET_NAME")
            table = table or variables.get("METADATA_TABLE_NAME")
        if not bucket or not table:
            raise SystemExit(f"could not find the upload bucket and table at {aws_endpoint}")
        return cls(api_url, aws_endpoint, bucket, table)


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - local mode accepts any credentials
    )


def metadata_table(target: Target) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=target.aws_endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - local mode accepts any credentials
    ).Table(target.table)


def stored_versions(target: Target, prefix: str) -> list[dict[str, Any]]:
    """Every object version and delete marker under ``prefix`` (delete markers flagged)."""
    s3 = aws_client("s3", target.aws_endpoint)
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=target.bucket, Prefix=prefix
    ):
        found.extend(page.get("Versions", []))
        found.extend({**m, "DeleteMarker": True} for m in page.get("DeleteMarkers", []))
    return found


def stored_items(target: Target, product_prefix: str = "") -> list[dict[str, Any]]:
    """Every metadata item whose productId starts with ``product_prefix``."""
    from boto3.dynamodb.conditions import Attr

    table = metadata_table(target)
    arguments: dict[str, Any] = {}
    if product_prefix:
        arguments["FilterExpression"] = Attr("productId").begins_with(product_prefix)
    items: list[dict[str, Any]] = []
    while True:
        page = table.scan(**arguments)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the load -------------------------------------------------------------------------------


@dataclass
class Step:
    """One request: a JSON body (or raw bytes), an optional Idempotency-Key, what to expect."""

    kind: str  # valid | reupload | invalid | replay | conflict
    product_id: str
    body: dict[str, Any] | None
    data: bytes = b""
    raw: bytes | None = None
    idempotency_key: str | None = None
    first: int | None = None  # index (in its scenario) of the request whose key this one repeats
    # filled in by the run
    status: int = 0
    response: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Report:
    steps: list[Step]
    idempotency: bool
    clients: int
    seconds: float
    problems: list[str]

    @property
    def statuses(self) -> Counter[int]:
        return Counter(step.status for step in self.steps)

    @property
    def throughput(self) -> float:
        return len(self.steps) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        return percentile([s.seconds * 1000 for s in self.steps], fraction)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


_PRICES: Final = (0, 1, 99.99, 12.34, 0.01, 1e-05, 123456789.5, 999999999999.99, 42)
_NAMES: Final = ("Widget", "Gadget ✓", "Ünïcode 名前", "Plain", "Emoji 📦")
_INVALID: Final[tuple[Callable[[dict[str, Any]], None], ...]] = (
    lambda b: b.pop("price"),
    lambda b: b.update(price="12.34"),
    lambda b: b.update(price=True),
    lambda b: b.update(price=-0.5),
    lambda b: b.update(owner="me"),
    lambda b: b.update(fileContent="not base64!!"),
    lambda b: b.update(fileContent=""),
    lambda b: b.update(fileName=".."),
    lambda b: b.update(productName="a\u0007b"),
    lambda b: b.update(productName="n" * 257),
)


class Plan:
    """Scenarios: each a sequence of steps on one product, run in order by one client."""

    def __init__(self, run_id: str, seed: int) -> None:
        self.run_id = run_id
        self.random = random.Random(seed)  # noqa: S311 - test data, not security
        self._count = 0

    def product_id(self) -> str:
        self._count += 1
        return f"{self.run_id}-{self._count:05d}"

    def upload(self, product_id: str, kind: str = "valid", **fields: Any) -> Step:
        data = self.random.randbytes(self.random.randint(1, 4096))
        body: dict[str, Any] = {
            "productId": product_id,
            # One name per product: the item's key is (productId, productName).
            "productName": _NAMES[sum(product_id.encode()) % len(_NAMES)],
            "price": self.random.choice(_PRICES),
            "fileName": f"file-{self.random.randint(0, 3)}.bin",
            "fileContent": base64.b64encode(data).decode(),
        }
        if self.random.random() < 0.5:
            body["contentType"] = "application/octet-stream"
        body.update(fields)
        return Step(kind, product_id, body, data)

    def keyed_pair(self, product: str, kind: str) -> list[Step]:
        """Two requests with one Idempotency-Key: the same body (replay) or another (conflict)."""
        first = self.upload(product)
        first.idempotency_key = uuid.uuid4().hex
        if kind == "replay":
            second = Step("replay", product, dict(first.body or {}), first.data)
        else:
            second = self.upload(product, "conflict", fileName=(first.body or {})["fileName"])
        second.idempotency_key, second.first = first.idempotency_key, 0
        return [first, second]

    def scenario(self) -> list[Step]:
        roll = self.random.random()
        product = self.product_id()
        if roll < 0.5:
            return [self.upload(product)]
        if roll < 0.72:
            if self.random.random() < 0.1:
                return [Step("invalid", product, None, raw=b'{"productId": "' + product.encode())]
            step = self.upload(product, "invalid")
            self.random.choice(_INVALID)(step.body or {})
            return [step]
        if roll < 0.86:
            return self.keyed_pair(product, "replay")
        if roll < 0.93:
            return self.keyed_pair(product, "conflict")
        first = self.upload(product, fileName="same.bin")
        return [first, self.upload(product, "reupload", fileName="same.bin")]

    def scenarios(self, uploads: int) -> list[list[Step]]:
        planned: list[list[Step]] = []
        total = 0
        while total < uploads:
            scenario = self.scenario()[: uploads - total]
            planned.append(scenario)
            total += len(scenario)
        return planned


def send(session: requests.Session, target: Target, step: Step) -> None:
    headers = {"Content-Type": "application/json"}
    if step.idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = step.idempotency_key
    payload = step.raw if step.raw is not None else json.dumps(step.body).encode()
    started = time.perf_counter()
    response = session.post(target.api_url, data=payload, headers=headers, timeout=60)
    step.seconds = time.perf_counter() - started
    step.status = response.status_code
    step.problems = contract_problems(response, replay=step.kind == "replay")
    if step.status >= 500:
        step.problems.append(f"5xx body: {response.text[:300]}")
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    step.response = parsed if isinstance(parsed, dict) else None


def probe_idempotency(target: Target, plan: Plan) -> tuple[bool, list[Step]]:
    """Send one body twice with one Idempotency-Key: the same versionId back means support."""
    pair = plan.keyed_pair(plan.product_id(), "replay")
    with requests.Session() as session:
        for step in pair:
            send(session, target, step)
    first, again = (step.response or {} for step in pair)
    supported = pair[0].status == pair[1].status == 200 and first.get("versionId") == again.get(
        "versionId"
    )
    return supported, pair


def run_load(
    target: Target, *, clients: int, uploads: int, seed: int = 1, run_id: str | None = None
) -> Report:
    """Drive ``uploads`` requests (plus a two-request probe) from ``clients`` threads, then
    reconcile."""
    plan = Plan(run_id or f"LOAD{uuid.uuid4().hex[:10]}", seed)
    supported, probe = probe_idempotency(target, plan)
    scenarios = plan.scenarios(uploads)
    work: queue.SimpleQueue[list[Step]] = queue.SimpleQueue()
    for scenario in scenarios:
        work.put(scenario)

    def client() -> None:
        with requests.Session() as session:
            while True:
                try:
                    scenario = work.get_nowait()
                except queue.Empty:
                    return
                for step in scenario:
                    send(session, target, step)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    seconds = time.perf_counter() - started
    steps = [step for scenario in scenarios for step in scenario]
    problems = reconcile(target, plan.run_id, [probe, *scenarios], idempotency=supported)
    return Report(steps, supported, clients, seconds, problems)


# --- reconciliation -------------------------------------------------------------------------


def expected_statuses(step: Step, first: Step | None, *, idempotency: bool) -> set[int]:
    if step.kind == "invalid":
        return {400}
    if step.kind == "conflict" and idempotency and first is not None and first.status == 200:
        return {409}
    return {200}


def reconcile(
    target: Target, run_id: str, scenarios: Iterable[list[Step]], *, idempotency: bool
) -> list[str]:
    """Every response against the contract, then S3 and DynamoDB against the 200s; [] = all
    good. Each scenario's steps ran in order, and products never span scenarios."""
    problems: list[str] = []
    versions: dict[str, tuple[Step, dict[str, Any]]] = {}  # versionId -> the 200 that made it
    newest: dict[str, tuple[Step, dict[str, Any]]] = {}  # productId -> its last 200
    for scenario in scenarios:
        for index, step in enumerate(scenario):
            where = f"{step.product_id} step {index} ({step.kind}, {step.status})"
            problems.extend(f"{where}: {p}" for p in step.problems)
            first = scenario[step.first] if step.first is not None else None
            if step.status >= 500:
                problems.append(f"{where}: 5xx without an injected fault")
            allowed = expected_statuses(step, first, idempotency=idempotency)
            if step.status not in allowed:
                problems.append(f"{where}: expected {sorted(allowed)}")
            if step.status != 200 or step.response is None or step.body is None:
                continue
            body = step.response
            problems.extend(f"{where}: {p}" for p in echo_problems(step.body, step.data, body))
            version_id = str(body.get("versionId"))
            first_version = (first.response or {}).get("versionId") if first else None
            replayed = step.kind == "replay" and first_version == version_id
            first_stored = first is not None and first.status == 200
            if step.kind == "replay" and idempotency and first_stored and not replayed:
                problems.append(f"{where}: the replay returned a new versionId")
            if version_id in versions and not (idempotency and replayed):
                problems.append(f"{where}: versionId {version_id} reported twice")
            versions[version_id] = (step, body)
            newest[step.product_id] = (step, body)
    problems.extend(_reconcile_s3(target, run_id, versions))
    problems.extend(_reconcile_dynamodb(target, run_id, newest))
    return problems


def _reconcile_s3(
    target: Target, run_id: str, expected: dict[str, tuple[Step, dict[str, Any]]]
) -> list[str]:
    problems: list[str] = []
    by_id: dict[str, dict[str, Any]] = {}
    for version in stored_versions(target, f"uploads/{run_id}"):
        if version.get("DeleteMarker"):
            problems.append(f"S3: delete marker on {version['Key']}")
        elif version["VersionId"] in by_id:
            problems.append(f"S3: version {version['VersionId']} listed twice")
        else:
            by_id[version["VersionId"]] = version
    for version_id in sorted(set(by_id) - set(expected)):
        problems.append(f"S3: {by_id[version_id]['Key']} version {version_id} was never a 200")
    for version_id in sorted(set(expected) - set(by_id)):
        key = expected[version_id][1]["s3Key"]
        problems.append(f"S3: {key} version {version_id} of a 200 is missing")

    s3 = aws_client("s3", target.aws_endpoint)

    def check(version_id: str) -> list[str]:
        step, body = expected[version_id]
        key = body["s3Key"]
        if by_id[version_id]["Key"] != key:
            return [f"S3: version {version_id} is under {by_id[version_id]['Key']}, not {key}"]
        got = s3.get_object(Bucket=target.bucket, Key=key, VersionId=version_id)
        data = got["Body"].read()
        wrong = []
        if hashlib.sha256(data).hexdigest() != body["sha256"] or len(data) != body["size"]:
            wrong.append(f"S3: {key} {version_id}: bytes differ from the 200's sha256/size")
        if data != step.data:
            wrong.append(f"S3: {key} {version_id}: bytes differ from the upload")
        if got.get("ServerSideEncryption") != "aws:kms":
            wrong.append(f"S3: {key} {version_id} is not KMS-encrypted")
        return wrong

    with ThreadPoolExecutor(max_workers=8) as pool:
        for wrong in pool.map(check, sorted(set(expected) & set(by_id))):
            problems.extend(wrong)
    return problems


def _reconcile_dynamodb(
    target: Target, run_id: str, newest: dict[str, tuple[Step, dict[str, Any]]]
) -> list[str]:
    problems: list[str] = []
    items: dict[str, list[dict[str, Any]]] = {}
    for item in stored_items(target, run_id):
        items.setdefault(str(item["productId"]), []).append(item)
    for product_id in sorted(set(items) - set(newest)):
        problems.append(f"DynamoDB: an item for {product_id}, which never had a 200")
    for product_id, (step, body) in sorted(newest.items()):
        found = items.get(product_id, [])
        if len(found) != 1:
            problems.append(f"DynamoDB: {len(found)} items for {product_id}, expected 1")
            continue
        sent = step.body or {}
        wanted = {
            "productName": body["productName"],
            "versionId": body["versionId"],
            "sha256": body["sha256"],
            "size": body["size"],
            "s3Key": body["s3Key"],
            "fileName": body["fileName"],
            "contentType": body["contentType"],
            "price": exact_price(sent.get("price")),
        }
        for name, value in wanted.items():
            if found[0].get(name) != value:
                got = found[0].get(name)
                problems.append(f"DynamoDB: {product_id}.{name} = {got!r}, not {value!r}")
    return problems


# --- command line ---------------------------------------------------------------------------


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if args.url:
        yield Target.discover(args.url, args.aws_url)
        return
    # The tasks' INFO lines would drown the report; errors still show.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    from local.emulator import Emulator

    with Emulator(port=0, aws_port=0) as emulator:
        yield Target.from_emulator(emulator)


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="local-mode load, reconciled")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("clients", str(report.clients))
    table.add_row("requests", str(len(report.steps)))
    table.add_row("idempotency keys honoured", "yes" if report.idempotency else "no")
    for status, count in sorted(report.statuses.items()):
        table.add_row(f"status {status}", str(count))
    table.add_row("wall time", f"{report.seconds:.2f} s")
    table.add_row("throughput", f"{report.throughput:.1f} req/s")
    table.add_row("p50 latency", f"{report.percentile_ms(0.50):.1f} ms")
    table.add_row("p95 latency", f"{report.percentile_ms(0.95):.1f} ms")
    table.add_row("max latency", f"{report.percentile_ms(1.0):.1f} ms")
    verdict = "OK" if not report.problems else f"{len(report.problems)} problems"
    table.add_row("reconciliation", verdict)
    console = Console()
    console.print(table)
    for problem in report.problems[:50]:
        console.print(problem, style="red", highlight=False, markup=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="a running local API, e.g. http://127.0.0.1:3000/upload")
    parser.add_argument("--aws-url", default="http://127.0.0.1:5000", help="its emulated AWS")
    args = parser.parse_args(argv)
    with _target(args) as target:
        report = run_load(target, clients=args.clients, uploads=args.uploads, seed=args.seed)
    print_report(report)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
