"""The cloud assembly local mode runs: synthesized once through the app's own ``build_app``.

``cdk.out`` is reused while it is newer than every source file the app reads (``main.py``,
``infra/**``, ``tasks/**``, ``cdk.json``); otherwise the app is synthesized again with exactly
the context the CDK CLI would pass (``build_app`` merges ``cdk.json``'s context itself).
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PATTERNS: tuple[str, ...] = ("main.py", "cdk.json", "infra/**/*", "tasks/**/*")
_IGNORED_PARTS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


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


def synthesize(outdir: Path, root: Path = PROJECT_ROOT) -> None:
    """Synthesize the app through its ``build_app`` (the same context as ``cdk synth``)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    build_app = None
    for module_name in ("main", "infra.app"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        build_app = getattr(module, "build_app", None)
        if build_app is not None:
            break
    if build_app is None:
        raise RuntimeError("no build_app(context, outdir) found in main.py or infra/app.py")
    started = time.time()
    try:
        build_app(context=None, outdir=str(outdir)).synth()
    except Exception as exc:
        # e.g. cdk-nag findings fail synth after the template was written: run it anyway.
        manifest = outdir / "manifest.json"
        if not manifest.is_file() or manifest.stat().st_mtime < started - 1:
            raise
        print(f"warning: synth reported {type(exc).__name__}: {exc}", file=sys.stderr)


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
