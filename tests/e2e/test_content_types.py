"""The content-type rules end to end, with the default context (any content type allowed)."""

from __future__ import annotations

from tests.unit.test_content_types import pdf, png

from .conftest import make_upload
from .test_upload import assert_error, assert_nothing_stored


def test_the_type_is_detected_from_the_bytes(client):
    upload = make_upload(png(), fileName="pixel.png")
    del upload.body["contentType"]
    response = client.post(upload.body)
    assert response.status_code == 200, response.text
    assert response.json()["contentType"] == "image/png"
    [version] = client.versions(upload.key)
    head = client.s3.head_object(
        Bucket=client.bucket, Key=upload.key, VersionId=version["VersionId"]
    )
    assert head["ContentType"] == "image/png"


def test_a_declared_type_the_bytes_contradict_is_a_400_and_nothing_is_stored(client):
    upload = make_upload(pdf(), fileName="report.png", contentType="image/png")
    body = assert_error(client.post(upload.body), 400, "ValidationError")
    assert body["error"]["details"] == [
        {
            "field": "contentType",
            "message": "is 'image/png' but the file's bytes are application/pdf",
        }
    ]
    assert_nothing_stored(client, upload.body["productId"])
