"""Cold init: import + module-level set-up of a handler module in a fresh interpreter.

Each sample is a new ``python -I -S -B`` process whose only import roots are what the function
has on Lambda: the code asset (``tasks/`` copied without byte code, as the asset ships), the
dependencies layer (the lock, ``tasks/requirements.lock``, installed for this machine with
``--require-hashes --no-deps``, exactly as ``infra.bundling`` builds the real one)
and the runtime's boto3 (linked from this environment, byte code included, as the runtime ships
it). The environment is a Lambda one (``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_NAME``,
region, the function's own variables), so the X-Ray SDK and Powertools take their Lambda paths.

The child times ``importlib.import_module`` (the init phase) and then, for the tasks that call
AWS, the creation of the clients their first invocation creates (``aws.client``): the reference
handler creates its clients at import, so ``init + clients`` is the like-for-like figure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from infra import bundling, functions, layer_lock
from infra import lambda_python as lambda_python_
from local.lambda_runtime import runtime_variables
from tasks.contract import names

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
BUILD_DIR: Final = PROJECT_ROOT / ".build"
REFERENCE: Final = "reference_handler"
RUNTIME_PACKAGES: Final = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "dateutil",
    "six",
)

# The clients each task's first invocation creates (none for validate checking an inline file;
# every other task writes the ledger or a session; store, compensate, report, the sweep and the
# session task read or write the bucket too).
TASK_CLIENTS: Final[dict[str, tuple[str, ...]]] = {
    names.VALIDATE: (),
    names.STORE: ("dynamodb", "s3"),
    names.RECORD: ("dynamodb",),
    names.COMPENSATE: ("dynamodb", "s3"),
    names.REPORT: ("dynamodb", "s3"),
    names.SWEEP: ("dynamodb", "s3"),
    names.SESSION: ("dynamodb", "s3"),
}
# Stand-ins for the resource names and ARNs the template fills in per function (the same
# variables: tests/infrastructure/test_functions.py checks it).
_BUCKET: Final = {names.UPLOAD_BUCKET_NAME: "bench-bucket"}
_METADATA: Final = {names.METADATA_TABLE_NAME: "bench-table"}
_CLAIMS: Final = {names.IDEMPOTENCY_TABLE_NAME: "bench-claims"}
_LEDGER: Final = {names.LEDGER_TABLE_NAME: "bench-ledger"}
_SESSIONS: Final = {names.SESSIONS_TABLE_NAME: "bench-sessions"}
_KEY: Final = {names.UPLOAD_KEY_ARN: "arn:aws:kms:us-east-1:123456789012:key/bench"}
TASK_ENVIRONMENT: Final[dict[str, dict[str, str]]] = {
    names.VALIDATE: {**_BUCKET, **_SESSIONS},
    names.STORE: {**_BUCKET, **_KEY, **_CLAIMS, **_LEDGER, **_SESSIONS},
    names.RECORD: {**_METADATA, **_CLAIMS, **_LEDGER, **_SESSIONS},
    names.COMPENSATE: {**_BUCKET, **_METADATA, **_CLAIMS, **_LEDGER, **_SESSIONS},
    names.REPORT: {**_BUCKET, **_METADATA, **_LEDGER},
    names.SWEEP: {
        **_METADATA,
        **_LEDGER,
        names.ORPHAN_GRACE_SECONDS: "600",
        names.SWEEP_DELETES_ORPHANS: "false",
    },
    names.SESSION: {
        **_BUCKET,
        **_KEY,
        **_SESSIONS,
        names.MAX_UPLOAD_BYTES: "5368709120",
        names.MAX_OPEN_SESSIONS: "100",
    },
}

# Runs in the child: time the import, then the first clients; print one JSON line.
PROBE: Final = """
import json, sys, time
t0 = time.perf_counter()
roots, module, clients = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = roots
import importlib, os
importlib.import_module(module)
t1 = time.perf_counter()
if clients:
    from tasks.core import aws
    for service in clients:
        aws.client(service, os.environ)
t2 = time.perf_counter()
print(json.dumps({"init": t1 - t0, "clients": t2 - t1, "modules": len(sys.modules)}))
"""


@dataclass(frozen=True)
class Sandbox:
    code: Path
    layer: Path
    runtime: Path

    @property
    def roots(self) -> list[str]:
        return [str(self.code), str(self.layer), str(self.runtime)]


@dataclass(frozen=True)
class ColdResult:
    name: str
    init_ms: list[float]
    clients_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.init_ms)

    @property
    def max(self) -> float:
        return max(self.init_ms)

    @property
    def total_median(self) -> float:
        return statistics.median(i + c for i, c in zip(self.init_ms, self.clients_ms, strict=True))


def lambda_python() -> str:
    """The runtime's Python version when this machine has it (as the layer is built), else ours."""
    return lambda_python_.lambda_python() or sys.executable


def _install(python: str, name: str, requirements: list[str], *, compile_: bool) -> Path:
    """``pip install --target`` for ``python``, cached under .build/ by inputs."""
    version = subprocess.run(  # noqa: S603
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    inputs = json.dumps([bundling.dependencies_hash(), version, requirements, compile_])
    cached = BUILD_DIR / f"bench-{name}-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}"
    target = cached / "python"
    if not (cached / ".complete").exists():
        shutil.rmtree(cached, ignore_errors=True)
        command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += ["--only-binary=:all:", "--no-compile", *requirements]
        subprocess.run([*command, "--target", str(target)], check=True, capture_output=True)  # noqa: S603
        shutil.rmtree(target / "bin", ignore_errors=True)
        if compile_:
            lambda_python_.compile_bytecode(target, python)
        (cached / ".complete").write_text("ok")
    return target


def build_sandbox(workdir: Path, python: str | None = None) -> Sandbox:
    """The code asset, the layer and the runtime's boto3 under ``workdir``, as Lambda has them."""
    python = python or lambda_python()
    code = workdir / "code"
    shutil.rmtree(code, ignore_errors=True)
    bundling.CopyPackage(bundling.TASKS_DIR).try_bundle(str(code))  # byte-compiled if it is
    shutil.copy2(Path(__file__).with_name(f"{REFERENCE}.py"), code / f"{REFERENCE}.py")
    shipped_bytecode = lambda_python_.lambda_python() is not None
    locked = ["--no-deps", "--require-hashes", "-r", str(layer_lock.LOCK_FILE)]
    layer = _install(python, "layer", locked, compile_=shipped_bytecode)
    if python == sys.executable:  # this environment's boto3, with its byte code
        runtime = workdir / "runtime"
        shutil.rmtree(runtime, ignore_errors=True)
        runtime.mkdir(parents=True)
        for package in RUNTIME_PACKAGES:
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                raise RuntimeError(f"{package} is not installed in this environment")
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            (runtime / source.name).symlink_to(source)
    else:  # the runtime ships boto3 byte-compiled: install this environment's version so
        pins = [f"{d}=={metadata.version(d)}" for d in ("boto3", "botocore", "s3transfer")]
        runtime = _install(python, "runtime", pins, compile_=True)
    return Sandbox(code=code, layer=layer, runtime=runtime)


def lambda_environment(name: str, sandbox: Sandbox) -> dict[str, str]:
    """What the Lambda runtime sets (the parts the libraries look at) plus the function's own."""
    return {
        **runtime_variables(
            handler=f"tasks.{name}.handler" if name != REFERENCE else f"{REFERENCE}.handler",
            code_dir=sandbox.code,
            runtime_dir=sandbox.runtime,
            memory_mb=1024,
            xray_daemon="169.254.79.129:2000",
            path=os.environ.get("PATH", "/usr/bin:/bin"),
        ),
        "AWS_LAMBDA_FUNCTION_NAME": f"UploadService-{name}",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        # The functions' own environment: the same mapping infra.functions gives every
        # function (Powertools settings), then the task's resources.
        **functions.COMMON_ENVIRONMENT,
        **TASK_ENVIRONMENT.get(name, {}),
    }


def sample(name: str, sandbox: Sandbox, python: str) -> tuple[float, float]:
    """One cold init of ``tasks.<name>`` (or the reference): (init ms, first clients ms)."""
    module = REFERENCE if name == REFERENCE else f"tasks.{name}"
    clients = list(TASK_CLIENTS.get(name, ()))
    command = [python, "-I", "-S", "-B", "-c", PROBE, json.dumps(sandbox.roots), module]
    result = subprocess.run(  # noqa: S603
        [*command, json.dumps(clients)],
        capture_output=True,
        text=True,
        check=False,
        cwd=sandbox.code,
        env=lambda_environment(name, sandbox),
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold init of {module} failed:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return figures["init"] * 1000, figures["clients"] * 1000


def measure(names: list[str], sandbox: Sandbox, runs: int, python: str) -> dict[str, ColdResult]:
    """``runs`` samples of each name, interleaved (so drift in machine load hits all alike)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(runs):
        for name in names:
            samples[name].append(sample(name, sandbox, python))
    return {
        name: ColdResult(name, [s[0] for s in found], [s[1] for s in found])
        for name, found in samples.items()
    }
