"""Powertools Tracer for the tasks that call AWS (store, record, compensate).

Kept apart from ``observability`` because creating a Tracer imports the X-Ray SDK (about a
quarter of a second, and botocore's session machinery): the validate task, which calls no AWS
service, does without it; Lambda's active tracing still records its invocations.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Tracer

from tasks.contract import names

# Active only on Lambda; patches botocore (only: the default patches every library the X-Ray SDK
# knows, importing each) so every S3 / DynamoDB call becomes a subsegment.
tracer = Tracer(
    service=os.environ.get(names.POWERTOOLS_SERVICE_NAME) or names.SERVICE,
    patch_modules=("botocore",),
)
