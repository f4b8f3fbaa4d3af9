"""The Python that writes the Lambda assets' byte code: the runtime's version (3.13) or none.

Lambda's ``/var/task`` and ``/opt`` are read-only, so without shipped ``.pyc`` files every cold
start compiles Powertools, the X-Ray SDK and the tasks from source (about twice the cold init,
measured by ``python -m bench``). Byte code must be written by the runtime's minor version.

* ``LAMBDA_PYTHON`` names the interpreter. If it is set, it must run and be a 3.13: anything else
  stops synth with :class:`LambdaPythonError` (one line naming the value), never a silent
  fallback to source-only assets.
* Unset, a ``python3.13`` is looked for on ``PATH`` and under pyenv. None found: the assets ship
  source only (same behaviour, slower cold starts) and one warning says so on stderr.

The assets' hashes record which of the two was built (:func:`bytecode_marker`), so a deploy with
byte code replaces a source-only asset and the other way round.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The Lambda runtime's Python (Runtime.PYTHON_3_13).
LAMBDA_PYTHON_VERSION: tuple[int, int] = (3, 13)
LAMBDA_PYTHON_ENV = "LAMBDA_PYTHON"
_WANTED = "{}.{}".format(*LAMBDA_PYTHON_VERSION)
_VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
SOURCE_ONLY_WARNING = (
    f"warning: no Python {_WANTED} on this machine "
    f"(set {LAMBDA_PYTHON_ENV}=/path/to/python{_WANTED}): the Lambda assets ship without "
    "byte code, so each cold start compiles the sources (about twice as slow)"
)


class LambdaPythonError(ValueError):
    """``LAMBDA_PYTHON`` names no Python of the runtime's version; synth stops with this line."""


def python_version(interpreter: str) -> str | None:
    """``"3.13"`` for an interpreter that runs, else None."""
    try:
        result = subprocess.run(  # noqa: S603
            [interpreter, "-I", "-c", _VERSION_PROBE], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.cache
def lambda_python() -> str | None:
    """The interpreter that byte-compiles the assets, or None (source-only, warned once)."""
    explicit = os.environ.get(LAMBDA_PYTHON_ENV)
    if explicit:
        version = python_version(explicit)
        if version != _WANTED:
            found = "does not run" if version is None else f"is Python {version}"
            raise LambdaPythonError(
                f"{LAMBDA_PYTHON_ENV}={explicit} {found}: it must name a Python {_WANTED} "
                f"interpreter (the Lambda runtime's), or be unset to search this machine"
            )
        return explicit
    for candidate in _candidates():
        if python_version(candidate) == _WANTED:
            return candidate
    print(SOURCE_ONLY_WARNING, file=sys.stderr)
    return None


def _candidates() -> list[str]:
    found = [sys.executable, shutil.which(f"python{_WANTED}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found += sorted(str(p) for p in pyenv_root.glob(f"versions/{_WANTED}*/bin/python{_WANTED}"))
    return [candidate for candidate in found if candidate]


def bytecode_marker() -> str:
    """What the assets' hashes record: whether (and for which Python) they hold byte code."""
    if lambda_python() is None:
        return "source-only"
    return f"bytecode:cpython-{_WANTED}:unchecked-hash"


def compile_bytecode(directory: Path, python: str | None = None) -> bool:
    """Write ``unchecked-hash`` byte code (valid whatever the files' timestamps in the zip) for
    every module under ``directory``; False (source only) when there is no interpreter."""
    interpreter = python or lambda_python()
    if interpreter is None:
        return False
    command = [interpreter, "-I", "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"byte-compiling {directory} failed:\n{result.stdout}{result.stderr}")
    return True
