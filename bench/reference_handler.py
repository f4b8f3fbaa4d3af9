"""The reference for cold init: what a typical single-Lambda upload handler does at import.

It imports boto3 and creates an S3 client and a DynamoDB resource at module level (the earlier
single-Lambda design of this product, and most tutorials). The benchmark times importing this
module in a fresh interpreter beside each task's handler module.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

s3 = boto3.client("s3")
dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ.get("TABLE_NAME", "uploads"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200}
