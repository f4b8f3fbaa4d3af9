"""Lambda assets built on this machine, without Docker.

* The task code asset is the ``tasks/`` package copied under its own name, so handlers import as
  ``tasks.validate`` on Lambda exactly as they do in the tests.
* The dependencies layer is ``pip install -r tasks/requirements.txt`` for CPython 3.13 on
  manylinux2014 aarch64 (wheels only), minus the distributions the Lambda Python runtime already
  ships (boto3 and its dependencies: a layer copy of botocore would shadow the runtime's and could
  mismatch its boto3). Its asset hash is the hash of the requirements file plus these build
  parameters, so it is stable between synths; the build is cached under ``.build/``.
* Both are byte-compiled for the runtime's Python (``LAMBDA_PYTHON_VERSION``) when an interpreter
  of that version is found on this machine (``LAMBDA_PYTHON`` names one explicitly): Lambda's
  ``/var/task`` and ``/opt`` are read-only, so without shipped ``.pyc`` files every cold start
  compiles Powertools, the X-Ray SDK and the tasks from source (measured by ``python -m bench``:
  about half of the cold init). ``unchecked-hash`` byte code is used whatever the files'
  timestamps in the zip. Without such an interpreter the assets ship source only (slower cold
  starts, same behaviour); the layer's hash records which it is.

Both implement ``ILocalBundling`` and never return False: a failed local build raises, so CDK
never falls back to a Docker image.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = PROJECT_ROOT / "tasks"
REQUIREMENTS_FILE = TASKS_DIR / "requirements.txt"
BUILD_CACHE_DIR = PROJECT_ROOT / ".build"

PIP_PLATFORM_ARGS: tuple[str, ...] = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.13",
    "--only-binary=:all:",
)
# Shipped by the Lambda Python runtime (boto3 and everything it depends on).
RUNTIME_PROVIDED_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
_IGNORED_NAMES = ("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", "requirements.txt")
TASKS_ASSET_EXCLUDE: list[str] = ["**/__pycache__", "**/*.pyc", "requirements.txt"]
# Never pulled or run: every bundler below succeeds locally or raises.
_NO_DOCKER = DockerImage.from_registry("local-bundling-only-docker-is-never-used")
_BUILD_FORMAT = "2"  # bump when the layer's build steps change
# The Lambda runtime's Python (Runtime.PYTHON_3_13): byte code must be written by this version.
LAMBDA_PYTHON_VERSION: tuple[int, int] = (3, 13)
LAMBDA_PYTHON_ENV = "LAMBDA_PYTHON"


def tasks_code() -> lambda_.Code:
    """The ``tasks/`` package (code only) as the functions' asset."""
    return lambda_.Code.from_asset(
        str(TASKS_DIR),
        asset_hash_type=AssetHashType.SOURCE,
        exclude=TASKS_ASSET_EXCLUDE,
        bundling=BundlingOptions(image=_NO_DOCKER, local=CopyPackage(TASKS_DIR)),
    )


def dependencies_code() -> lambda_.Code:
    """The task dependencies as a layer asset (``python/`` at its root)."""
    return lambda_.Code.from_asset(
        str(TASKS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=dependencies_hash(),
        bundling=BundlingOptions(image=_NO_DOCKER, local=PipLayer(REQUIREMENTS_FILE)),
    )


def dependencies_hash() -> str:
    digest = hashlib.sha256(REQUIREMENTS_FILE.read_bytes())
    build = [_BUILD_FORMAT, *PIP_PLATFORM_ARGS, *sorted(RUNTIME_PROVIDED_DISTRIBUTIONS)]
    if lambda_python() is not None:
        build.append("bytecode:unchecked-hash")
    digest.update(json.dumps(build).encode())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class CopyPackage:
    """Copies a Python package directory to ``<output>/<package name>``."""

    def __init__(self, package_dir: Path) -> None:
        self._package_dir = package_dir

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        destination = Path(output_dir) / self._package_dir.name
        shutil.copytree(
            self._package_dir,
            destination,
            ignore=shutil.ignore_patterns(*_IGNORED_NAMES),
            dirs_exist_ok=True,
        )
        compile_bytecode(destination)
        return True


@jsii.implements(ILocalBundling)
class PipLayer:
    """``pip install`` for the Lambda platform into ``<output>/python``, cached by hash."""

    def __init__(self, requirements: Path) -> None:
        self._requirements = requirements

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        cached = BUILD_CACHE_DIR / f"layer-{dependencies_hash()}"
        if not (cached / ".complete").exists():
            self._build(cached)
        _link_tree(cached / "python", Path(output_dir) / "python")
        return True

    def _build(self, destination: Path) -> None:
        BUILD_CACHE_DIR.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="layer-", dir=BUILD_CACHE_DIR))
        target = staging / "python"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "-r",
            str(self._requirements),
            *PIP_PLATFORM_ARGS,
            "--target",
            str(target),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                "building the dependencies layer failed (no Docker fallback):\n" + result.stderr
            )
        remove_distributions(target, RUNTIME_PROVIDED_DISTRIBUTIONS)
        shutil.rmtree(target / "bin", ignore_errors=True)
        compile_bytecode(target)
        (staging / ".complete").write_text(" ".join(command))
        shutil.rmtree(destination, ignore_errors=True)
        os.replace(staging, destination)


@functools.cache
def lambda_python() -> str | None:
    """An interpreter of the runtime's Python version on this machine, or None."""
    wanted = "{}.{}".format(*LAMBDA_PYTHON_VERSION)
    candidates = [os.environ.get(LAMBDA_PYTHON_ENV), sys.executable]
    candidates.append(shutil.which(f"python{wanted}"))
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{wanted}*/bin/python{wanted}"))
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in candidates:
        if not candidate:
            continue
        try:
            result = subprocess.run(  # noqa: S603
                [candidate, "-I", "-c", probe], capture_output=True, text=True, check=False
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == wanted:
            return candidate
    return None


def compile_bytecode(directory: Path, python: str | None = None) -> bool:
    """Write ``unchecked-hash`` byte code for every module under ``directory`` with the runtime's
    Python; False (source only) when no such interpreter is available."""
    interpreter = python or lambda_python()
    if interpreter is None:
        return False
    command = [interpreter, "-I", "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"byte-compiling {directory} failed:\n{result.stdout}{result.stderr}")
    return True


def remove_distributions(target: Path, names: frozenset[str]) -> None:
    """Delete every file the named distributions installed under ``target``."""
    for dist in metadata.distributions(path=[str(target)]):
        if dist.metadata["Name"].lower() not in names:
            continue
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            if target.resolve() in path.parents and path.is_file():
                path.unlink()
    for directory in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _link_tree(source: Path, destination: Path) -> None:
    """Copy a tree by hard links (same file system) or by copying."""
    try:
        shutil.copytree(source, destination, copy_function=os.link, dirs_exist_ok=True)
    except OSError:
        shutil.copytree(source, destination, dirs_exist_ok=True)
