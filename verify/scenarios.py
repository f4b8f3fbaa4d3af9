"""What the sandboxes are made to do, through local mode's API, state machines and Lambda API,
and what must hold in the emulated storage afterwards.

Each scenario raises :class:`CheckFailed` with one line when something does not hold. They run
in order: the compensation stores a second version of the first upload's key and must delete
exactly that one.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from local.emulator import Emulator
from tasks.contract import names
from verify.routing import Router

HTTP_TIMEOUT_SECONDS = 120


class CheckFailed(Exception):
    """A scenario's outcome is not what the service promises (one line)."""


@dataclass
class World:
    """The running emulator, the router to the sandboxes, and what scenarios pass on."""

    emulator: Emulator
    router: Router
    first: tuple[dict[str, Any], dict[str, Any]] | None = None  # the upload's body and 200 body

    def post(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        url = self.emulator.base_url + path
        response = requests.post(url, json=body, timeout=HTTP_TIMEOUT_SECONDS)
        return response.status_code, response.json()

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        response = requests.get(self.emulator.base_url + path, timeout=HTTP_TIMEOUT_SECONDS)
        return response.status_code, response.json()

    def version_ids(self, key: str) -> list[str]:
        listed = self.emulator.client("s3").list_object_versions(
            Bucket=self.emulator.bucket_name, Prefix=key
        )
        return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]

    def item_version(self, body: Mapping[str, Any]) -> str | None:
        """The version the product's metadata item points at (None: no item)."""
        key = {"productId": {"S": body["productId"]}, "productName": {"S": body["productName"]}}
        found = self.emulator.client("dynamodb").get_item(
            TableName=self.emulator.table_name, Key=key, ConsistentRead=True
        )
        version: str | None = found.get("Item", {}).get("versionId", {}).get("S")
        return version

    def result_of(self, task: str) -> Any:
        """What the task's function answered last."""
        return self.router.last_result(self.emulator.function(task).name)

    def stored_version(self) -> str | None:
        """The version Store wrote last."""
        return (self.result_of(names.STORE) or {}).get("versionId")


def upload_body(product: str, data: bytes = b"Hello from arm64!") -> dict[str, Any]:
    return {
        "productId": f"{product}-{uuid.uuid4().hex[:12]}",
        "productName": "Arm64 check",
        "price": 12.5,
        "fileName": "check.txt",
        "contentType": "text/plain",
        "fileContent": base64.b64encode(data).decode(),
    }


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def upload(world: World) -> None:
    """A valid upload: validate, store, record; the version and the item exist."""
    body = upload_body("ARM64")
    status, answer = world.post("/upload", body)
    _expect(status == 200, f"POST /upload answered {status}: {answer}")
    key, version = answer["s3Key"], answer["versionId"]
    _expect(world.version_ids(key) == [version], f"{key} has not exactly version {version}")
    pointed = world.item_version(body)
    _expect(pointed == version, f"the metadata item points at {pointed}, not {version}")
    world.first = (body, answer)


def compensation(world: World) -> None:
    """The same file again, Record timing out: compensate deletes exactly the version Store
    wrote, and the first upload's version and item stay."""
    _expect(world.first is not None, "the upload scenario did not store a first version")
    assert world.first is not None
    body, first = world.first
    world.router.time_out_next(world.emulator.function(names.RECORD).name)
    status, answer = world.post("/upload", body)
    _expect(status == 500, f"POST /upload with Record timing out answered {status}: {answer}")
    stored = world.stored_version()
    deleted = (world.result_of(names.COMPENSATE) or {}).get("deletedVersionIds")
    _expect(deleted == [stored], f"compensate deleted {deleted}, not Store's {stored}")
    left = world.version_ids(first["s3Key"])
    _expect(left == [first["versionId"]], f"versions left {left}, not [{first['versionId']}]")
    pointed = world.item_version(body)
    _expect(pointed == first["versionId"], f"the metadata item now points at {pointed}")


def orphan_report(world: World) -> None:
    """Record and Compensate time out: ReportOrphan names exactly the version Store left."""
    for task in (names.RECORD, names.COMPENSATE):
        world.router.time_out_next(world.emulator.function(task).name)
    body = upload_body("ORPHAN")
    status, answer = world.post("/upload", body)
    _expect(status == 500, f"POST /upload with Compensate timing out answered {status}: {answer}")
    stored = world.stored_version()
    left = world.version_ids(f"uploads/{body['productId']}/{body['fileName']}")
    _expect(left == [stored], f"versions left {left}, not Store's [{stored}]")
    reported = world.result_of(names.REPORT)
    _expect(reported == {"versionIds": [stored]}, f"report answered {reported}, not [{stored}]")


def session(world: World) -> None:
    """An upload session: its multipart upload exists, and reading it back says OPEN."""
    body = {"productId": f"SESSION-{uuid.uuid4().hex[:12]}", "fileName": "big.bin", "size": 1}
    status, answer = world.post("/uploads", body)
    _expect(status == 201, f"POST /uploads answered {status}: {answer}")
    uploads = world.emulator.client("s3").list_multipart_uploads(
        Bucket=world.emulator.bucket_name, Prefix=answer["s3Key"]
    )
    _expect(len(uploads.get("Uploads", [])) == 1, f"no multipart upload of {answer['s3Key']}")
    status, read = world.get(f"/uploads/{answer['uploadId']}")
    _expect(status == 200 and read.get("state") == "OPEN", f"the session reads {status} {read}")


def schedule(world: World) -> None:
    """The sweep, with its schedule's input from the template, through the Lambda API: inside
    its grace period (the template's) nothing is examined, reported or deleted."""
    assert world.emulator.assembly is not None
    sweep = world.emulator.function(names.SWEEP)
    payload = scheduled_input(world.emulator.assembly.template, sweep.logical_id)
    answer = world.emulator.client("lambda").invoke(FunctionName=sweep.name, Payload=payload)
    result = json.loads(answer["Payload"].read())
    _expect("FunctionError" not in answer, f"the sweep failed: {result}")
    counts = {name: result.get(name) for name in ("examined", "orphans", "deleted")}
    _expect(counts == dict.fromkeys(counts, 0), f"the sweep answered {result}")


def scheduled_input(template: Mapping[str, Any], function_logical_id: str) -> str:
    """The Input of the schedule that targets the function, with the context attributes
    EventBridge Scheduler fills in."""
    attributes = {
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.scheduled-time>": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.attempt-number>": "1",
    }
    for resource in template.get("Resources", {}).values():
        target = resource.get("Properties", {}).get("Target", {})
        if resource.get("Type") == "AWS::Scheduler::Schedule" and target.get("Arn") == {
            "Fn::GetAtt": [function_logical_id, "Arn"]
        }:
            text = str(target.get("Input", "{}"))
            for placeholder, value in attributes.items():
                text = text.replace(placeholder, value)
            return text
    raise CheckFailed(f"no schedule targets {function_logical_id}")


SCENARIOS: tuple[tuple[str, Callable[[World], None]], ...] = (
    ("upload", upload),
    ("compensation", compensation),
    ("orphan report", orphan_report),
    ("session", session),
    ("schedule", schedule),
)
