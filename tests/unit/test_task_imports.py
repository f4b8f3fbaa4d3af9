"""What each task loads at cold start: only what it uses (README "Performance").

Each case imports a task's handler module in a fresh interpreter, with tracing active as on Lambda
when ``lambda_like``, creates the clients its first invocation creates, and lists the modules
that were loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {
    "validate": [],
    "store": ["s3", "dynamodb"],
    "record": ["dynamodb"],
    "compensate": ["s3", "dynamodb"],
}
PROBE = """
import importlib, json, os, sys
importlib.import_module("tasks." + sys.argv[1])
for service in json.loads(sys.argv[2]):
    from tasks.core import aws
    aws.client(service, os.environ)
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(task: str, *, lambda_like: bool) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAMBDA_"))}
    env |= {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    if lambda_like:  # tracing active, as on Lambda
        env |= {"LAMBDA_TASK_ROOT": str(PROJECT_ROOT), "AWS_LAMBDA_FUNCTION_NAME": task}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, task, json.dumps(CLIENTS[task])],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(completed.stdout))


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("lambda_like", [False, True])
def test_validate_loads_no_sdk_and_no_tracer(lambda_like: bool) -> None:
    modules = loaded_modules("validate", lambda_like=lambda_like)
    assert not packages(modules) & {"boto3", "aws_xray_sdk", "puremagic"}
    # (Powertools reads botocore's version for its user agent: the package, not the SDK.)
    assert not modules & {"botocore.session", "botocore.client"}
    assert not modules & {"tasks.core.aws", "tasks.core.tracing"}


@pytest.mark.parametrize("task", ["store", "record", "compensate"])
def test_aws_tasks_use_botocore_without_boto3(task: str) -> None:
    modules = loaded_modules(task, lambda_like=True)
    assert "botocore.client" in modules
    assert not packages(modules) & {"boto3", "s3transfer", "puremagic"}


@pytest.mark.parametrize("task", ["store", "record", "compensate"])
def test_the_tracer_patches_botocore_only(task: str) -> None:
    modules = loaded_modules(task, lambda_like=True)
    patched = {m for m in modules if m.startswith("aws_xray_sdk.ext.") and m.endswith(".patch")}
    assert patched == {"aws_xray_sdk.ext.botocore.patch"}
