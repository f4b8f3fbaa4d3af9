"""``python -m verify`` (``make verify-arm64``): run what ships on its target.

Every Python function of the synthesized template runs from its own assets in ``cdk.out`` (the
code asset, its layers) with the runtime's boto3, in Debian's arm64 Python 3.13 under
qemu-user (:mod:`verify.rootfs`), one sandbox per function (:mod:`verify.sandbox`), all started
at once. Local mode's emulator runs on free ports in this process; its state machines and its
Lambda API invoke the sandboxes (:mod:`verify.routing`), which reach it on 127.0.0.1 (qemu-user
shares this machine's network). Then the scenarios (:mod:`verify.scenarios`) drive it as a
client would and check the storage. Exit status 0 when every function was imported, called and
answered without error and every scenario held; 1 otherwise; 2 when it could not run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from local.emulator import Emulator
from verify import rootfs
from verify.functions import (
    AssetError,
    Emulated,
    GuestFunction,
    lambda_environment,
    python_functions,
)
from verify.report import FunctionReport, function_lines, scenario_line, summary_line
from verify.routing import Router
from verify.sandbox import Sandbox, SandboxFailed
from verify.scenarios import SCENARIOS, CheckFailed, World

OUTDIR = rootfs.PROJECT_ROOT / "cdk.out"
READY_TIMEOUT_SECONDS = 900.0  # every handler imported, on a busy machine


def main() -> int:
    started = time.monotonic()
    try:
        if not (OUTDIR / "manifest.json").is_file():
            raise AssetError(f"no synthesized stack in {OUTDIR}: run `make synth`")
        rootfs.require(rootfs.QEMU)
        target = rootfs.ensure(progress=print)
        with _emulator() as emulator:
            functions = _functions(emulator)
            print(f"Emulated AWS on {emulator.aws_endpoint}; {len(functions)} arm64 sandboxes ...")
            with _sandboxes(functions, target, emulator) as sandboxes:
                failed_scenarios = _scenarios(emulator, sandboxes)
    except (AssetError, rootfs.BuildError) as exc:
        print(f"verify-arm64: {exc}", file=sys.stderr)
        return 2
    reports = [_report(sandbox) for sandbox in sandboxes]
    for line in function_lines(reports):
        print(line)
    for name, reason in failed_scenarios.items():
        print(scenario_line(name, reason))
    seconds = time.monotonic() - started
    print(
        summary_line(reports, len(SCENARIOS), len(failed_scenarios), _platform(sandboxes), seconds)
    )
    passed = not failed_scenarios and all(r.problem is None for r in reports)
    return 0 if passed else 1


def _platform(sandboxes: Sequence[Sandbox]) -> str:
    """What the guests said they run on, e.g. "aarch64 Python 3.13.5 under qemu-aarch64-static"."""
    ready = next((s.ready for s in sandboxes if s.ready), {})
    machine, python = ready.get("machine", "arm64"), ready.get("python", "3.13")
    return f"{machine} Python {python} under {rootfs.QEMU}"


@contextmanager
def _emulator() -> Iterator[Emulator]:
    emulator = Emulator(port=0, aws_port=0, outdir=OUTDIR)
    emulator.saturation = Emulated()
    with emulator:
        yield emulator


def _functions(emulator: Emulator) -> list[GuestFunction]:
    assembly = emulator.assembly
    assert assembly is not None
    return python_functions(
        emulator.functions, assembly.template, assembly.directory, assembly.assets
    )


@contextmanager
def _sandboxes(
    functions: Sequence[GuestFunction], target: rootfs.Target, emulator: Emulator
) -> Iterator[list[Sandbox]]:
    """One sandbox per function, all importing their handlers at once; closed at the end."""
    runtime = emulator.runtime
    assert runtime is not None
    sandboxes = [
        Sandbox(f, target, lambda_environment(f, runtime.environment(f.spec), target.runtime_sdk))
        for f in functions
    ]
    try:
        for sandbox in sandboxes:
            sandbox.start()
        yield sandboxes
    finally:
        for sandbox in sandboxes:
            sandbox.close()


def _scenarios(emulator: Emulator, sandboxes: Sequence[Sandbox]) -> dict[str, str]:
    """Run every scenario once the sandboxes are ready; the failed ones with their reason."""
    started = time.monotonic()
    for sandbox in sandboxes:
        try:
            sandbox.wait_ready(max(1.0, started + READY_TIMEOUT_SECONDS - time.monotonic()))
        except SandboxFailed as exc:
            sandbox.start_failure = str(exc)
    if any(sandbox.start_failure for sandbox in sandboxes):
        return {name: "not run: a sandbox did not start" for name, _ in SCENARIOS}
    print(f"Handlers imported in {time.monotonic() - started:.1f} s; running the scenarios ...")
    assert emulator.runtime is not None
    router = Router({s.function.spec.name: s for s in sandboxes}, emulator.runtime.spec_for)
    world = World(emulator, router)
    failed = {}
    with router.installed():
        for name, scenario in SCENARIOS:
            router.label = name
            try:
                scenario(world)
            except Exception as exc:  # a check that failed, or an answer of the wrong shape
                failed[name] = str(exc) if isinstance(exc, CheckFailed) else _one_line(exc)
    return failed


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _report(sandbox: Sandbox) -> FunctionReport:
    return FunctionReport(
        name=sandbox.function.spec.logical_id,
        handler=sandbox.function.spec.handler,
        init_seconds=sandbox.init_seconds,
        calls=tuple(sandbox.calls),
        start_failure=sandbox.start_failure,
    )


if __name__ == "__main__":
    sys.exit(main())
