"""The task functions: runtime, handler, limits, environment, assets, exact permissions."""

from __future__ import annotations

import json
import re

import pytest

from tasks.contract import names as contract_names
from tests.conftest import PROJECT_ROOT

from .conftest import (
    SWEEP_DELETES_GRACE_SECONDS,
    SWEEP_DELETES_MAX_OPEN_SESSIONS,
    SWEEP_DELETES_MAX_UPLOAD_BYTES,
)
from .infra_helpers import (
    asset_dir,
    layer_properties,
    logical_id_with_prefix,
    offline_session_context,
    permissions,
    render,
    role_statements,
)

# Lambda timeouts (tasks.contract.timing; test_time_budget.py checks how they nest).
TASKS = {
    "Validate": 1,
    "Store": 2,
    "Record": 1,
    "Compensate": 2,
    "Report": 2,
    "Sweep": 60,
    "Session": 2,
}
# Chosen from the benchmark's warm split (infra/functions.py explains each).
MEMORY_MB = {
    "Validate": 1769,
    "Store": 1024,
    "Record": 512,
    "Compensate": 512,
    "Report": 512,
    "Sweep": 512,
    "Session": 512,
}
DESCRIPTIONS = {title: f"Upload service: {title.lower()} task" for title in TASKS}
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
        "ledger": logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageLedgerTable"),
        "sessions": logical_id_with_prefix(
            template, "AWS::DynamoDB::Table", "StorageSessionsTable"
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
    assert props["Description"] == DESCRIPTIONS[title]
    assert "SnapStart" not in props
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": found["logs"]}}
    assert props["Role"] == {"Fn::GetAtt": [found["role"], "Arn"]}
    [layer] = props["Layers"]
    assert layer["Ref"].startswith("TasksDependencies")
    assert "FunctionName" not in props


def test_every_function_has_its_own_log_group(default_stack):
    template = default_stack.template_json
    groups = {ids(template, title)["logs"] for title in TASKS}
    assert len(groups) == len(TASKS)
    for title in TASKS:
        found = ids(template, title)
        function = template["Resources"][found["function"]]["Properties"]
        assert function["LoggingConfig"] == {"LogGroup": {"Ref": found["logs"]}}


def environments(template):
    env = {}
    for title in TASKS:
        function = template["Resources"][ids(template, title)["function"]]
        env[title] = {
            k: render(v) for k, v in function["Properties"]["Environment"]["Variables"].items()
        }
    return env


def expected_environments(
    template,
    *,
    grace_seconds="600",
    deletes="false",
    max_upload_bytes="5368709120",
    max_open_sessions="100",
):
    found = ids(template, "Store")
    bucket = {"UPLOAD_BUCKET_NAME": "${" + found["bucket"] + "}"}
    bucket_key = {"UPLOAD_KEY_ARN": "${" + found["bucket_key"] + ".Arn}"}
    metadata = {"METADATA_TABLE_NAME": "${" + found["table"] + "}"}
    claims = {"IDEMPOTENCY_TABLE_NAME": "${" + found["claims"] + "}"}
    ledger = {"LEDGER_TABLE_NAME": "${" + found["ledger"] + "}"}
    sessions = {"SESSIONS_TABLE_NAME": "${" + found["sessions"] + "}"}
    return {
        # A session's commit: validate reads the session and the parts S3 holds.
        "Validate": {**COMMON_ENV, **bucket, **sessions},
        "Store": {**COMMON_ENV, **bucket, **bucket_key, **claims, **ledger, **sessions},
        "Record": {**COMMON_ENV, **metadata, **claims, **ledger, **sessions},
        "Compensate": {**COMMON_ENV, **bucket, **metadata, **claims, **ledger, **sessions},
        "Report": {**COMMON_ENV, **bucket, **metadata, **ledger},
        # The sweep finds each request's bucket in its intent.
        "Sweep": {
            **COMMON_ENV,
            **metadata,
            **ledger,
            "ORPHAN_GRACE_SECONDS": grace_seconds,
            "SWEEP_DELETES_ORPHANS": deletes,
        },
        # The session limits (maxUploadBytes, maxOpenSessions; 5 GiB and 100 by default).
        "Session": {
            **COMMON_ENV,
            **bucket,
            **bucket_key,
            **sessions,
            "MAX_UPLOAD_BYTES": max_upload_bytes,
            "MAX_OPEN_SESSIONS": max_open_sessions,
        },
    }


def test_function_environments(default_stack):
    template = default_stack.template_json
    assert environments(template) == expected_environments(template)


def test_the_sweep_and_session_flags_reach_their_functions_environment_only(
    default_stack, sweep_deletes_stack
):
    template = sweep_deletes_stack.template_json
    assert environments(template) == expected_environments(
        template,
        grace_seconds=str(SWEEP_DELETES_GRACE_SECONDS),
        deletes="true",
        max_upload_bytes=str(SWEEP_DELETES_MAX_UPLOAD_BYTES),
        max_open_sessions=str(SWEEP_DELETES_MAX_OPEN_SESSIONS),
    )
    # Everything else about the functions is the default stack's.
    for title in TASKS:
        flagged = dict(template["Resources"][ids(template, title)["function"]]["Properties"])
        base = dict(
            default_stack.template_json["Resources"][
                ids(default_stack.template_json, title)["function"]
            ]["Properties"]
        )
        del flagged["Environment"], base["Environment"]
        assert flagged == base, title


def test_the_sweep_settings_are_what_the_sweep_task_applies(default_stack, sweep_deletes_stack):
    from datetime import timedelta

    from tasks.core.sweep import SweepMode
    from tasks.sweep import settings

    for stack, grace, mode in (
        (default_stack, timedelta(minutes=10), SweepMode.SWEEP),
        (sweep_deletes_stack, timedelta(minutes=15), SweepMode.DELETE),
    ):
        env = environments(stack.template_json)["Sweep"]
        assert settings(env) == (grace, mode)


def test_the_session_limits_are_what_the_session_task_applies(default_stack, sweep_deletes_stack):
    """The Session task refuses a session larger than the maxUploadBytes its environment holds
    (before any AWS call), and reads maxOpenSessions as the same whole number."""
    from tasks.contract import sessions
    from tasks.contract.errors import PayloadTooLarge
    from tasks.session import open_session

    for stack, max_bytes, max_open in (
        (default_stack, sessions.DEFAULT_MAX_UPLOAD_BYTES, sessions.DEFAULT_MAX_OPEN_SESSIONS),
        (sweep_deletes_stack, SWEEP_DELETES_MAX_UPLOAD_BYTES, SWEEP_DELETES_MAX_OPEN_SESSIONS),
    ):
        env = environments(stack.template_json)["Session"]
        assert int(env[contract_names.MAX_OPEN_SESSIONS]) == max_open
        ctx = offline_session_context(env)  # no client is reached: the size is refused first
        body = {"productId": "P-1", "fileName": "big.bin", "size": max_bytes + 1}
        with pytest.raises(PayloadTooLarge, match=f"limit of {max_bytes} bytes"):
            open_session(ctx, json.dumps(body))
    assert (sessions.DEFAULT_MAX_UPLOAD_BYTES, sessions.DEFAULT_MAX_OPEN_SESSIONS) == (
        5 * 1024**3,
        100,
    )


_REQUIRED_SETTING = re.compile(
    r"required_setting\((?:ctx\.)?env, names\.(\w+)\)|env\.get\(names\.(\w+)\)"
)


@pytest.mark.parametrize("title", TASKS)
def test_every_setting_a_task_reads_is_in_its_environment(default_stack, title):
    """The names.X a task module reads from ``env`` are variables of its function (an optional
    one, such as validate's allowlist, only with its flag)."""
    source = (PROJECT_ROOT / "tasks" / f"{title.lower()}.py").read_text()
    read = {
        getattr(contract_names, first or second)
        for first, second in _REQUIRED_SETTING.findall(source)
    }
    assert read  # the pattern still finds how the tasks read their settings
    optional = {contract_names.ALLOWED_CONTENT_TYPES}
    assert read - optional <= set(environments(default_stack.template_json)[title])


@pytest.mark.parametrize("title", TASKS)
def test_cold_benchmark_uses_each_functions_environment(default_stack, title):
    """bench/cold.py measures each task with its function's variables (stand-in values for the
    resources) and the very settings the template gives it."""
    from pathlib import Path

    from bench import cold

    template = default_stack.template_json
    sandbox = cold.Sandbox(code=Path("code"), layer=Path("layer"), runtime=Path("runtime"))
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
    assert len(roles) == len(TASKS)
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


def expected_permissions(found, title, *, sweep_deletes=False):
    logs = {
        ("logs:CreateLogStream", "${" + found["logs"] + ".Arn}", "null"),
        ("logs:PutLogEvents", "${" + found["logs"] + ".Arn}", "null"),
    }
    uploads = "${" + found["bucket"] + ".Arn}/uploads/*"
    # Find the versions of one request under uploads/ (tasks.core.versions): list, then HEAD.
    find_versions = {
        ("s3:GetObjectVersion", uploads, "null"),
        (
            "s3:ListBucketVersions",
            "${" + found["bucket"] + ".Arn}",
            json.dumps({"StringLike": {"s3:prefix": "uploads/*"}}),
        ),
    }
    # ... and delete them by VersionId (compensate; a retried store; the deleting sweep).
    delete_versions = {*find_versions, ("s3:DeleteObjectVersion", uploads, "null")}
    metadata = "${" + found["table"] + ".Arn}"
    claims = "${" + found["claims"] + ".Arn}"
    ledger = "${" + found["ledger"] + ".Arn}"
    sessions = "${" + found["sessions"] + ".Arn}"
    # A session's multipart upload, under uploads/.
    list_parts = ("s3:ListMultipartUploadParts", uploads, "null")
    bucket_key = {
        ("kms:GenerateDataKey", "${" + found["bucket_key"] + ".Arn}", "null"),
        ("kms:Decrypt", "${" + found["bucket_key"] + ".Arn}", "null"),
    }
    # Every table is encrypted with the table key.
    table_key = {
        ("kms:GenerateDataKey", "${" + found["table_key"] + ".Arn}", "null"),
        ("kms:Decrypt", "${" + found["table_key"] + ".Arn}", "null"),
    }
    extra = {
        # An inline file is checked in memory; a session's commit reads the session and lists
        # the parts S3 holds. Nothing else, and no write.
        "Validate": {
            ("dynamodb:GetItem", sessions, "null"),
            list_parts,
            *table_key,
        },
        "Store": {
            ("s3:PutObject", uploads, "null"),
            *bucket_key,
            *delete_versions,
            # A session's commit: read the session, move it to COMMITTING; list its parts
            # (s3:PutObject authorizes completing them).
            ("dynamodb:GetItem", sessions, "null"),
            ("dynamodb:UpdateItem", sessions, "null"),
            list_parts,
            # Claim the Idempotency-Key (conditional PutItem; GetItem as a fallback read); give
            # it back (DeleteItem) when another upload holds the item's lease.
            ("dynamodb:PutItem", claims, "null"),
            ("dynamodb:GetItem", claims, "null"),
            ("dynamodb:DeleteItem", claims, "null"),
            # One transaction: open the intent (UpdateItem), take the item's lease (PutItem).
            ("dynamodb:UpdateItem", ledger, "null"),
            ("dynamodb:PutItem", ledger, "null"),
            *table_key,
        },
        # One TransactWriteItems, authorized item by item.
        "Record": {
            # The reversible metadata write (tasks.core.rollback).
            ("dynamodb:UpdateItem", metadata, "null"),
            # The claim's completion.
            ("dynamodb:UpdateItem", claims, "null"),
            # The commit record and the lease's release.
            ("dynamodb:UpdateItem", ledger, "null"),
            ("dynamodb:DeleteItem", ledger, "null"),
            # A session's commit: COMMITTING -> COMMITTED.
            ("dynamodb:UpdateItem", sessions, "null"),
            *table_key,
        },
        "Compensate": {
            *delete_versions,
            # Release the claim (conditional DeleteItem).
            ("dynamodb:DeleteItem", claims, "null"),
            # Undo Record's write of the metadata item: read it, restore or delete it.
            ("dynamodb:GetItem", metadata, "null"),
            ("dynamodb:UpdateItem", metadata, "null"),
            ("dynamodb:DeleteItem", metadata, "null"),
            # Fence the intent (UpdateItem); release the item's lease (DeleteItem).
            ("dynamodb:UpdateItem", ledger, "null"),
            ("dynamodb:DeleteItem", ledger, "null"),
            # A failed commit: read the session, see whether its multipart upload remains, put
            # it back to OPEN or make it ABORTED.
            ("dynamodb:GetItem", sessions, "null"),
            ("dynamodb:UpdateItem", sessions, "null"),
            list_parts,
            *table_key,
        },
        # It reports, it deletes nothing: fence the intent, read the metadata item, find the
        # versions.
        "Report": {
            *find_versions,
            ("dynamodb:UpdateItem", ledger, "null"),
            ("dynamodb:GetItem", metadata, "null"),
            *table_key,
        },
        "Sweep": {
            *(delete_versions if sweep_deletes else find_versions),
            # The open intents, through their sparse index only.
            ("dynamodb:Query", ledger + "/index/OpenIntents", "null"),
            # Fence a dead PENDING intent; close a settled one.
            ("dynamodb:UpdateItem", ledger, "null"),
            ("dynamodb:GetItem", metadata, "null"),
            # Undo an uncommitted metadata write, only when deleting orphans.
            *(
                {
                    ("dynamodb:UpdateItem", metadata, "null"),
                    ("dynamodb:DeleteItem", metadata, "null"),
                }
                if sweep_deletes
                else set()
            ),
            *table_key,
        },
        "Session": {
            # Write a session, read it, abort it; count a caller's open ones through the index.
            ("dynamodb:PutItem", sessions, "null"),
            ("dynamodb:GetItem", sessions, "null"),
            ("dynamodb:UpdateItem", sessions, "null"),
            ("dynamodb:Query", sessions + "/index/OpenSessionsByCaller", "null"),
            *table_key,
            # Start (and sign part uploads with), list and abort multipart uploads; the parts
            # are encrypted with the bucket key.
            ("s3:PutObject", uploads, "null"),
            list_parts,
            ("s3:AbortMultipartUpload", uploads, "null"),
            *bucket_key,
        },
    }[title]
    return logs | XRAY | extra


@pytest.mark.parametrize("title", TASKS)
def test_role_grants_exactly_the_designed_permissions(default_stack, title):
    template = default_stack.template_json
    found = ids(template, title)
    granted = permissions(role_statements(template, found["role"]))
    assert granted == expected_permissions(found, title)


@pytest.mark.parametrize("title", TASKS)
def test_with_sweep_deletes_orphans_only_the_sweep_may_delete_more(sweep_deletes_stack, title):
    template = sweep_deletes_stack.template_json
    found = ids(template, title)
    granted = permissions(role_statements(template, found["role"]))
    assert granted == expected_permissions(found, title, sweep_deletes=True)


def test_only_the_deleting_sweep_differs_from_the_reporting_one(default_stack):
    template = default_stack.template_json
    found = ids(template, "Sweep")
    added = expected_permissions(found, "Sweep", sweep_deletes=True) - expected_permissions(
        found, "Sweep"
    )
    assert {action for action, _, _ in added} == {
        "s3:DeleteObjectVersion",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert all(resource.startswith("${Storage") for _, resource, _ in added)


def test_validate_may_only_read_a_session_and_its_parts(default_stack):
    """Validate writes nothing: beyond its logs and X-Ray, it reads a session's item (with the
    table key) and lists the parts of its multipart upload."""
    template = default_stack.template_json
    found = ids(template, "Validate")
    granted = permissions(role_statements(template, found["role"]))
    assert {action for action, _, _ in granted if action.split(":")[0] not in ("logs", "xray")} == {
        "dynamodb:GetItem",
        "s3:ListMultipartUploadParts",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert {r for a, r, _ in granted if a.startswith("dynamodb:")} == {
        "${" + found["sessions"] + ".Arn}"
    }


def test_code_asset_is_the_tasks_package_only(default_stack):
    template = default_stack.template_json
    codes = {
        json.dumps(template["Resources"][ids(template, t)["function"]]["Properties"]["Code"])
        for t in TASKS
    }
    assert len(codes) == 1  # one asset shared by every function
    directory = asset_dir(default_stack, json.loads(codes.pop()))
    assert [p.name for p in directory.iterdir()] == ["tasks"]
    modules = {p.name for p in (directory / "tasks").glob("*.py")}
    assert {f"{title.lower()}.py" for title in TASKS} | {"__init__.py"} <= modules
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


def test_assets_never_use_docker(default_stack):
    manifest = json.loads((default_stack.outdir / "UploadService.assets.json").read_text())
    assert manifest.get("dockerImages", {}) == {}
    zips = [a for a in manifest["files"].values() if a["source"].get("packaging") == "zip"]
    assert len(zips) == 2  # the tasks package and the dependencies layer
