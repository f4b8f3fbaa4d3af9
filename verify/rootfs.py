"""The arm64 target, built once and cached outside the repository.

* A Debian arm64 root file system with Python 3.13: ``debootstrap --foreign`` (its first stage
  only downloads and unpacks the base, so every downloaded package is then extracted with
  ``dpkg-deb -x``). qemu-user runs its ``python3.13`` with ``-L`` (no chroot, no binfmt).
* A boto3 like the one the Lambda runtime ships (the dependencies layer leaves it out): the
  version the project's ``requirements*.txt`` pin, installed for manylinux aarch64 / CPython
  3.13.

Both are byte-compiled (Debian compiles its standard library at install time, which a first
stage skips; Lambda's Python ships compiled), so that imports under emulation do not compile:
by this machine's Python 3.13 when there is one, else by the guest under emulation (slower, once).

Each is cached in ``<cache>/<kind>-<hash of its recipe>``: a changed recipe (suite, packages,
pins, build steps) builds a new entry and the stale one is removed. A build goes to a temporary
directory that is renamed into place when complete, under a lock, so an interrupted build never
leaves a half entry and two concurrent runs build once. The cache is
``$UPLOAD_SERVICE_ARM64_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/upload-service/arm64``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.lambda_python import lambda_python

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "UPLOAD_SERVICE_ARM64_CACHE"
QEMU = "qemu-aarch64-static"
DEBOOTSTRAP = "debootstrap"
GUEST_PYTHON = "usr/bin/python3.13"
GUEST_STDLIB = "usr/lib/python3.13"
DEBOOTSTRAP_ARGS: tuple[str, ...] = (
    "--foreign",
    "--arch=arm64",
    "--variant=minbase",
    "--include=python3.13",
    "trixie",
)
MIRROR = "http://deb.debian.org/debian"
# What the Lambda Python runtime ships of the SDK; the pins of these in requirements*.txt.
RUNTIME_SDK: tuple[str, ...] = ("boto3", "botocore")
PIP_PLATFORM_ARGS: tuple[str, ...] = (
    "--platform",
    "manylinux2014_aarch64",
    "--python-version",
    "3.13",
    "--only-binary=:all:",
    "--implementation",
    "cp",
)
BUILD_FORMAT = "1"  # bump when a build step changes
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", re.MULTILINE)


class BuildError(Exception):
    """The target could not be built (the reason in one line, then the tool's output)."""


@dataclass(frozen=True)
class Recipe:
    """What builds one cache entry; its hash names the entry's directory."""

    kind: str
    steps: tuple[str, ...]

    @property
    def key(self) -> str:
        text = json.dumps([BUILD_FORMAT, self.kind, *self.steps])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def directory(self, cache: Path) -> Path:
        return cache / f"{self.kind}-{self.key}"


@dataclass(frozen=True)
class Target:
    """The built target: the guest's root file system and the runtime's boto3."""

    rootfs: Path
    runtime_sdk: Path

    def command(self, *args: str) -> list[str]:
        return guest_python(self.rootfs, *args)


def guest_python(rootfs: Path, *args: str) -> list[str]:
    """The guest's Python with ``args``, under qemu-user."""
    return [shutil.which(QEMU) or QEMU, "-L", str(rootfs), str(rootfs / GUEST_PYTHON), *args]


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    explicit = env.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "upload-service" / "arm64"


def runtime_pins(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The versions of :data:`RUNTIME_SDK` that the project's ``requirements*.txt`` pin."""
    pins: dict[str, str] = {}
    for path in sorted(root.glob("requirements*.txt")):
        for name, version in _PIN.findall(path.read_text()):
            name = name.lower()
            if name in RUNTIME_SDK and pins.setdefault(name, version) != version:
                raise BuildError(f"{name} is pinned to both {pins[name]} and {version}")
    if "boto3" not in pins:
        raise BuildError(f"no boto3==VERSION in {root}/requirements*.txt")
    return pins


def rootfs_recipe() -> Recipe:
    return Recipe("rootfs", (*DEBOOTSTRAP_ARGS, MIRROR))


def sdk_recipe(pins: Mapping[str, str]) -> Recipe:
    requirements = tuple(f"{name}=={version}" for name, version in sorted(pins.items()))
    return Recipe("boto3", (*requirements, *PIP_PLATFORM_ARGS))


def ensure(cache: Path | None = None, progress: Callable[[str], None] = print) -> Target:
    """The target, built first if the cache does not hold it (``progress`` says so)."""
    cache = cache or cache_dir()
    rootfs = cached(rootfs_recipe(), cache, _build_rootfs, progress)
    pins = runtime_pins()
    sdk = cached(sdk_recipe(pins), cache, lambda d: _build_sdk(d, pins, rootfs), progress)
    return Target(rootfs, sdk)


def cached(
    recipe: Recipe, cache: Path, build: Callable[[Path], None], progress: Callable[[str], None]
) -> Path:
    """The recipe's entry in ``cache``, made by ``build(staging directory)`` if missing."""
    target = recipe.directory(cache)
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        if target.is_dir():  # built by a concurrent run while this one waited
            return target
        for stale in cache.glob(f"*{recipe.kind}-*"):
            shutil.rmtree(stale)  # older recipes, or a build that was killed
        progress(f"Building {target} (once) ...")
        staging = Path(tempfile.mkdtemp(prefix=f".{recipe.kind}-", dir=cache))
        try:
            build(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(target)
    return target


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_rootfs(root: Path) -> None:
    _run([DEBOOTSTRAP, *DEBOOTSTRAP_ARGS, str(root), MIRROR], "debootstrap")
    archives = root / "var/cache/apt/archives"
    for package in sorted(archives.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(package), str(root)], f"extracting {package.name}")
        package.unlink()
    _compile(root / GUEST_STDLIB, root)
    probe = "import platform, ssl; assert platform.machine() == 'aarch64', platform.machine()"
    _run(guest_python(root, "-I", "-S", "-c", probe), "running the guest's Python")


def _build_sdk(target: Path, pins: Mapping[str, str], rootfs: Path) -> None:
    requirements = [f"{name}=={version}" for name, version in sorted(pins.items())]
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-compile", "--target", str(target), *PIP_PLATFORM_ARGS, *requirements]
    _run(command, "installing " + " ".join(requirements))
    shutil.rmtree(target / "bin", ignore_errors=True)
    _compile(target, rootfs)


def _compile(directory: Path, rootfs: Path) -> None:
    """Byte-compile ``directory`` for Python 3.13 (``unchecked-hash``, as the assets are): with
    this machine's, on every core; else with the guest's, in one process (under qemu-user it
    cannot start another: there is no binfmt to run an arm64 executable)."""
    host = lambda_python()
    if host:
        compileall = [host, "-I", "-m", "compileall", "-j", "0"]
    else:
        compileall = guest_python(rootfs, "-I", "-m", "compileall")
    options = ["-q", "--invalidation-mode", "unchecked-hash", str(directory)]
    _run([*compileall, *options], "byte-compiling")


def require(tool: str) -> None:
    """Refuse to go on without ``tool`` (``make verify-arm64`` installs it)."""
    if shutil.which(tool) is None:
        raise BuildError(f"{tool} is not installed: `make verify-arm64` installs it")


def _run(command: Sequence[str], what: str) -> None:
    require(command[0])
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-20:]
        raise BuildError("\n".join([f"{what} failed (exit status {result.returncode})", *output]))
