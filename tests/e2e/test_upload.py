"""Every outcome of the contract (docs/api.md) that can occur locally, checked end to end:
status, body, then the S3 object versions and DynamoDB items the request left behind."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import Any

from tasks.contract.errors import INTERNAL_ERROR_MESSAGE, ORPHAN_REPORTED_MESSAGE
from tasks.contract.limits import MAX_FILE_BYTES
from tests.oracle import SUCCESS_FIELDS

from .conftest import make_upload


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["requestId"], str)
    assert len(body["requestId"]) >= 32
    for leaked in ("Traceback", "arn:aws", "botocore", "Injected fault"):
        assert leaked not in response.text
    return body


def assert_nothing_stored(client, product_id: str) -> None:
    assert client.versions(f"uploads/{product_id}/") == []
    assert client.items(product_id) == []


def test_success_stores_exactly_one_version_and_one_item(client):
    upload = make_upload()
    response = client.post(upload.body)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == SUCCESS_FIELDS
    assert body["message"] == "File uploaded successfully"
    assert body["productId"] == upload.body["productId"]
    assert body["productName"] == "Test Product"
    assert body["price"] == 99.99
    assert body["fileName"] == "test-file.txt"
    assert body["contentType"] == "text/plain"
    assert body["size"] == len(upload.data)
    assert body["sha256"] == upload.sha256
    assert body["s3Key"] == upload.key
    assert body["requestId"] == response.headers["x-amzn-RequestId"]

    versions = client.versions(upload.key)
    assert [v["VersionId"] for v in versions] == [body["versionId"]]
    assert client.object_bytes(upload.key, body["versionId"]) == upload.data
    head = client.s3.head_object(Bucket=client.bucket, Key=upload.key, VersionId=body["versionId"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ContentType"] == "text/plain"

    [item] = client.items(upload.body["productId"])
    assert item["productName"] == "Test Product"
    assert item["price"] == Decimal("99.99")
    assert item["versionId"] == body["versionId"]
    assert item["sha256"] == upload.sha256
    assert item["size"] == len(upload.data)
    assert item["s3Key"] == upload.key


def test_execution_is_named_after_the_request_id(client, emulator):
    response = client.post(make_upload().body)
    assert response.status_code == 200
    sfn = emulator.client("stepfunctions")
    [machine] = [m for m in emulator.state_machines if "Workflow" in m.arn]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine.arn)["executions"]]
    assert response.json()["requestId"] in names


INVALID_BODIES = {
    "missing price": lambda b: b.pop("price"),
    "price as a string": lambda b: b.update(price="99.99"),
    "price as a boolean": lambda b: b.update(price=True),
    "negative price": lambda b: b.update(price=-1),
    "unknown field": lambda b: b.update(owner="me"),
    "product id with a slash": lambda b: b.update(productId=b["productId"] + "/x"),
    "bad base64": lambda b: b.update(fileContent="not base64!!"),
    "empty file": lambda b: b.update(fileContent=""),
    "traversal file name": lambda b: b.update(fileName=".."),
    "control character in product name": lambda b: b.update(productName="a\u0007b"),
}


def test_each_kind_of_validation_error_is_400_and_stores_nothing(client):
    for kind, mutate in INVALID_BODIES.items():
        upload = make_upload()
        mutate(upload.body)
        response = client.post(upload.body)
        body = assert_error(response, 400, "ValidationError")
        assert body["error"]["message"], kind
        product_id = str(upload.body["productId"]).split("/")[0]
        assert_nothing_stored(client, product_id)


def test_body_that_is_not_json_or_not_an_object_is_400(client):
    for raw in (b"{not json", b"[1, 2]", b"null"):
        assert_error(client.post(raw=raw), 400, "ValidationError")


def test_file_over_max_file_bytes_is_413_with_the_limit(client):
    upload = make_upload(data=b"x" * (MAX_FILE_BYTES + 1))
    body = assert_error(client.post(upload.body), 413, "PayloadTooLarge")
    assert str(MAX_FILE_BYTES) in body["error"]["message"].replace(",", "")
    assert_nothing_stored(client, upload.body["productId"])


def test_request_over_the_workflow_input_limit_is_413(client):
    # Valid at the edge (10 MB) but more than a Step Functions execution input may carry.
    upload = make_upload(data=b"y" * 300_000)
    assert_error(client.post(upload.body), 413, "PayloadTooLarge")
    assert_nothing_stored(client, upload.body["productId"])


def test_request_over_10_mb_is_rejected_at_the_edge(client):
    upload = make_upload()
    upload.body["fileContent"] = base64.b64encode(b"z" * (8 * 1024 * 1024)).decode()
    assert_error(client.post(upload.body), 413, "PayloadTooLarge")
    assert_nothing_stored(client, upload.body["productId"])


def test_record_failure_deletes_the_new_version_and_keeps_the_previous_one(client, emulator):
    first = make_upload(data=b"first version")
    ok = client.post(first.body)
    assert ok.status_code == 200, ok.text
    [item_before] = client.items(first.body["productId"])

    emulator.faults.add("dynamodb", "TransactWriteItems", task="record")
    second = make_upload(data=b"second version", productId=first.body["productId"])
    body = assert_error(client.post(second.body), 500, "InternalError")
    assert body["error"]["message"] == INTERNAL_ERROR_MESSAGE

    versions = client.versions(first.key)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(ok.json()["versionId"], True)]
    assert "DeleteMarker" not in json.dumps(versions, default=str)
    current = client.s3.get_object(Bucket=client.bucket, Key=first.key)["Body"].read()
    assert current == b"first version"
    assert client.items(first.body["productId"]) == [item_before]


def test_store_failure_is_500_and_stores_nothing(client, emulator):
    emulator.faults.add("s3", "PutObject")
    upload = make_upload()
    body = assert_error(client.post(upload.body), 500, "InternalError")
    assert body["error"]["message"] == INTERNAL_ERROR_MESSAGE
    assert_nothing_stored(client, upload.body["productId"])


def test_failed_compensation_is_500_and_the_orphan_is_logged(client, emulator):
    emulator.faults.add("dynamodb", "TransactWriteItems", task="record")
    emulator.faults.add("s3", "DeleteObject")
    upload = make_upload()
    response = client.post(upload.body)
    body = assert_error(response, 500, "InternalError")
    assert body["error"]["message"] == ORPHAN_REPORTED_MESSAGE
    assert client.items(upload.body["productId"]) == []

    [orphan] = client.versions(upload.key)  # the version compensation could not delete
    logs = emulator.client("logs")
    events = logs.filter_log_events(
        logGroupName=emulator.function("compensate").log_group,
        filterPattern=f'"{body["requestId"]}"',
    )["events"]
    reports = [e["message"] for e in events if "ORPHAN" in e["message"].upper()]
    assert reports, [e["message"] for e in events]
    assert any(orphan["VersionId"] in r and upload.key in r for r in reports), reports


def test_reupload_of_the_same_key_adds_a_version_and_the_item_points_at_it(client):
    first = make_upload(data=b"one")
    second = make_upload(data=b"two", productId=first.body["productId"])
    r1, r2 = client.post(first.body), client.post(second.body)
    assert (r1.status_code, r2.status_code) == (200, 200), (r1.text, r2.text)

    versions = {v["VersionId"]: v for v in client.versions(first.key)}
    assert set(versions) == {r1.json()["versionId"], r2.json()["versionId"]}
    assert versions[r2.json()["versionId"]]["IsLatest"]
    assert client.object_bytes(first.key, r1.json()["versionId"]) == b"one"
    assert client.object_bytes(first.key, r2.json()["versionId"]) == b"two"
    [item] = client.items(first.body["productId"])
    assert item["versionId"] == r2.json()["versionId"]
    assert item["sha256"] == second.sha256


def test_transient_error_is_absorbed_by_the_retry(client, emulator):
    store = emulator.function("store").name
    assert emulator.runtime is not None
    before = emulator.runtime.invocation_count[store]
    fault = emulator.faults.add("s3", "PutObject", "SlowDown", count=1)
    upload = make_upload()
    started = time.monotonic()
    response = client.post(upload.body)

    assert response.status_code == 200, response.text
    assert fault.injected == 1
    assert emulator.runtime.invocation_count[store] - before == 2  # the Retry ran Store again
    assert time.monotonic() - started >= 1.0  # after the Retry's interval
    assert [v["VersionId"] for v in client.versions(upload.key)] == [response.json()["versionId"]]
    assert client.items(upload.body["productId"])[0]["versionId"] == response.json()["versionId"]


def test_a_delayed_put_object_slows_the_upload_and_it_still_succeeds(client, emulator):
    warm_up = client.post(make_upload().body)  # a cold first upload could take the delay alone
    assert warm_up.status_code == 200, warm_up.text
    store = emulator.function("store").name
    assert emulator.runtime is not None
    before = emulator.runtime.invocation_count[store]
    delay = emulator.faults.delay("s3", "PutObject", 0.5)  # far within Store's 3 s timeout
    upload = make_upload()
    started = time.monotonic()
    response = client.post(upload.body)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert delay.injected == 1
    assert elapsed >= delay.seconds  # no upper bound: the machine may be busy
    assert emulator.runtime.invocation_count[store] - before == 1  # within Store's timeout
    assert [v["VersionId"] for v in client.versions(upload.key)] == [response.json()["versionId"]]
    assert client.items(upload.body["productId"])[0]["versionId"] == response.json()["versionId"]


def test_wrong_content_type_is_415(client):
    upload = make_upload()
    response = client.post(
        raw=json.dumps(upload.body).encode(), headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "UnsupportedMediaType")
    assert_nothing_stored(client, upload.body["productId"])


def test_json_content_type_with_charset_is_accepted(client):
    upload = make_upload()
    response = client.post(
        raw=json.dumps(upload.body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text


def test_unknown_path_or_method_is_403(client, emulator):
    import requests

    for method, path in (("POST", "/nope"), ("GET", "/upload"), ("POST", "/")):
        response = requests.request(method, emulator.base_url + path, json={}, timeout=10)
        assert_error(response, 403, "Forbidden")
