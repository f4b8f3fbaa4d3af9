"""The template's Python functions as their arm64 sandboxes run them: each one's handler, its
assets in the cloud assembly (the template's ``Code`` and ``Layers``, looked up in the asset
manifest) and the environment the Lambda runtime gives it.

The environment starts from local mode's (:meth:`local.lambda_runtime.LambdaRuntime.environment`:
the template's variables resolved to the emulator's names, its endpoint, dummy credentials and
``SDK_TIMEOUT_SCALE``, which :class:`Emulated` sets) and adds what the Lambda runtime sets
around a handler.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.lambda_runtime import runtime_variables
from local.saturation import Saturation
from local.template import FunctionSpec
from tasks.core.deadline import MAX_SCALE

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
X_RAY_DAEMON = "127.0.0.1:2000"  # nothing listens: segments sent there are dropped


class AssetError(Exception):
    """A function's code or layer is not an asset of the cloud assembly, or not one it can run."""


class Emulated(Saturation):
    """Under qemu every task is many times slower than on AWS, all the time: task timeouts and,
    through ``SDK_TIMEOUT_SCALE``, the tasks' SDK timeouts and deadline stretch by the most the
    tasks allow, as local mode stretches them when saturated (local.saturation)."""

    def factor(self) -> float:
        return MAX_SCALE


@dataclass(frozen=True)
class GuestFunction:
    spec: FunctionSpec  # name, ARN, handler, environment resolved to local names, timeout
    memory_mb: int
    code: Path  # the code asset: Lambda's /var/task
    layers: tuple[Path, ...]  # each layer asset's python/ directory, in the template's order

    @property
    def import_path(self) -> list[str]:
        """What comes before the standard library: the code, then the layers (a later layer's
        files replace an earlier one's in /opt, so it comes first)."""
        return [str(self.code), *(str(layer) for layer in reversed(self.layers))]


def python_functions(
    specs: list[FunctionSpec], template: Mapping[str, Any], outdir: Path, assets: Mapping[str, Any]
) -> list[GuestFunction]:
    """Every Python function of the template (``specs``: local mode's reading of it)."""
    resources = template.get("Resources", {})
    functions = []
    for spec in specs:
        props = resources[spec.logical_id].get("Properties", {})
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python"):
            continue
        architectures = props.get("Architectures", ["x86_64"])
        if runtime != RUNTIME or architectures != [ARCHITECTURE]:
            raise AssetError(
                f"{spec.logical_id} runs {runtime} on {'/'.join(architectures)}: "
                f"the target is {RUNTIME} on {ARCHITECTURE}"
            )
        layers = [_layer(ref, resources, outdir, assets) for ref in props.get("Layers", [])]
        functions.append(
            GuestFunction(
                spec=spec,
                memory_mb=int(props.get("MemorySize", 128)),
                code=asset_dir(props.get("Code", {}), outdir, assets),
                layers=tuple(layer / "python" for layer in layers),
            )
        )
    return functions


def _layer(
    ref: object, resources: Mapping[str, Any], outdir: Path, assets: Mapping[str, Any]
) -> Path:
    logical_id = ref.get("Ref") if isinstance(ref, dict) else None
    layer = resources.get(logical_id) if isinstance(logical_id, str) else None
    if layer is None or layer.get("Type") != "AWS::Lambda::LayerVersion":
        raise AssetError(f"layer {ref!r} is not a layer of this template")
    return asset_dir(layer.get("Properties", {}).get("Content", {}), outdir, assets)


def asset_dir(location: Mapping[str, Any], outdir: Path, assets: Mapping[str, Any]) -> Path:
    """The directory the synth staged for the asset a ``Code``/``Content`` names by S3 key."""
    key = location.get("S3Key")
    for entry in assets.get("files", {}).values():
        object_keys = {d.get("objectKey") for d in entry.get("destinations", {}).values()}
        if key in object_keys:
            source = entry.get("source", {})
            directory = outdir / str(source.get("path"))
            if source.get("packaging") != "zip" or not directory.is_dir():
                raise AssetError(f"asset {key} is not a directory in {outdir}")
            return directory
    raise AssetError(f"no asset with key {key!r} in {outdir}'s asset manifest")


def lambda_environment(
    function: GuestFunction, local_env: Mapping[str, str], runtime_dir: Path
) -> dict[str, str]:
    """``local_env`` (local mode's environment of the function) plus what the Lambda runtime
    sets (``_X_AMZN_TRACE_ID`` is set per invocation, by the guest)."""
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    return {
        **local_env,
        **runtime_variables(
            handler=function.spec.handler,
            code_dir=function.code,
            runtime_dir=runtime_dir,
            memory_mb=function.memory_mb,
            xray_daemon=X_RAY_DAEMON,
            path="/usr/local/bin:/usr/bin:/bin",
        ),
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
    }
