"""Load with nothing lost: concurrent clients against local mode, then a full reconciliation.

:func:`run_load` sends a mix of requests from several threads, each with its own HTTP session:
valid uploads, invalid bodies, re-uploads of the same key, and requests that repeat an
``Idempotency-Key`` (same body, then a different body). Whether the service honours idempotency
keys is probed first (a repeated key with the same body returns the same ``versionId``); the
reconciliation then expects replays and 409s, or independent uploads.

Reconciliation (:func:`reconcile`): every response passes the contract oracle
(tests/oracle.py); no 5xx (no faults are injected); every 200 is in S3 (that version, those
bytes, KMS-encrypted) and in DynamoDB (the item points at the newest 200 of its product, with its
sha256, size and exact price); nothing else exists under the run's product-id prefix: no extra
version, no delete marker, no extra item.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import requests

from tests.oracle import contract_problems, echo_problems, exact_price

REGION: Final = "us-east-1"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


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


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def metadata_table(target: Target) -> Any:
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=target.aws_endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
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
        self.random = random.Random(seed)
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
