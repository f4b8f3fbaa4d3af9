"""The dependencies layer's lock, ``tasks/requirements.lock``: written, read and installed.

``make lock`` (``python -m infra.layer_lock``) writes it from ``tasks/requirements.txt``. It is
resolved for the Lambda target (CPython 3.13, manylinux aarch64 up to glibc 2.34), not for this
machine, with the hash of every file each pinned release has on the index, so the same lock also
installs on this machine for the tests. The distributions the Lambda runtime ships (boto3 and its
dependencies) are left out. Resolving needs the package index; installing the lock needs only
the files it names, each checked against its hash (``pip --require-hashes --no-deps``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from infra.lambda_python import LAMBDA_PYTHON_VERSION

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = PROJECT_ROOT / "tasks" / "requirements.txt"
LOCK_FILE = PROJECT_ROOT / "tasks" / "requirements.lock"
REGENERATE_COMMAND = "make lock"

# The Lambda Python 3.13 runtime is Amazon Linux 2023 (glibc 2.34): a wheel built for any
# manylinux up to 2_34 runs there. pip takes an exact tag per --platform, so all are listed: a
# release that ships only newer manylinux wheels than 2014 (= 2_17) still installs.
LAMBDA_GLIBC_MINOR = 34
LAMBDA_PLATFORM_TAGS: tuple[str, ...] = (
    *(f"manylinux_2_{minor}_aarch64" for minor in range(LAMBDA_GLIBC_MINOR, 16, -1)),
    "manylinux2014_aarch64",
)
PIP_PLATFORM_ARGS: tuple[str, ...] = (
    *(arg for tag in LAMBDA_PLATFORM_TAGS for arg in ("--platform", tag)),
    "--implementation",
    "cp",
    "--python-version",
    "{}.{}".format(*LAMBDA_PYTHON_VERSION),
    "--only-binary=:all:",
)
# Shipped by the Lambda Python runtime (boto3 and everything it depends on): never in the lock.
RUNTIME_PROVIDED_DISTRIBUTIONS: frozenset[str] = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_distributions(lock: Path = LOCK_FILE) -> dict[str, str]:
    """The lock's pins: canonical distribution name -> version."""
    return {canonical(name): version for name, version in _PIN.findall(lock.read_text())}


def installed_distributions(target: Path) -> dict[str, str]:
    """What a ``pip install --target`` put there: canonical name -> version."""
    return {
        canonical(dist.metadata["Name"]): dist.version
        for dist in metadata.distributions(path=[str(target)])
    }


def pip_install_command(lock: Path, target: Path, *platform_args: str) -> list[str]:
    """Exactly the lock's files into ``target`` (each checked against its hash), no resolver."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-deps",
        "--require-hashes",
        "-r",
        str(lock),
        *platform_args,
        "--target",
        str(target),
    ]


def compile_command(uv: str) -> list[str]:
    """The ``uv pip compile`` that writes the lock (its header names ``make lock``)."""
    command = [uv, "pip", "compile", str(REQUIREMENTS_FILE.relative_to(PROJECT_ROOT))]
    command += ["--python-platform", f"aarch64-manylinux_2_{LAMBDA_GLIBC_MINOR}"]
    command += ["--python-version", "{}.{}".format(*LAMBDA_PYTHON_VERSION)]
    command += ["--only-binary", ":all:", "--generate-hashes", "--quiet"]
    for name in sorted(RUNTIME_PROVIDED_DISTRIBUTIONS):
        command += ["--no-emit-package", name]
    command += ["--custom-compile-command", REGENERATE_COMMAND]
    return [*command, "--output-file", str(LOCK_FILE.relative_to(PROJECT_ROOT))]


def main() -> int:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        print("uv is not installed: run `make setup` first", file=sys.stderr)
        return 1
    return subprocess.run(compile_command(uv), cwd=PROJECT_ROOT, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
