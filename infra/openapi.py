"""The API's OpenAPI document, ``docs/openapi.json``, written from the definitions the stack and
the tasks use: the routes and the stage (infra/api.py), the auth modes (infra/settings.py), the
body rules (infra/openapi_schemas.py, from tasks.contract and the validate task's rules) and the
error statuses and codes (``tasks.contract.errors.OUTCOMES``).

``python -m infra.openapi`` writes it; tests/unit/test_openapi.py fails when the file differs
from what this module writes. Local mode serves the file at ``GET /openapi.json``.
"""

from __future__ import annotations

import base64
import hashlib
import http
import json
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from infra import openapi_schemas as schemas
from infra.api import IDEMPOTENCY_HEADER, RESOURCE_PATH, SESSIONS_PATH, STAGE_NAME
from infra.api import UPLOAD_ID_PARAMETER as UPLOAD_ID_REQUEST_PARAMETER
from infra.settings import AuthMode, Settings
from infra.templates import SESSION_OPERATIONS
from tasks.contract import sessions
from tasks.contract.content_types import ANY_CONTENT_TYPE
from tasks.contract.errors import (
    EDGE_PREFIX,
    GATEWAY_PREFIX,
    INTERNAL_ERROR,
    OUTCOMES,
    TIMEOUT_ERROR,
    CompensationFailed,
    ContentMismatch,
    IdempotencyConflict,
    PayloadTooLarge,
    RequestRejected,
    SessionNotFound,
    SessionNotOpen,
    TooManySessions,
    UploadInProgress,
    ValidationError,
)
from tasks.contract.idempotency import REPLAY_SECONDS
from tasks.contract.keys import object_key
from tasks.contract.limits import IDEMPOTENCY_KEY_MAX_CHARS
from tasks.core.models import Checksum, SuccessBody
from tasks.core.session_rules import parse_open, parse_parts
from tasks.core.validation import check_request, validate_upload

Schema = dict[str, Any]

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
OPENAPI_FILE: Final = PROJECT_ROOT / "docs" / "openapi.json"
REGENERATE_COMMAND: Final = "make openapi"
OPENAPI_VERSION: Final = "3.1.0"
JSON: Final = "application/json"
IDEMPOTENCY_KEY: Final = IDEMPOTENCY_HEADER.rsplit(".", 1)[1]
UPLOAD_ID: Final = UPLOAD_ID_REQUEST_PARAMETER.rsplit(".", 1)[1]

# Example values (a request id is a UUID; a session's id is the id of the request that opened it).
EXAMPLE_REQUEST_ID: Final = "c0ffee00-1234-4abc-8def-0123456789ab"
EXAMPLE_UPLOAD_ID: Final = "5e55104e-9a7b-4c1d-8e2f-3a4b5c6d7e8f"
EXAMPLE_VERSION_ID: Final = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
EXAMPLE_TIMESTAMP: Final = "2026-11-25T22:48:54.123Z"
EXAMPLE_EXPIRY: Final = "2026-11-26T22:48:54Z"
EXAMPLE_FILE: Final = b"This is a test file"
EXAMPLE_BIG_FILE_BYTES: Final = 100 * sessions.MIB

# Outcomes of the workflows' own Fail states and of Step Functions (no error class raises them).
DATA_LIMIT_EXCEEDED: Final = "States.DataLimitExceeded"
WORKFLOW_FAILURES: Final = (INTERNAL_ERROR, TIMEOUT_ERROR)


@dataclass(frozen=True, kw_only=True)
class Route:
    """One operation of the API: its path and method as infra/api.py adds them, the component
    schemas of its body and success answer, and the outcomes its workflow can end with (keys of
    ``OUTCOMES``; every route can also get the ``Edge.*`` and ``Gateway.*`` ones)."""

    path: str
    method: str
    operation_id: str
    summary: str
    tag: str
    success_status: int = 200
    success: str
    done: str  # what the success answer means
    outcomes: tuple[str, ...]
    body: str | None = None
    parameters: tuple[str, ...] = ()
    opens_session: bool = False  # its answer's uploadId is the id the session routes take


def _names(*error_classes: type[Exception]) -> tuple[str, ...]:
    return tuple(error.__name__ for error in error_classes)


def upload_route() -> Route:
    """``POST /upload``: the upload workflow, whose tasks raise these errors (its Fail states end
    with the rest)."""
    raised = _names(
        ValidationError,
        PayloadTooLarge,
        IdempotencyConflict,
        UploadInProgress,
        ContentMismatch,
        SessionNotFound,
        SessionNotOpen,
        CompensationFailed,
    )
    return Route(
        path=f"/{RESOURCE_PATH}",
        method="post",
        operation_id="upload",
        summary="Upload a file, or commit an upload session",
        tag="uploads",
        success="SuccessBody",
        done="Stored: the file's new S3 version and its metadata (a repeat with the same "
        "Idempotency-Key and body answers the first result and stores nothing).",
        outcomes=(*raised, DATA_LIMIT_EXCEEDED, *WORKFLOW_FAILURES),
        body="UploadRequest",
        parameters=(IDEMPOTENCY_KEY,),
    )


def _on_session(**fields: Any) -> Route:
    """A route on one session: its path has the session's id."""
    return Route(tag="sessions", parameters=(UPLOAD_ID,), **fields)


def session_routes() -> tuple[Route, ...]:
    """The sessions routes, one per operation of the sessions workflow, with the errors the
    session task raises for it (tasks/session.py)."""
    collection = f"/{SESSIONS_PATH}"
    session = f"{collection}/{{{UPLOAD_ID}}}"
    by_operation = {
        "open": Route(
            path=collection,
            method="post",
            operation_id="openSession",
            summary="Open an upload session for a large file",
            tag="sessions",
            success_status=201,
            success="OpenedSession",
            done="The session is open: ask for part URLs, PUT the parts, then commit.",
            outcomes=_names(ValidationError, PayloadTooLarge, TooManySessions),
            body="OpenRequest",
            opens_session=True,
        ),
        "parts": _on_session(
            path=f"{session}/parts",
            method="post",
            operation_id="signParts",
            summary="Get presigned URLs to PUT parts to",
            success="SignedParts",
            done="A presigned URL per part, with the headers to send with it.",
            outcomes=_names(ValidationError, SessionNotFound, SessionNotOpen),
            body="PartsRequest",
        ),
        "describe": _on_session(
            path=session,
            method="get",
            operation_id="describeSession",
            summary="Read a session and the parts S3 holds",
            success="DescribedSession",
            done="The session, and while it is open the parts S3 holds.",
            outcomes=_names(SessionNotFound),
        ),
        "abort": _on_session(
            path=session,
            method="delete",
            operation_id="abortSession",
            summary="Abort a session (its parts are deleted)",
            success="AbortedSession",
            done="The session is aborted and its parts are deleted.",
            outcomes=_names(SessionNotFound, SessionNotOpen),
        ),
    }
    if set(by_operation) != SESSION_OPERATIONS:
        raise ValueError(f"session routes {sorted(by_operation)} != {sorted(SESSION_OPERATIONS)}")
    return tuple(
        replace(route, outcomes=route.outcomes + WORKFLOW_FAILURES)
        for route in by_operation.values()
    )


def routes() -> tuple[Route, ...]:
    return (upload_route(), *session_routes())


def route_outcomes(route: Route) -> list[str]:
    """The outcomes a client of ``route`` can get: its workflow's, then Step Functions' and API
    Gateway's own (every route's)."""
    shared = [name for name in OUTCOMES if name.startswith((EDGE_PREFIX, GATEWAY_PREFIX))]
    unknown = [name for name in route.outcomes if name not in OUTCOMES]
    if unknown:
        raise ValueError(f"{route.operation_id}: {unknown} are not in OUTCOMES")
    return [*route.outcomes, *shared]


def check_every_outcome_has_a_route(all_routes: Iterable[Route]) -> None:
    """An outcome the contract adds must be given to the routes that can end with it."""
    covered = {name for route in all_routes for name in route_outcomes(route)}
    missing = [name for name in OUTCOMES if name not in covered]
    if missing:
        raise ValueError(f"outcomes {missing} belong to no route (infra/openapi.py, routes())")


def codes_by_status(outcome_names: Iterable[str]) -> dict[int, list[str]]:
    """Status -> the codes (sorted) of ``outcome_names``' outcomes, by status."""
    found: dict[int, set[str]] = {}
    for name in outcome_names:
        outcome = OUTCOMES[name]
        found.setdefault(outcome.status, set()).add(outcome.code)
    return {status: sorted(found[status]) for status in sorted(found)}


# -- examples -------------------------------------------------------------------------------
def example_upload_body() -> Schema:
    return {
        "productId": "PROD-001",
        "productName": "Test Product",
        "price": 99.99,
        "fileName": "test-file.txt",
        "contentType": "text/plain",
        "fileContent": base64.b64encode(EXAMPLE_FILE).decode("ascii"),
    }


def example_commit_body() -> Schema:
    body = example_upload_body()
    del body["fileContent"], body["fileName"], body["contentType"]
    return {**body, "uploadId": EXAMPLE_UPLOAD_ID}


def example_open_body() -> Schema:
    return {
        "productId": "PROD-001",
        "fileName": "video.mp4",
        "size": EXAMPLE_BIG_FILE_BYTES,
        "contentType": "video/mp4",
    }


def _part_digest(number: int) -> str:
    return hashlib.sha256(f"part {number}".encode()).hexdigest()


def example_parts_body() -> Schema:
    return {"parts": [{"partNumber": number, "sha256": _part_digest(number)} for number in (1, 2)]}


def example_uploaded() -> Schema:
    """The 200 of the inline example: validate's metadata of it, as record answers it."""
    body = example_upload_body()
    upload = validate_upload(EXAMPLE_REQUEST_ID, body)
    answer = SuccessBody(
        requestId=EXAMPLE_REQUEST_ID,
        productId=upload.productId,
        productName=upload.productName,
        price=upload.price,
        fileName=upload.fileName,
        contentType=upload.contentType or "",
        size=upload.size,
        sha256=upload.sha256,
        s3Key=upload.s3Key,
        versionId=EXAMPLE_VERSION_ID,
        timestamp=EXAMPLE_TIMESTAMP,
    ).to_dict()
    return {**answer, "price": body["price"]}  # the response template writes it as a number


def example_committed() -> Schema:
    """The 200 of the commit example: a session of two parts (no whole-file SHA-256)."""
    digests = b"".join(bytes.fromhex(_part_digest(number)) for number in (1, 2))
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode("ascii")
    opened = example_open_body()
    answer = {
        **example_uploaded(),
        "fileName": opened["fileName"],
        "contentType": opened["contentType"],
        "size": opened["size"],
        "s3Key": object_key(opened["productId"], opened["fileName"]),
        "uploadId": EXAMPLE_UPLOAD_ID,
        "checksum": Checksum(type="COMPOSITE", value=f"{composite}-2").to_dict(),
    }
    del answer["sha256"]
    return answer


def example_session() -> Schema:
    """The example session, open, with its first part held."""
    opened = example_open_body()
    part_size, part_count = sessions.part_plan(opened["size"], None)
    held = {"partNumber": 1, "size": part_size, "sha256": _part_digest(1)}
    return {
        "uploadId": EXAMPLE_UPLOAD_ID,
        "state": sessions.OPEN,
        "s3Key": object_key(opened["productId"], opened["fileName"]),
        "size": opened["size"],
        "partSize": part_size,
        "partCount": part_count,
        "parts": [held],
        "expiresAt": EXAMPLE_EXPIRY,
        "requestId": EXAMPLE_REQUEST_ID,
    }


def example_opened() -> Schema:
    described = example_session()
    keep = ("uploadId", "s3Key", "partSize", "partCount", "expiresAt", "requestId")
    return {name: described[name] for name in keep}


def example_signed() -> Schema:
    """Presigned URLs of the example's parts, each with the headers signed into it."""
    described = example_session()
    url = (
        f"https://bucket.s3.us-east-1.amazonaws.com/{described['s3Key']}?uploadId=...&"
        "partNumber={}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=..."
    )
    parts = []
    for part in example_parts_body()["parts"]:
        number = part["partNumber"]
        length = sessions.part_bytes(described["size"], described["partSize"], number)
        digest = base64.b64encode(bytes.fromhex(part["sha256"])).decode("ascii")
        headers = {"x-amz-checksum-sha256": digest, "content-length": str(length)}
        parts.append({"partNumber": number, "url": url.format(number), "headers": headers})
    return {
        "uploadId": EXAMPLE_UPLOAD_ID,
        "parts": parts,
        "expiresAt": EXAMPLE_EXPIRY,
        "requestId": EXAMPLE_REQUEST_ID,
    }


def example_aborted() -> Schema:
    return {
        "uploadId": EXAMPLE_UPLOAD_ID,
        "state": sessions.ABORTED,
        "requestId": EXAMPLE_REQUEST_ID,
    }


def _refusal(check: Callable[[], object]) -> Schema:
    """The error body of a refused example body, with the rules' own messages."""
    try:
        check()
    except RequestRejected as refused:
        error = json.loads(str(refused))
        return {"error": {"code": "ValidationError", **error}, "requestId": EXAMPLE_REQUEST_ID}
    raise ValueError("the refused example was accepted")


def refused_examples() -> dict[str, Schema]:
    """operationId -> its 400 ValidationError example, for the routes with a body."""
    bad_upload = {**example_upload_body(), "price": "99.99", "fileContent": "00==", "colour": 1}
    bad_open = {**example_open_body(), "size": 0, "partSize": 1024}
    bad_parts = {"parts": [{"partNumber": 1, "sha256": "not a digest"}]}
    return {
        "upload": _refusal(lambda: check_request(bad_upload)),
        "openSession": _refusal(
            lambda: parse_open(
                bad_open, max_bytes=sessions.DEFAULT_MAX_UPLOAD_BYTES, policy=ANY_CONTENT_TYPE
            )
        ),
        "signParts": _refusal(lambda: parse_parts(bad_parts, part_count=2)),
    }


# -- the document ------------------------------------------------------------------------
PARAMETERS: Final[dict[str, Schema]] = {
    IDEMPOTENCY_KEY: {
        "name": IDEMPOTENCY_KEY,
        "in": "header",
        "required": False,
        "description": (
            "Optional: makes a retry safe. The same key and body within "
            f"{REPLAY_SECONDS // 3600} hours answer the first result and store nothing new. 1 to "
            f"{IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters; an empty value is the same as "
            "no header (API Gateway's mapping template cannot tell them apart)."
        ),
        "schema": schemas.idempotency_key(),
        "example": "order-4711-attempt",
    },
    UPLOAD_ID: {
        "name": UPLOAD_ID,
        "in": "path",
        "required": True,
        "description": "The session's id; another caller's session, or none, answers 404.",
        "schema": schemas.session_id(),
        "example": EXAMPLE_UPLOAD_ID,
    },
}
PARAMETER_COMPONENTS: Final = {IDEMPOTENCY_KEY: "IdempotencyKey", UPLOAD_ID: "UploadId"}
REQUEST_ID_HEADER: Final = "x-amzn-RequestId"

SECURITY_SCHEMES: Final[dict[AuthMode, Schema]] = {
    AuthMode.IAM: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "auth=iam (the default): the request is signed with AWS Signature Version 4 for "
            "execute-api:Invoke; unsigned or badly signed, it is answered 403."
        ),
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
    AuthMode.API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": (
            "auth=apiKey: the API key of the stack's usage plan (stage throttle and daily "
            "quota); without it, or with another, the request is answered 403."
        ),
    },
}


def security_schemes() -> Schema:
    """One scheme per auth mode, named by the stack's ``auth`` setting."""
    if set(SECURITY_SCHEMES) != set(AuthMode):
        raise ValueError(f"auth modes {list(AuthMode)} != the documented {list(SECURITY_SCHEMES)}")
    return {mode.value: scheme for mode, scheme in SECURITY_SCHEMES.items()}


def request_examples() -> dict[str, Schema]:
    return {
        "upload": {"inline": example_upload_body(), "commit": example_commit_body()},
        "openSession": {"session": example_open_body()},
        "signParts": {"parts": example_parts_body()},
    }


def success_examples() -> dict[str, Schema]:
    return {
        "upload": {"inline": example_uploaded(), "commit": example_committed()},
        "openSession": {"opened": example_opened()},
        "signParts": {"signed": example_signed()},
        "describeSession": {"open": example_session()},
        "abortSession": {"aborted": example_aborted()},
    }


def _examples(values: Schema) -> Schema:
    return {name: {"value": value} for name, value in values.items()}


def _json(schema: Schema, examples: Schema) -> Schema:
    return {JSON: {"schema": schema, "examples": _examples(examples)}}


def _answer(description: str, content: Schema) -> Schema:
    return {
        "description": description,
        "headers": {REQUEST_ID_HEADER: {"$ref": "#/components/headers/RequestId"}},
        "content": content,
    }


def _error_example(names: Iterable[str], status: int, code: str) -> Schema:
    """An error body with the message of the first of ``names``' outcomes of that status and
    code (a rejected request's own message stands in its place at run time)."""
    message = next(
        OUTCOMES[name].message
        for name in names
        if (OUTCOMES[name].status, OUTCOMES[name].code) == (status, code)
    )
    return {"error": {"code": code, "message": message}, "requestId": EXAMPLE_REQUEST_ID}


def error_responses(route: Route, refused: Schema | None) -> Schema:
    """Every error status of ``route``: the codes it comes with, and an example of each (the
    refused example body's for a 400 ValidationError, when the route has one)."""
    names = route_outcomes(route)
    responses: Schema = {}
    for status, codes in codes_by_status(names).items():
        examples = {code: _error_example(names, status, code) for code in codes}
        if refused is not None and status == 400:
            examples[refused["error"]["code"]] = refused
        phrase = http.HTTPStatus(status).phrase
        content = _json(schemas.error_with_codes(codes), examples)
        responses[str(status)] = _answer(f"{phrase}: {', '.join(codes)}", content)
    return responses


def _links(all_routes: Iterable[Route]) -> Schema:
    """From a new session to the operations on it."""
    return {
        route.operation_id: {
            "operationId": route.operation_id,
            "parameters": {UPLOAD_ID: "$response.body#/uploadId"},
        }
        for route in all_routes
        if UPLOAD_ID in route.parameters
    }


def operation(route: Route, all_routes: Iterable[Route]) -> Schema:
    successes = success_examples()[route.operation_id]
    success = _answer(route.done, _json(schemas.ref(route.success), successes))
    if route.opens_session:
        success["links"] = _links(all_routes)
    spec: Schema = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.parameters:
        spec["parameters"] = [
            {"$ref": f"#/components/parameters/{PARAMETER_COMPONENTS[name]}"}
            for name in route.parameters
        ]
    if route.body is not None:
        body_examples = request_examples()[route.operation_id]
        spec["requestBody"] = {
            "required": True,
            "content": _json(schemas.ref(route.body), body_examples),
        }
    refused = refused_examples().get(route.operation_id)
    spec["responses"] = {
        str(route.success_status): success,
        **error_responses(route, refused),
    }
    return spec


def paths(all_routes: tuple[Route, ...]) -> Schema:
    found: Schema = {}
    for route in all_routes:
        found.setdefault(route.path, {})[route.method] = operation(route, all_routes)
    return found


def components() -> Schema:
    return {
        "schemas": {
            "UploadRequest": schemas.upload_request(),
            "OpenRequest": schemas.open_request(Settings().max_upload_bytes),
            "PartsRequest": schemas.parts_request(),
            "SuccessBody": schemas.success_body(),
            "Checksum": schemas.checksum(),
            "OpenedSession": schemas.opened_session(),
            "SignedParts": schemas.signed_parts(),
            "DescribedSession": schemas.described_session(),
            "AbortedSession": schemas.aborted_session(),
            "Error": schemas.error_body(),
        },
        "parameters": {PARAMETER_COMPONENTS[name]: spec for name, spec in PARAMETERS.items()},
        "headers": {
            "RequestId": {
                "description": "API Gateway's request id: the body's requestId.",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            }
        },
        "securitySchemes": security_schemes(),
    }


def info() -> Schema:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {
        "title": "Upload service",
        "version": pyproject["project"]["version"],
        "description": (
            "POST /upload stores a file (base64 in the JSON body) in S3 and its metadata in "
            "DynamoDB, synchronously: 200 means both are stored, any other status that nothing "
            "new remains. Larger files go straight to S3 through an upload session (/uploads) "
            "and are committed with POST /upload. Every answer is JSON and carries the request "
            "id. docs/api.md is the whole contract. Authentication is the deployment's auth "
            "setting: one of the security schemes. Local mode (python -m local) serves this "
            "document at GET /openapi.json and checks no authentication."
        ),
    }


def document() -> Schema:
    all_routes = routes()
    check_every_outcome_has_a_route(all_routes)
    return {
        "openapi": OPENAPI_VERSION,
        "info": info(),
        "servers": [
            {
                "url": f"https://{{restApiId}}.execute-api.{{region}}.amazonaws.com/{STAGE_NAME}",
                "description": "The stack's API (its output ApiUrl, less /upload).",
                "variables": {
                    "restApiId": {"default": "a1b2c3d4e5"},
                    "region": {"default": "us-east-1"},
                },
            }
        ],
        "security": [{name: []} for name in security_schemes()],
        "tags": [
            {"name": "uploads", "description": "Store a file (inline, or a session's commit)."},
            {"name": "sessions", "description": "Large files: multipart uploads straight to S3."},
        ],
        "paths": paths(all_routes),
        "components": components(),
    }


def render() -> str:
    """The document as written to docs/openapi.json."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OPENAPI_FILE.write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main()
