"""The template's Python functions as the arm64 sandboxes run them (verify.functions): each
one's assets found through the template and the asset manifest, and its environment: the
template's variables resolved to local names, plus what the Lambda runtime sets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from local import template as tpl
from local.lambda_runtime import LambdaRuntime
from verify.functions import (
    AssetError,
    Emulated,
    GuestFunction,
    lambda_environment,
    python_functions,
)

STACK = "Stack"
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Deps": {
            "Type": "AWS::Lambda::LayerVersion",
            "Properties": {"Content": {"S3Bucket": "assets", "S3Key": "layer1.zip"}},
        },
        "Extra": {
            "Type": "AWS::Lambda::LayerVersion",
            "Properties": {"Content": {"S3Bucket": "assets", "S3Key": "layer2.zip"}},
        },
        "StoreFn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "tasks.store.handler",
                "Runtime": "python3.13",
                "Architectures": ["arm64"],
                "MemorySize": 1024,
                "Timeout": 2,
                "Code": {"S3Bucket": "assets", "S3Key": "code.zip"},
                "Layers": [{"Ref": "Deps"}, {"Ref": "Extra"}],
                "Environment": {"Variables": {"BUCKET": {"Ref": "Bucket"}, "MODE": "strict"}},
            },
        },
        "AutoDeleteFn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "index.handler",
                "Runtime": "nodejs20.x",
                "Code": {"S3Bucket": "assets", "S3Key": "node.zip"},
            },
        },
    }
}


def _entry(name: str) -> dict[str, Any]:
    return {
        "source": {"path": f"asset.{name}", "packaging": "zip"},
        "destinations": {"current": {"bucketName": "assets", "objectKey": f"{name}.zip"}},
    }


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    for name in ("code", "layer1", "layer2", "node"):
        (tmp_path / f"asset.{name}").mkdir()
    return tmp_path


ASSETS = {"files": {f"hash-{n}": _entry(n) for n in ("code", "layer1", "layer2", "node")}}


def functions(template: dict[str, Any], outdir: Path) -> list[GuestFunction]:
    specs = tpl.functions(tpl.Resolver(template, STACK))
    return python_functions(specs, template, outdir, ASSETS)


def test_only_the_python_functions_are_taken_with_their_own_assets(outdir: Path) -> None:
    [store] = functions(TEMPLATE, outdir)
    assert store.spec.handler == "tasks.store.handler"
    assert store.memory_mb == 1024
    assert store.code == outdir / "asset.code"
    assert store.layers == (outdir / "asset.layer1" / "python", outdir / "asset.layer2" / "python")
    # A later layer's files replace an earlier one's in /opt: it comes first.
    assert store.import_path == [
        str(outdir / "asset.code"),
        str(outdir / "asset.layer2" / "python"),
        str(outdir / "asset.layer1" / "python"),
    ]


def _changed(path: list[str], value: Any) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    target = template["Resources"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return template


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["StoreFn", "Properties", "Architectures"], ["x86_64"], "on x86_64: the target is"),
        (["StoreFn", "Properties", "Runtime"], "python3.12", "runs python3.12"),
        (["StoreFn", "Properties", "Layers"], ["arn:aws:lambda:::layer:x:1"], "is not a layer"),
        (["StoreFn", "Properties", "Code", "S3Key"], "gone.zip", "no asset with key 'gone.zip'"),
    ],
)
def test_a_function_this_target_cannot_run_is_refused(
    outdir: Path, path: list[str], value: Any, message: str
) -> None:
    with pytest.raises(AssetError, match=message):
        functions(_changed(path, value), outdir)


def test_the_environment_is_the_templates_resolved_plus_what_lambda_sets(outdir: Path) -> None:
    [store] = functions(TEMPLATE, outdir)
    runtime = LambdaRuntime(
        [store.spec], aws_endpoint="http://127.0.0.1:4566", saturation=Emulated()
    )
    env = lambda_environment(store, runtime.environment(store.spec), Path("/cache/boto3"))
    assert env["BUCKET"] == "stack-bucket"  # the Ref, as local mode names the bucket
    assert env["MODE"] == "strict"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_REGION"]) == ("local", "us-east-1")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Stack-StoreFn"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/Stack-StoreFn"
    assert env["_HANDLER"] == "tasks.store.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["LAMBDA_TASK_ROOT"] == str(outdir / "asset.code")
    assert env["LAMBDA_RUNTIME_DIR"] == "/cache/boto3"
    # Emulation is slow: the tasks' SDK timeouts and deadline stretch by the most they allow.
    assert env["SDK_TIMEOUT_SCALE"] == "16.00"


def test_nothing_of_this_process_environment_leaks_in(
    outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/host/site-packages")
    monkeypatch.setenv("VIRTUAL_ENV", "/host/venv")
    [store] = functions(TEMPLATE, outdir)
    runtime = LambdaRuntime([store.spec], aws_endpoint="http://127.0.0.1:1")
    env = lambda_environment(store, runtime.environment(store.spec), Path("/sdk"))
    runtime_set = {"LANG", "PATH", "TZ", "SDK_TIMEOUT_SCALE"}
    others = {k for k in env if k not in {"BUCKET", "MODE"} | runtime_set}
    assert all(k.startswith(("AWS_", "LAMBDA_", "_HANDLER")) for k in others), others
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
