"""Lambda assets built on this machine, without Docker.

* The task code asset is the ``tasks/`` package copied under its own name, so handlers import as
  ``tasks.validate`` on Lambda exactly as they do in the tests. Its asset hash is the hash of
  those files plus whether byte code is in (:func:`infra.lambda_python.bytecode_marker`).
* The dependencies layer installs ``tasks/requirements.lock`` (``make lock`` writes it from
  ``tasks/requirements.txt``: every distribution pinned, with the hash of every file it may be
  installed from) with ``pip --require-hashes --no-deps`` for CPython 3.13 on manylinux aarch64
  (wheels only). The lock leaves out what the Lambda Python runtime already ships (boto3 and its
  dependencies: a layer copy of botocore would shadow the runtime's and could mismatch its
  boto3). The layer's asset hash is the hash of the lock plus these build parameters and the
  byte-code marker: it changes exactly when what is installed changes, and it is stable between
  synths and machines. The build is cached under ``.build/`` by that hash, and checked: the
  installed distributions must be exactly the lock's.
* Both are byte-compiled for the runtime's Python when :mod:`infra.lambda_python` finds one.

Both implement ``ILocalBundling`` and never return False: a failed local build raises, so CDK
never falls back to a Docker image.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.lambda_python import bytecode_marker, compile_bytecode
from infra.layer_lock import (
    LOCK_FILE,
    PIP_PLATFORM_ARGS,
    installed_distributions,
    locked_distributions,
    pip_install_command,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = PROJECT_ROOT / "tasks"
BUILD_CACHE_DIR = PROJECT_ROOT / ".build"

_IGNORED_NAMES = (
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    "requirements.txt",
    "requirements.lock",
)
# Never pulled or run: every bundler below succeeds locally or raises.
_NO_DOCKER = DockerImage.from_registry("local-bundling-only-docker-is-never-used")
_BUILD_FORMAT = "3"  # bump when the layer's build steps change


def tasks_code() -> lambda_.Code:
    """The ``tasks/`` package (code only) as the functions' asset."""
    return lambda_.Code.from_asset(
        str(TASKS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=tasks_hash(),
        bundling=BundlingOptions(image=_NO_DOCKER, local=CopyPackage(TASKS_DIR)),
    )


def dependencies_code() -> lambda_.Code:
    """The task dependencies as a layer asset (``python/`` at its root)."""
    return lambda_.Code.from_asset(
        str(TASKS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=dependencies_hash(),
        bundling=BundlingOptions(image=_NO_DOCKER, local=PipLayer(LOCK_FILE)),
    )


def tasks_hash() -> str:
    """The files the code asset copies, and whether it holds byte code."""
    digest = hashlib.sha256(bytecode_marker().encode())
    for path in sorted(_asset_files(TASKS_DIR)):
        digest.update(str(path.relative_to(TASKS_DIR)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def dependencies_hash() -> str:
    """The lock (every file that may be installed, by hash), how it is installed, byte code."""
    digest = hashlib.sha256(LOCK_FILE.read_bytes())
    build = [_BUILD_FORMAT, *PIP_PLATFORM_ARGS, bytecode_marker()]
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
    """The lock installed for the Lambda platform into ``<output>/python``, cached by hash."""

    def __init__(self, lock: Path) -> None:
        self._lock = lock

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
        command = pip_install_command(self._lock, target, *PIP_PLATFORM_ARGS)
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        installed = installed_distributions(target) if result.returncode == 0 else {}
        if result.returncode != 0 or installed != locked_distributions(self._lock):
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"building the dependencies layer from {self._lock.name} failed (no Docker "
                f"fallback); installed {installed}:\n{result.stderr}"
            )
        shutil.rmtree(target / "bin", ignore_errors=True)
        compile_bytecode(target)
        (staging / ".complete").write_text(" ".join(command))
        shutil.rmtree(destination, ignore_errors=True)
        os.replace(staging, destination)


def _asset_files(directory: Path) -> list[Path]:
    """The files :class:`CopyPackage` copies (``_IGNORED_NAMES`` left out at any depth)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not _ignored(d)]
        found += [Path(root) / name for name in files if not _ignored(name)]
    return found


def _ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in _IGNORED_NAMES)


def _link_tree(source: Path, destination: Path) -> None:
    """Copy a tree by hard links (same file system) or by copying."""
    try:
        shutil.copytree(source, destination, copy_function=os.link, dirs_exist_ok=True)
    except OSError:
        shutil.copytree(source, destination, dirs_exist_ok=True)
