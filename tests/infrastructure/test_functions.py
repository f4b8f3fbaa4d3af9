"""The four task functions: runtime, handler, limits, environment, assets, exact permissions."""

from __future__ import annotations

import json

import pytest

from infra import bundling

from .infra_helpers import (
    asset_dir,
    layer_properties,
    logical_id_with_prefix,
    permissions,
    render,
    role_statements,
)

TASKS = {"Validate": 2, "Store": 3, "Record": 2, "Compensate": 3}
# Chosen from the benchmark's warm split (infra/functions.py explains each).
MEMORY_MB = {"Validate": 1769, "Store": 1024, "Record": 512, "Compensate": 512}
COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME": "upload",
    "POWERTOOLS_METRICS_NAMESPACE": "UploadService",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
XRAY = {
    ("xray:PutTelemetryRecords", "*", "null"),
    ("xray:PutTraceSegments", "*", "null"),
}


def ids(template, title):
    return {
        "function": logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func"),
        "role": logical_id_with_prefix(template, "AWS::IAM::Role", f"Tasks{title}Role"),
        "logs": logical_id_with_prefix(template, "AWS::Logs::LogGroup", f"Tasks{title}LogGroup"),
        "bucket": logical_id_with_prefix(template, "AWS::S3::Bucket", "StorageUploadBucket"),
        "bucket_key": logical_id_with_prefix(template, "AWS::KMS::Key", "StorageUploadBucketKey"),
        "table": logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageMetadataTable"),
        "table_key": logical_id_with_prefix(template, "AWS::KMS::Key", "StorageMetadataTableKey"),
        "claims": logical_id_with_prefix(
            template, "AWS::DynamoDB::Table", "StorageIdempotencyTable"
        ),
    }


@pytest.mark.parametrize(("title", "timeout"), TASKS.items())
def test_function_runtime_handler_limits_tracing_and_log_group(default_stack, title, timeout):
    template = default_stack.template_json
    found = ids(template, title)
    props = template["Resources"][found["function"]]["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == f"tasks.{title.lower()}.handler"
    assert props["Timeout"] == timeout
    assert props["MemorySize"] == MEMORY_MB[title]
    assert "SnapStart" not in props
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": found["logs"]}}
    assert props["Role"] == {"Fn::GetAtt": [found["role"], "Arn"]}
    [layer] = props["Layers"]
    assert layer["Ref"].startswith("TasksDependencies")
    assert "FunctionName" not in props


def test_function_environments(default_stack):
    template = default_stack.template_json
    env = {}
    for title in TASKS:
        function = template["Resources"][ids(template, title)["function"]]
        env[title] = {
            k: render(v) for k, v in function["Properties"]["Environment"]["Variables"].items()
        }
    found = ids(template, "Store")
    assert env["Validate"] == COMMON_ENV
    claims = "${" + found["claims"] + "}"
    assert env["Store"] == {
        **COMMON_ENV,
        "UPLOAD_BUCKET_NAME": "${" + found["bucket"] + "}",
        "UPLOAD_KEY_ARN": "${" + found["bucket_key"] + ".Arn}",
        "IDEMPOTENCY_TABLE_NAME": claims,
    }
    assert env["Record"] == {
        **COMMON_ENV,
        "METADATA_TABLE_NAME": "${" + found["table"] + "}",
        "IDEMPOTENCY_TABLE_NAME": claims,
    }
    assert env["Compensate"] == {
        **COMMON_ENV,
        "UPLOAD_BUCKET_NAME": "${" + found["bucket"] + "}",
        "METADATA_TABLE_NAME": "${" + found["table"] + "}",
        "IDEMPOTENCY_TABLE_NAME": claims,
    }


def test_cold_benchmark_uses_each_functions_environment(default_stack):
    """bench/cold.py measures each task with its function's variables (stand-in values for the
    resources) and the very settings the template gives it."""
    from pathlib import Path

    from bench import cold

    template = default_stack.template_json
    sandbox = cold.Sandbox(code=Path("code"), layer=Path("layer"), runtime=Path("runtime"))
    for title in TASKS:
        variables = template["Resources"][ids(template, title)["function"]]["Properties"][
            "Environment"
        ]["Variables"]
        bench_env = cold.lambda_environment(title.lower(), sandbox)
        assert set(variables) <= set(bench_env)
        for name, value in variables.items():
            if isinstance(value, str):  # literal settings (not resource references)
                assert bench_env[name] == value, name


def test_each_function_has_its_own_role_assumable_by_lambda_only(default_stack):
    template = default_stack.template_json
    roles = {ids(template, title)["role"] for title in TASKS}
    assert len(roles) == 4
    for role_id in roles:
        role = template["Resources"][role_id]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
            }
        ]
        assert "ManagedPolicyArns" not in role


def expected_permissions(found, title):
    logs = {
        ("logs:CreateLogStream", "${" + found["logs"] + ".Arn}", "null"),
        ("logs:PutLogEvents", "${" + found["logs"] + ".Arn}", "null"),
    }
    uploads = "${" + found["bucket"] + ".Arn}/uploads/*"
    # Find and delete by VersionId the versions of one request (compensate; a retried store).
    request_versions = {
        ("s3:DeleteObjectVersion", uploads, "null"),
        ("s3:GetObjectVersion", uploads, "null"),
        (
            "s3:ListBucketVersions",
            "${" + found["bucket"] + ".Arn}",
            json.dumps({"StringLike": {"s3:prefix": "uploads/*"}}),
        ),
    }
    claims = "${" + found["claims"] + ".Arn}"
    # Both tables are encrypted with the table key.
    table_key = {
        ("kms:GenerateDataKey", "${" + found["table_key"] + ".Arn}", "null"),
        ("kms:Decrypt", "${" + found["table_key"] + ".Arn}", "null"),
    }
    extra = {
        "Validate": set(),
        "Store": {
            ("s3:PutObject", uploads, "null"),
            ("kms:GenerateDataKey", "${" + found["bucket_key"] + ".Arn}", "null"),
            ("kms:Decrypt", "${" + found["bucket_key"] + ".Arn}", "null"),
            *request_versions,
            # Claim the Idempotency-Key (conditional PutItem; GetItem as a fallback read).
            ("dynamodb:PutItem", claims, "null"),
            ("dynamodb:GetItem", claims, "null"),
            *table_key,
        },
        "Record": {
            # The reversible metadata write (tasks.core.rollback).
            ("dynamodb:UpdateItem", "${" + found["table"] + ".Arn}", "null"),
            # TransactWriteItems is authorized per item: the claim's completion is an update.
            ("dynamodb:UpdateItem", claims, "null"),
            *table_key,
        },
        # Release the claim (conditional DeleteItem); undo Record's write of the metadata item.
        "Compensate": {
            *request_versions,
            ("dynamodb:DeleteItem", claims, "null"),
            ("dynamodb:GetItem", "${" + found["table"] + ".Arn}", "null"),
            ("dynamodb:UpdateItem", "${" + found["table"] + ".Arn}", "null"),
            ("dynamodb:DeleteItem", "${" + found["table"] + ".Arn}", "null"),
            *table_key,
        },
    }[title]
    return logs | XRAY | extra


@pytest.mark.parametrize("title", TASKS)
def test_role_grants_exactly_the_designed_permissions(default_stack, title):
    template = default_stack.template_json
    found = ids(template, title)
    granted = permissions(role_statements(template, found["role"]))
    assert granted == expected_permissions(found, title)


def test_validate_has_no_aws_permission_beyond_its_logs_and_xray(default_stack):
    template = default_stack.template_json
    granted = permissions(role_statements(template, ids(template, "Validate")["role"]))
    assert {action.split(":")[0] for action, _, _ in granted} == {"logs", "xray"}


def test_code_asset_is_the_tasks_package_only(default_stack):
    template = default_stack.template_json
    codes = {
        json.dumps(template["Resources"][ids(template, t)["function"]]["Properties"]["Code"])
        for t in TASKS
    }
    assert len(codes) == 1  # one asset shared by the four functions
    directory = asset_dir(default_stack, json.loads(codes.pop()))
    assert [p.name for p in directory.iterdir()] == ["tasks"]
    modules = {p.name for p in (directory / "tasks").glob("*.py")}
    assert {"__init__.py", "validate.py", "store.py", "record.py", "compensate.py"} <= modules
    # Byte code, if any, only for the runtime's Python (infra/bundling.py: compile_bytecode).
    compiled = {p.name.split(".")[-2] for p in directory.rglob("__pycache__/*")}
    assert compiled <= {"cpython-313"}
    assert not (directory / "tasks" / "requirements.txt").exists()


def test_dependencies_layer_is_built_for_lambda(default_stack):
    props = layer_properties(default_stack)
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    site = asset_dir(default_stack, props["Content"]) / "python"
    installed = {p.name for p in site.iterdir()}
    assert {"aws_lambda_powertools", "aws_xray_sdk", "msgspec", "puremagic"} <= installed
    # The runtime's boto3/botocore must not be shadowed by a layer copy.
    assert not installed & {"boto3", "botocore", "s3transfer", "urllib3", "jmespath"}
    # Wheels for the Lambda platform, not this machine's.
    [core] = (site / "msgspec").glob("_core*.so")
    assert "aarch64" in core.name
    assert "cpython-313" in core.name


def test_layer_asset_hash_is_stable_and_independent_of_the_task_code(
    default_stack, api_key_stack, destroy_stack
):
    keys = {
        layer_properties(s)["Content"]["S3Key"]
        for s in (default_stack, api_key_stack, destroy_stack)
    }
    assert len(keys) == 1
    template = default_stack.template_json
    code = template["Resources"][ids(template, "Validate")["function"]]["Properties"]["Code"]
    assert code["S3Key"] not in keys


def test_layer_hash_is_the_hash_of_the_requirements_file(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("msgspec==0.22.0\n")
    monkeypatch.setattr(bundling, "REQUIREMENTS_FILE", requirements)
    first = bundling.dependencies_hash()
    assert bundling.dependencies_hash() == first
    requirements.write_text("msgspec==0.22.1\n")
    assert bundling.dependencies_hash() != first


def test_assets_never_use_docker(default_stack):
    manifest = json.loads((default_stack.outdir / "UploadService.assets.json").read_text())
    assert manifest.get("dockerImages", {}) == {}
    zips = [a for a in manifest["files"].values() if a["source"].get("packaging") == "zip"]
    assert len(zips) == 2  # the tasks package and the dependencies layer


def test_record_gives_up_on_dynamodb_strictly_before_its_lambda_timeout():
    """A Record that outlives its SDK budget must fail as a task error, never time out after a
    write that landed (Compensate undoes such a write, but only a clean failure is certain)."""
    from infra.functions import RECORD
    from tasks.contract.timing import RECORD_SDK

    assert RECORD_SDK.worst_case_seconds() < RECORD.timeout_seconds
    assert TASKS["Record"] == RECORD.timeout_seconds
