"""``upload-ops smoke``: a deployed stack checks itself, through its real API, as a client uses it.

One small text file under a product id of its own (``smoke-<uuid>``) goes up with
``POST /upload``, signed as the stack wants it (:mod:`upload_client.auth`: SigV4 for ``auth=iam``,
``x-api-key`` for ``auth=apiKey``), then each check reads what the contract (docs/api.md)
promises:

- ``upload``: the 200 body, every field and its JSON type, the request echoed, the key
  ``uploads/<productId>/<fileName>``, the SHA-256 of the bytes sent, a version id, a request id;
- ``object``: exactly that S3 object version: the bytes sent, SSE-KMS with the bucket's own key,
  S3's SHA-256 checksum of those bytes, the content type;
- ``metadata``: the DynamoDB item (productId, productName): what was sent, pointing at that
  version and request;
- ``rejection``: the same body without ``productName``: a 400 ``ValidationError`` naming it, in
  the error shape ``{"error": {"code", "message", "details"}, "requestId"}``;
- ``cleanup``, always, even after a failed check: the versions under the run's key and the run's
  item, which nothing else writes (the product id is the run's own). The upload sends no
  ``Idempotency-Key``, so it leaves no claim; the ledger keeps its closed commit record, which
  its TTL removes (tasks.contract.ledger).

Where: against AWS, the stack's outputs (``ApiUrl``, ``BucketName``, ``TableName``; ``ApiKeyId``
means ``auth=apiKey``); against local mode (``--api-url`` and ``--endpoint-url``), the emulated
functions' environments, where ``upload-ops orphans`` finds its tables too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final

import boto3
import msgspec
import requests
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.text import Text

from ops import logs
from tasks.contract import names
from tasks.contract.errors import OUTCOMES
from tasks.contract.keys import object_key
from tasks.core.models import SHA256_HEX_PATTERN, SUCCESS_MESSAGE
from upload_client import auth, http

AUTH_IAM: Final = "iam"
AUTH_API_KEY: Final = "apiKey"
AUTH_LOCAL: Final = "local mode (not checked)"
REQUIRED_OUTPUTS: Final = ("ApiUrl", "BucketName", "TableName")
API_KEY_OUTPUT: Final = "ApiKeyId"

PRODUCT_NAME: Final = "upload-ops smoke"
PRICE: Final = Decimal("12.34")
FILE_NAME: Final = "smoke.txt"
CONTENT_TYPE: Final = "text/plain"
MISSING_FIELD: Final = "productName"  # what the refused request leaves out
REFUSED: Final = OUTCOMES["ValidationError"]

# The JSON types of the bodies' fields (numbers parsed as int, or Decimal when they have a
# fraction or an exponent).
_NUMBER: Final = (int, Decimal)
SUCCESS_FIELDS: Final[Mapping[str, tuple[type, ...]]] = {
    "message": (str,),
    "requestId": (str,),
    "productId": (str,),
    "productName": (str,),
    "price": _NUMBER,
    "fileName": (str,),
    "contentType": (str,),
    "size": (int,),
    "sha256": (str,),
    "s3Key": (str,),
    "versionId": (str,),
    "timestamp": (str,),
}
ERROR_BODY_FIELDS: Final[Mapping[str, tuple[type, ...]]] = {"error": (dict,), "requestId": (str,)}
ERROR_FIELDS: Final[Mapping[str, tuple[type, ...]]] = {"code": (str,), "message": (str,)}
ERROR_OPTIONAL: Final[Mapping[str, tuple[type, ...]]] = {"details": (list,)}
_SHA256: Final = re.compile(SHA256_HEX_PATTERN)
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_JSON: Final = msgspec.json.Encoder(decimal_format="number")  # the price digit for digit
_ITEM: Final = TypeDeserializer()

OK: Final = "PASS"
FAILED: Final = "FAIL"
SKIPPED: Final = "SKIP"
_STYLE: Final = {OK: "green", FAILED: "red", SKIPPED: "yellow"}


class CheckFailed(Exception):
    """What a check found wrong, in one line."""


class Skipped(Exception):
    """A check that cannot run because an earlier one failed."""


@dataclass(frozen=True)
class Target:
    api_url: str  # the URL of POST /upload
    bucket: str
    table: str
    auth: str
    api_key_id: str | None = None


@dataclass(frozen=True)
class SmokeFile:
    """What the run uploads; its product id (and so its key and item) is the run's alone."""

    product_id: str
    data: bytes

    @property
    def file_name(self) -> str:
        return FILE_NAME

    @property
    def key(self) -> str:
        return object_key(self.product_id, self.file_name)

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    def body(self) -> dict[str, Any]:
        return {
            "productId": self.product_id,
            "productName": PRODUCT_NAME,
            "price": PRICE,
            "fileName": self.file_name,
            "contentType": CONTENT_TYPE,
            "fileContent": base64.b64encode(self.data).decode("ascii"),
        }

    def stored(self) -> dict[str, Any]:
        """The fields the 200 body and the metadata item hold as sent (or derived from it)."""
        sent = {name: value for name, value in self.body().items() if name != "fileContent"}
        return {**sent, "size": len(self.data), "sha256": self.digest.hex(), "s3Key": self.key}


def new_smoke_file() -> SmokeFile:
    run = uuid.uuid4().hex
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return SmokeFile(f"smoke-{run}", f"upload-ops smoke {run} {stamp}\n".encode())


@dataclass(frozen=True)
class Check:
    name: str
    outcome: str  # OK, FAILED or SKIPPED
    ms: int
    detail: str


@dataclass(frozen=True)
class Report:
    target: Target
    signing: str
    sent: SmokeFile
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(check.outcome == OK for check in self.checks)


@dataclass
class Run:
    """One smoke run: where, what it sent, and the 200 body once the upload answered one."""

    target: Target
    sent: SmokeFile
    signer: auth.Signer
    http: requests.Session
    s3: Any
    dynamodb: Any
    answer: dict[str, Any] | None = None


# -- where ------------------------------------------------------------------------------------
def upload_url(api_url: str) -> str:
    """The URL of ``POST /upload`` from the stack's ``ApiUrl`` or the stage's base URL, as
    ``upload-file`` takes it; ConfigurationError for anything but an http(s) URL."""
    return http.base_url(api_url) + http.UPLOAD_ROUTE


def target_from_outputs(outputs: Mapping[str, str]) -> Target:
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise logs.DiscoveryError(f"the stack has no output {', '.join(missing)}")
    key_id = outputs.get(API_KEY_OUTPUT)
    return Target(
        api_url=upload_url(outputs["ApiUrl"]),
        bucket=outputs["BucketName"],
        table=outputs["TableName"],
        auth=AUTH_API_KEY if key_id else AUTH_IAM,
        api_key_id=key_id,
    )


def discover_stack(session: boto3.session.Session, stack_name: str) -> Target:
    return target_from_outputs(logs.stack_outputs(session, stack_name))


def discover_local(session: boto3.session.Session, api_url: str, endpoint_url: str) -> Target:
    """Local mode has no CloudFormation: the names are in its functions' environments."""
    # The emulator runs on this machine: a refused connection is not worth retrying.
    once = Config(retries={"total_max_attempts": 1})
    lambda_client = session.client("lambda", endpoint_url=endpoint_url, config=once)
    variables: dict[str, str] = {}
    for environment in logs.function_environments(lambda_client):
        variables.update(environment)
    try:
        bucket = variables[names.UPLOAD_BUCKET_NAME]
        table = variables[names.METADATA_TABLE_NAME]
    except KeyError as exc:
        raise logs.DiscoveryError(
            f"no emulated function names {exc} at {endpoint_url} (is local mode running?)"
        ) from None
    return Target(api_url=upload_url(api_url), bucket=bucket, table=table, auth=AUTH_LOCAL)


def signer_for(session: boto3.session.Session, target: Target, api_key: str | None) -> auth.Signer:
    """``--api-key`` if given; on an ``auth=apiKey`` stack, its key's value; else SigV4 with the
    standard credential chain (unsigned only for a host outside AWS without credentials)."""
    if api_key is None and target.auth == AUTH_API_KEY and target.api_key_id:
        try:
            found = session.client("apigateway").get_api_key(
                apiKey=target.api_key_id, includeValue=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise logs.DiscoveryError(
                f"cannot read API key {target.api_key_id} (or pass --api-key): {exc}"
            ) from None
        if not found.get("value"):
            raise logs.DiscoveryError(f"API key {target.api_key_id} has no value (pass --api-key)")
        api_key = str(found["value"])
    return auth.resolve(target.api_url, api_key)


def _signing(signer: auth.Signer) -> str:
    if isinstance(signer, auth.ApiKey):
        return "x-api-key"
    return "SigV4" if isinstance(signer, auth.SigV4) else "unsigned"


# -- the contract's checks, on plain values ---------------------------------------------------
def _is(value: object, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def shape_problems(
    body: Mapping[str, Any],
    fields: Mapping[str, tuple[type, ...]],
    what: str,
    optional: Mapping[str, tuple[type, ...]] | None = None,
) -> list[str]:
    """Each field of ``fields`` present with its type, ``optional`` ones typed if there, no other
    field."""
    known = {**fields, **(optional or {})}
    problems = [f"{what} lacks {name}" for name in fields if name not in body]
    problems += [f"{what} has an undocumented field {name}" for name in body if name not in known]
    problems += [
        f"{what}'s {name} is {type(body[name]).__name__}, not {kinds[0].__name__}"
        for name, kinds in known.items()
        if name in body and not _is(body[name], kinds)
    ]
    return problems


def success_problems(body: object, sent: SmokeFile) -> list[str]:
    """A 200 body (JSON parsed with Decimal numbers) against the contract and what was sent."""
    if not isinstance(body, dict):
        return ["the 200 body is not a JSON object"]
    problems = shape_problems(body, SUCCESS_FIELDS, "the 200 body")
    expected = {"message": SUCCESS_MESSAGE, **sent.stored()}
    problems += [
        f"{name} is {body[name]!r}, expected {value!r}"
        for name, value in expected.items()
        if _is(body.get(name), SUCCESS_FIELDS[name]) and body[name] != value
    ]
    problems += [f"{name} is empty" for name in ("requestId", "versionId") if body.get(name) == ""]
    timestamp = body.get("timestamp")
    if isinstance(timestamp, str) and not _TIMESTAMP.match(timestamp):
        problems.append(f"timestamp {timestamp!r} is not like 2026-11-25T22:48:54.123Z")
    sha256 = body.get("sha256")
    if isinstance(sha256, str) and not _SHA256.match(sha256):
        problems.append("sha256 is not 64 lowercase hex digits")
    return problems


def rejection_problems(status: int, body: object) -> list[str]:
    """The answer to a body without :data:`MISSING_FIELD`: 400 ValidationError naming it."""
    problems = [] if status == REFUSED.status else [f"status {status}, not {REFUSED.status}"]
    if not isinstance(body, dict):
        return [*problems, "the error body is not a JSON object"]
    problems += shape_problems(body, ERROR_BODY_FIELDS, "the error body")
    if body.get("requestId") == "":
        problems.append("requestId is empty")
    error = body.get("error")
    if not isinstance(error, dict):
        return problems
    problems += shape_problems(error, ERROR_FIELDS, "error", ERROR_OPTIONAL)
    if _is(error.get("code"), (str,)) and error["code"] != REFUSED.code:
        problems.append(f"error.code is {error['code']!r}, not {REFUSED.code}")
    if error.get("message") == "":
        problems.append("error.message is empty")
    details = error.get("details")
    named = isinstance(details, list) and any(
        isinstance(d, dict) and d.get("field") == MISSING_FIELD and _is(d.get("message"), (str,))
        for d in details
    )
    if not named:
        problems.append(f"error.details has no {{field, message}} for {MISSING_FIELD}")
    return problems


def _key_id(key: str) -> str:
    """A KMS key's id, from its ARN (``arn:...:key/<id>``) or the id itself."""
    return key.rsplit("/", 1)[-1]


def object_problems(
    stored: Mapping[str, Any], data: bytes, sent: SmokeFile, bucket_key: str | None
) -> list[str]:
    """A GetObject answer (``data``: its bytes) against the file sent and the bucket's key."""
    problems = []
    if data != sent.data:
        problems.append(f"the stored {len(data)} bytes differ from the {len(sent.data)} sent")
    if stored.get("ServerSideEncryption") != "aws:kms":
        problems.append(f"encryption is {stored.get('ServerSideEncryption')!r}, not aws:kms")
    key = stored.get("SSEKMSKeyId")
    if bucket_key is None:
        problems.append("the bucket has no default KMS key")
    elif not isinstance(key, str) or _key_id(key) != _key_id(bucket_key):
        problems.append(f"encrypted with key {key!r}, not the bucket's {bucket_key}")
    checksum = base64.b64encode(sent.digest).decode("ascii")
    if stored.get("ChecksumSHA256") != checksum:
        problems.append(
            f"S3's SHA-256 checksum is {stored.get('ChecksumSHA256')!r}, not {checksum}"
        )
    if stored.get("ContentType") != CONTENT_TYPE:
        problems.append(f"Content-Type is {stored.get('ContentType')!r}, not {CONTENT_TYPE}")
    return problems


def item_problems(
    item: Mapping[str, Any] | None, sent: SmokeFile, answer: Mapping[str, Any], bucket: str
) -> list[str]:
    """The metadata item (plain values) against what was sent and the 200 that stored it."""
    if item is None:
        return [f"no item ({sent.product_id}, {PRODUCT_NAME})"]
    expected = {
        **sent.stored(),
        "bucket": bucket,
        "versionId": answer.get("versionId"),
        "requestId": answer.get("requestId"),
    }
    return [
        f"the item's {name} is {item.get(name)!r}, expected {value!r}"
        for name, value in expected.items()
        if item.get(name) != value
    ]


# -- the checks, against the stack ------------------------------------------------------------
def _require(problems: list[str]) -> None:
    if problems:
        raise CheckFailed("; ".join(problems))


def _post(run: Run, body: Mapping[str, Any]) -> tuple[requests.Response, Any]:
    """One POST /upload, signed; the answer and its JSON (None if it is not JSON)."""
    data = _JSON.encode(body)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    signed = run.signer.headers("POST", run.target.api_url, headers, data)
    response = run.http.post(
        run.target.api_url, data=data, headers=signed, timeout=http.API_TIMEOUT
    )
    try:
        return response, json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return response, None


def _refusal(response: requests.Response, body: Any) -> str:
    """What an answer other than the expected one said, in one line."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        said = f"{error.get('code')}: {error.get('message')}"
        details = error.get("details")
        if isinstance(details, list) and details:
            said += " (" + ", ".join(f"{d.get('field')} {d.get('message')}" for d in details) + ")"
        return f"{said}, request {body.get('requestId')}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])  # API Gateway's own answers
    return response.text[:200] or "an empty body"


def check_upload(run: Run) -> str:
    response, body = _post(run, run.sent.body())
    if response.status_code != 200:
        raise CheckFailed(f"HTTP {response.status_code}, not 200: {_refusal(response, body)}")
    run.answer = body if isinstance(body, dict) else None
    problems = success_problems(body, run.sent)
    header = response.headers.get("x-amzn-RequestId")
    if header and isinstance(body, dict) and body.get("requestId") != header:
        problems.append(f"requestId differs from the x-amzn-RequestId header {header}")
    _require(problems)
    return f"200, request {body['requestId']}, version {body['versionId']}"


def _answered(run: Run) -> dict[str, Any]:
    """The 200 body, when it names the version and the request the next checks look for."""
    answer = run.answer
    if answer is None or not all(
        isinstance(answer.get(name), str) and answer[name] for name in ("versionId", "requestId")
    ):
        raise Skipped("the upload answered no versionId and requestId to look for")
    return answer


def bucket_key(s3: Any, bucket: str) -> str | None:
    """The bucket's default KMS key (None: it has none)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    except ClientError as exc:
        if (
            exc.response.get("Error", {}).get("Code")
            == "ServerSideEncryptionConfigurationNotFoundError"
        ):
            return None
        raise
    for rule in rules.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
            return str(default["KMSMasterKeyID"])
    return None


def check_object(run: Run) -> str:
    version = _answered(run)["versionId"]
    stored = run.s3.get_object(
        Bucket=run.target.bucket, Key=run.sent.key, VersionId=version, ChecksumMode="ENABLED"
    )
    data = stored["Body"].read()
    key = bucket_key(run.s3, run.target.bucket)
    _require(object_problems(stored, data, run.sent, key))
    return f"version {version}: {len(data)} bytes, SSE-KMS key {_key_id(str(key))}, SHA-256 ok"


def _item_key(sent: SmokeFile) -> dict[str, Any]:
    return {"productId": {"S": sent.product_id}, "productName": {"S": PRODUCT_NAME}}


def check_metadata(run: Run) -> str:
    answer = _answered(run)
    found = run.dynamodb.get_item(
        TableName=run.target.table, Key=_item_key(run.sent), ConsistentRead=True
    ).get("Item")
    item = None if found is None else {k: _ITEM.deserialize(v) for k, v in found.items()}
    _require(item_problems(item, run.sent, answer, run.target.bucket))
    return f"item ({run.sent.product_id}, {PRODUCT_NAME}) -> version {answer['versionId']}"


def check_rejection(run: Run) -> str:
    body = {name: value for name, value in run.sent.body().items() if name != MISSING_FIELD}
    response, answer = _post(run, body)
    _require(rejection_problems(response.status_code, answer))
    return (
        f"{response.status_code} {REFUSED.code} on {MISSING_FIELD}, request {answer['requestId']}"
    )


def _delete_versions(run: Run) -> list[str]:
    """Deletes, by VersionId, every version (and delete marker) under the run's key."""
    pages = run.s3.get_paginator("list_object_versions").paginate(
        Bucket=run.target.bucket, Prefix=run.sent.key
    )
    versions = [
        str(version["VersionId"])
        for page in pages
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if version["Key"] == run.sent.key
    ]
    for version in versions:
        run.s3.delete_object(Bucket=run.target.bucket, Key=run.sent.key, VersionId=version)
    return versions


def _delete_item(run: Run) -> bool:
    """Deletes the run's metadata item; True if there was one."""
    old = run.dynamodb.delete_item(
        TableName=run.target.table, Key=_item_key(run.sent), ReturnValues="ALL_OLD"
    ).get("Attributes")
    return bool(old)


def clean_up(run: Run) -> str:
    """What the run stored, gone: its key's versions and its item (the item even when deleting
    the versions failed). Only the run writes them: the product id is its own."""
    try:
        versions = _delete_versions(run)
    finally:
        item = _delete_item(run)
    done = [f"deleted version {version}" for version in versions]
    done += ["deleted the item"] if item else []
    answered = (run.answer or {}).get("versionId")
    if answered and versions != [answered]:
        raise CheckFailed(f"the key held {versions}, the 200 named {answered} ({'; '.join(done)})")
    return "; ".join(done) or "nothing was stored"


CHECKS: Final[tuple[tuple[str, Callable[[Run], str]], ...]] = (
    ("upload", check_upload),
    ("object", check_object),
    ("metadata", check_metadata),
    ("rejection", check_rejection),
)
CLEANUP: Final = "cleanup"


def _no_answer(exc: requests.RequestException) -> str:
    """A request that got no answer, in a few words: urllib3's innermost reason (``[Errno 111]
    Connection refused``, ``Read timed out``) without the connection pool around it."""
    reason = str(getattr(exc.args[0], "reason", exc.args[0])) if exc.args else str(exc)
    return f"no answer: {type(exc).__name__} ({reason.rsplit(': ', 1)[-1]})"


def _timed(name: str, check: Callable[[], str]) -> Check:
    """Runs one check: its outcome, how long it took, and what it found, in one line."""
    start = time.perf_counter()
    try:
        outcome, detail = OK, check()
    except Skipped as exc:
        outcome, detail = SKIPPED, str(exc)
    except CheckFailed as exc:
        outcome, detail = FAILED, str(exc)
    except (ClientError, BotoCoreError) as exc:
        outcome, detail = FAILED, f"AWS: {exc}"
    except requests.RequestException as exc:
        outcome, detail = FAILED, _no_answer(exc)
    ms = round((time.perf_counter() - start) * 1000)
    return Check(name, outcome, ms, " ".join(detail.split()))


def run(
    session: boto3.session.Session,
    target: Target,
    signer: auth.Signer,
    *,
    endpoint_url: str | None,
) -> Report:
    """Every check in order, then the clean-up, whatever happened before it."""
    state = Run(
        target=target,
        sent=new_smoke_file(),
        signer=signer,
        http=http.new_session(1),
        s3=session.client("s3", endpoint_url=endpoint_url),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint_url),
    )
    checks: list[Check] = []
    try:
        checks += [_timed(name, partial(check, state)) for name, check in CHECKS]
    finally:
        checks.append(_timed(CLEANUP, partial(clean_up, state)))
        state.http.close()
    return Report(target=target, signing=_signing(signer), sent=state.sent, checks=checks)


# -- output -----------------------------------------------------------------------------------
def failure_line(report: Report) -> str:
    failed = [f"{c.name}: {c.detail}" for c in report.checks if c.outcome == FAILED]
    return f"smoke test of {report.target.api_url} failed: {'; '.join(failed)}"


def report_model(report: Report) -> dict[str, Any]:
    target = report.target
    return {
        "apiUrl": target.api_url,
        "auth": target.auth,
        "signing": report.signing,
        "bucket": target.bucket,
        "table": target.table,
        "productId": report.sent.product_id,
        "s3Key": report.sent.key,
        "passed": report.passed,
        "checks": [
            {"check": c.name, "outcome": c.outcome, "ms": c.ms, "detail": c.detail}
            for c in report.checks
        ],
    }


def render(console: Console, report: Report) -> None:
    """A header, one line per check (outcome, name, time, what it found), a summary."""
    target, sent = report.target, report.sent
    console.print(Text(f"Smoke test of {target.api_url}", style="bold"))
    console.print(f"  auth {target.auth}, requests {report.signing}", markup=False)
    console.print(f"  bucket {target.bucket}, table {target.table}", markup=False)
    console.print(f"  file {sent.key} ({len(sent.data)} bytes)", markup=False)
    for check in report.checks:
        line = Text("  ")
        line.append(f"{check.outcome:<4}", style=_STYLE[check.outcome])
        line.append(f"  {check.name:<9} {check.ms:>6} ms  {check.detail}")
        console.print(line)
    passed = sum(check.outcome == OK for check in report.checks)
    seconds = sum(check.ms for check in report.checks) / 1000
    console.print(f"{passed} of {len(report.checks)} checks passed in {seconds:.1f} s")
