"""The cloud assembly local mode runs: synthesized once, as ``cdk synth`` runs the app.

``cdk.out`` is reused while it is newer than every source file the app reads (``main.py``,
``infra/**``, ``tasks/**``, ``cdk.json``); otherwise the app's ``main.py`` is run again with
exactly the context the CDK CLI would pass (``build_app`` merges ``cdk.json``'s context itself).
"""

from __future__ import annotations

import fcntl
import json
import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PATTERNS: tuple[str, ...] = ("main.py", "cdk.json", "infra/**/*", "tasks/**/*")
_IGNORED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
# How long an interrupted synth may take to wind down before it is killed.
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class CloudAssembly:
    """One synthesized stack: its template and its asset manifest."""

    directory: Path
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, Any]
    synthesized: bool  # False when an up-to-date cdk.out was reused


def _newest_source_mtime(root: Path) -> float:
    newest = 0.0
    for pattern in SOURCE_PATTERNS:
        for path in root.glob(pattern):
            if path.is_file() and not _IGNORED_PARTS.intersection(path.parts):
                newest = max(newest, path.stat().st_mtime)
    return newest


def _stack_names(outdir: Path) -> list[str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    return [
        name
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]


def _is_fresh(outdir: Path, root: Path) -> bool:
    manifest = outdir / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        stacks = _stack_names(outdir)
    except (OSError, ValueError):
        return False
    templates = [outdir / f"{name}.template.json" for name in stacks]
    if not templates or not all(t.is_file() for t in templates):
        return False
    built = min(manifest.stat().st_mtime, *(t.stat().st_mtime for t in templates))
    return built > _newest_source_mtime(root)


class SynthError(RuntimeError):
    """The app failed to synthesize; its own output (above) says why."""


def synthesize(outdir: Path, root: Path = PROJECT_ROOT) -> None:
    """Synthesize the app into ``outdir`` as ``cdk synth`` does: its ``main.py`` (cdk.json's
    ``app``) with ``CDK_OUTDIR`` set. It runs in a child process of its own session: Ctrl-C at
    the terminal reaches this process only, which stops the child itself (the app's jsii Node
    process, in this process group, would otherwise die at once and leave a traceback)."""
    child = subprocess.Popen(  # noqa: S603 - this interpreter, this module, the app's own entry
        [sys.executable, "-m", __name__, str(root / "main.py")],
        cwd=root,
        env={**os.environ, "CDK_OUTDIR": str(outdir)},
        start_new_session=True,
    )
    try:
        status = child.wait()
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): stop the synth before going on
        _stop(child)
        raise
    if status != 0:
        raise SynthError(f"the synth failed (exit status {status}); nothing was started")


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the child exit through its jsii runtime's shutdown (the Node process finishes
    the call it is in, so no asset is left half copied); SIGKILL to its group if that hangs."""
    child.terminate()
    try:
        child.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@contextmanager
def _exclusive(outdir: Path) -> Iterator[None]:
    """One process at a time checks and synthesizes ``outdir`` (two local modes, or two test
    workers, starting together): the second waits, then finds it fresh."""
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with open(outdir.parent / f".{outdir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load(
    outdir: Path | None = None,
    *,
    root: Path = PROJECT_ROOT,
    stack_name: str | None = None,
    force: bool = False,
) -> CloudAssembly:
    """Reuse ``outdir`` when it is newer than the sources, else synthesize into it; then read it."""
    outdir = outdir or root / "cdk.out"
    synthesized = False
    with _exclusive(outdir):
        if force or not _is_fresh(outdir, root):
            synthesize(outdir, root)
            synthesized = True
    stacks = _stack_names(outdir)
    if stack_name is None:
        if len(stacks) != 1:
            raise RuntimeError(f"expected one stack in {outdir}, found {stacks}")
        stack_name = stacks[0]
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    assets_file = outdir / f"{stack_name}.assets.json"
    assets = json.loads(assets_file.read_text()) if assets_file.is_file() else {}
    return CloudAssembly(outdir, stack_name, template, assets, synthesized)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds quietly, through jsii's shutdown at exit


if __name__ == "__main__":  # the child of synthesize(): the app's main.py, stoppable by SIGTERM
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    runpy.run_path(sys.argv[1], run_name="__main__")
