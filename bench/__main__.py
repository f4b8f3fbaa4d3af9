"""``python -m bench``: cold init, warm handler time, state payload sizes, local-mode
throughput and large files through upload sessions, as rich tables, then PASS/FAIL per target.
Take final figures on a quiet machine.

    python -m bench [--cold-runs 15] [--warm-calls 200] [--uploads 100] [--large-commits 3]
                    [--skip cold,warm,...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from tasks.contract import names

if TYPE_CHECKING:
    from bench.large_files import LargeFiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = Path(__file__).resolve().parent / "output"
KB = 1024
SECTIONS = ("cold", "warm", "payload", "load", "large")
TASKS = names.TASKS

# Targets (issue "Performance: cold starts, warm cost and local throughput, measured").
VALIDATE_COLD_RATIO = 0.3
AWS_TASK_COLD_RATIO = 1.0
WARM_VALIDATE_MS = 5.0
LOAD_CLIENTS_TARGET = 4
LOAD_PER_SECOND = 10.0
LOAD_P95_MS = 300.0
LOAD_SIZE = 100 * KB
# Targets (issue on large files through upload sessions).
LARGE_THROUGHPUT_RATIO = 0.6
LARGE_COMMIT_RATIO = 1.5


@dataclass
class Verdict:
    target: str
    passed: bool | None  # None: reported and explained, not a pass/fail figure
    detail: str


def _status(verdict: Verdict) -> str:
    if verdict.passed is None:
        return "[yellow]NOTE[/yellow]"
    return "[green]PASS[/green]" if verdict.passed else "[red]FAIL[/red]"


def cold_section(console: Console, runs: int, verdicts: list[Verdict]) -> None:
    from bench import cold

    python = cold.lambda_python()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as workdir:
        sandbox = cold.build_sandbox(Path(workdir), python)
        version = os.popen(f"{python} -V").read().strip()  # noqa: S605
        console.print(f"cold init: {runs} fresh interpreters per handler ({version}, -I -S -B)")
        results = cold.measure([*TASKS, cold.REFERENCE], sandbox, runs, python)
    reference = results[cold.REFERENCE]
    table = Table(title=f"Cold init (import + module-level set-up), {runs} runs, ms")
    for column in ("handler", "median", "max", "x ref", "+ first clients", "init+clients x ref"):
        table.add_column(column, justify="left" if column == "handler" else "right")
    for name, result in results.items():
        table.add_row(
            name,
            f"{result.median:.0f}",
            f"{result.max:.0f}",
            f"{result.median / reference.median:.2f}",
            f"{statistics.median(result.clients_ms):.0f}",
            f"{result.total_median / reference.median:.2f}",
        )
    console.print(table)
    ratio = results["validate"].median / reference.median
    verdicts.append(
        Verdict(
            f"validate cold init <= {VALIDATE_COLD_RATIO} x reference",
            ratio <= VALIDATE_COLD_RATIO,
            f"{results['validate'].median:.0f} / {reference.median:.0f} ms = {ratio:.2f}",
        )
    )
    for task in TASKS[1:]:
        ratio = results[task].median / reference.median
        total = results[task].total_median / reference.median
        verdicts.append(
            Verdict(
                f"{task} cold init <= {AWS_TASK_COLD_RATIO} x reference",
                ratio <= AWS_TASK_COLD_RATIO,
                f"{ratio:.2f} (with the clients its first call creates: {total:.2f})",
            )
        )


def warm_section(console: Console, calls: int, verdicts: list[Verdict]) -> None:
    from bench import warm
    from tasks.contract.limits import MAX_FILE_BYTES

    results = warm.measure([MAX_FILE_BYTES, KB], calls)
    table = Table(title=f"Warm handler time, median of {calls} calls against moto (mock_aws), ms")
    for column in ("task", "file", "median", "p95", "in SDK call", "rest (Python)", "share"):
        table.add_column(column, justify="left" if column in ("task", "file") else "right")
    for result in results:
        split = result.aws_median + result.python_median
        share = result.aws_median / split if split else 0.0
        table.add_row(
            result.task,
            f"{result.size:,} B",
            f"{result.median:.2f}",
            f"{result.p95:.2f}",
            f"{result.aws_median:.2f}",
            f"{result.python_median:.2f}",
            f"{share:.0%} AWS" if result.task != "validate" else "no AWS call",
        )
    console.print(table)
    by_key = {(r.task, r.size): r for r in results}
    validate = by_key[("validate", MAX_FILE_BYTES)]
    verdicts.append(
        Verdict(
            f"warm validate <= {WARM_VALIDATE_MS:.0f} ms for a MAX_FILE_BYTES file",
            validate.median <= WARM_VALIDATE_MS,
            f"{validate.median:.2f} ms",
        )
    )
    for task in ("store", "record"):
        for size in (MAX_FILE_BYTES, KB):
            found = by_key[(task, size)]
            verdicts.append(
                Verdict(
                    f"warm {task} ({size:,} B) dominated by the AWS call",
                    found.aws_median > found.python_median,
                    f"SDK call {found.aws_median:.2f} ms vs rest {found.python_median:.2f} ms",
                )
            )


def local_sections(
    console: Console,
    sections: set[str],
    uploads: int,
    large_commits: int,
    verdicts: list[Verdict],
) -> None:
    from bench import large_files, local_mode, warm
    from local.emulator import Emulator
    from tasks.core.observability import logger

    started = time.perf_counter()
    with Emulator(port=0, aws_port=0) as emulator, warm.quiet(logger):
        startup = time.perf_counter() - started
        payloads = local_mode.state_payloads(emulator) if "payload" in sections else None
        loads: list[local_mode.LoadResult] = []
        profile = None
        if "load" in sections:
            local_mode.run_load(emulator, 2, 10, LOAD_SIZE)  # warm-up
            loads = [local_mode.run_load(emulator, c, uploads, LOAD_SIZE) for c in (1, 4, 16)]
            profile = local_mode.profile_load(
                emulator,
                LOAD_CLIENTS_TARGET,
                max(20, uploads // 2),
                LOAD_SIZE,
                OUTPUT_DIR / "local-e2e-4-clients.prof",
            )
        large = large_files.measure(emulator, large_commits) if "large" in sections else None
    console.print(f"local mode: emulator started in {startup:.1f} s")
    if payloads is not None:
        _payload_table(console, *payloads, verdicts)
    if loads and profile is not None:
        _load_table(console, loads, profile, verdicts)
    if large is not None:
        _large_table(console, large, verdicts)


def _payload_table(
    console: Console,
    execution_input: int,
    boundaries: Sequence[object],
    verdicts: list[Verdict],
) -> None:
    from bench.local_mode import Boundary
    from tasks.contract.limits import MAX_FILE_BYTES, STATE_PAYLOAD_LIMIT_BYTES

    found = [b for b in boundaries if isinstance(b, Boundary)]
    table = Table(
        title=f"State payloads of a {MAX_FILE_BYTES:,} B upload (local execution history), "
        f"limit {STATE_PAYLOAD_LIMIT_BYTES:,} B"
    )
    for column in ("#", "event", "state", "field", "bytes", "of limit", "fileContent"):
        right = column in ("#", "bytes", "of limit")
        table.add_column(column, justify="right" if right else "left")
    for b in found:
        table.add_row(
            str(b.event_id),
            b.event_type,
            b.state,
            b.field,
            f"{b.size:,}",
            f"{b.size / STATE_PAYLOAD_LIMIT_BYTES:.1%}",
            "yes" if b.has_file else "-",
        )
    console.print(table)
    # States after Store: everything from the state that follows Store's exit.
    store_exited = ("Store", "TaskStateExited")
    exits = [i for i, b in enumerate(found) if (b.state, b.event_type) == store_exited]
    store_exit = exits[0] if exits else None
    after = found[store_exit + 1 :] if store_exit is not None else []
    carrying = sorted({b.state for b in after if b.has_file})
    verdicts.append(
        Verdict(
            "no state after Store carries fileContent",
            store_exit is not None and not carrying and not found[store_exit].has_file,
            "Store's output and every later payload are without it"
            if not carrying
            else f"carried by {carrying}",
        )
    )
    largest = max(found, key=lambda b: b.size)
    verdicts.append(
        Verdict(
            "every state payload within 256 KiB",
            largest.size <= STATE_PAYLOAD_LIMIT_BYTES,
            f"largest {largest.size:,} B ({largest.event_type} {largest.state} {largest.field})",
        )
    )
    over = largest.size - execution_input
    verdicts.append(
        Verdict(
            "the largest state is the execution input",
            True if over <= 0 else None,
            f"execution input {execution_input:,} B; largest {largest.size:,} B "
            f"({largest.event_type} of {largest.state}, +{over:,} B): by design the body (the "
            "client's JSON text) stays in the state until Store, which takes the file from it, "
            "and Validate puts its findings ($.upload: size, sha256, type, name, key) beside "
            "it; Store's parameters add attempt and startedAt and drop idempotencyKey and "
            "caller. MAX_FILE_BYTES (tasks/contract/limits.py) is derived from the largest state "
            "of a worst-case request (tests/unit/test_limits.py), not from the input, so it "
            "stays under the limit.",
        )
    )


def _load_table(
    console: Console,
    loads: Sequence[object],
    profile: tuple[dict[str, float], str],
    verdicts: list[Verdict],
) -> None:
    from bench.local_mode import LoadResult

    table = Table(title=f"Local mode end to end, {LOAD_SIZE // KB} KB file, ms")
    for column in ("clients", "uploads", "p50", "p95", "max", "uploads/s", "failures"):
        table.add_column(column, justify="right")
    results = [r for r in loads if isinstance(r, LoadResult)]
    for r in results:
        table.add_row(
            str(r.clients),
            str(len(r.latencies_ms)),
            f"{r.percentile(0.5):.0f}",
            f"{r.percentile(0.95):.0f}",
            f"{max(r.latencies_ms):.0f}",
            f"{r.per_second:.1f}",
            str(len(r.failures)),
        )
    console.print(table)
    categories, text = profile
    total = sum(categories.values()) or 1.0
    breakdown = Table(title="Local mode's CPU by component (cProfile, all threads, 4 clients)")
    breakdown.add_column("component")
    breakdown.add_column("CPU s", justify="right")
    breakdown.add_column("share", justify="right")
    for name, seconds in categories.items():
        breakdown.add_row(name, f"{seconds:.2f}", f"{seconds / total:.0%}")
    console.print(breakdown)
    console.print("top entries by own time (full: bench/output/local-e2e-4-clients.txt):")
    console.print("\n".join(text.strip().splitlines()[:22]), markup=False, highlight=False)
    four = next(r for r in results if r.clients == LOAD_CLIENTS_TARGET)
    verdicts.append(
        Verdict(
            f"local mode >= {LOAD_PER_SECOND:.0f} uploads/s with {LOAD_CLIENTS_TARGET} clients",
            four.per_second >= LOAD_PER_SECOND and not four.failures,
            f"{four.per_second:.1f} uploads/s, {len(four.failures)} failures",
        )
    )
    verdicts.append(
        Verdict(
            f"local mode p95 <= {LOAD_P95_MS:.0f} ms ({LOAD_SIZE // KB} KB, {LOAD_CLIENTS_TARGET} "
            "clients)",
            four.percentile(0.95) <= LOAD_P95_MS,
            f"p95 {four.percentile(0.95):.0f} ms",
        )
    )


def _timed(size: int, seconds: float | None) -> str:
    """``seconds`` to move ``size`` bytes, and the rate."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s, {size / (1 << 20) / seconds:.1f} MiB/s"


def _large_table(console: Console, large: LargeFiles, verdicts: list[Verdict]) -> None:
    from bench.large_files import MB, MIB, PARALLEL

    size, part = large.size // MIB, large.part_size // MIB
    table = Table(
        title=f"Large files through upload sessions, local mode: {size} MiB in parts of "
        f"{part} MiB, parallel {PARALLEL}"
    )
    for column in ("figure", "measured", "target"):
        table.add_column(column, justify="right" if column == "measured" else "left")
    client = _timed(large.size, large.client_seconds)
    if large.client_failures:
        client = f"failed: {'; '.join(large.client_failures)}"
    table.add_row(f"client upload_file, {size} MiB, open to commit", client, "")
    parts = _timed(large.size, large.client_parts_seconds)
    table.add_row("  of which its parts, until all stored", parts, "")
    table.add_row("  attempts the client repeated", str(large.client_retries), "")
    boto3 = _timed(large.size, large.boto3_seconds)
    table.add_row("boto3 upload_part loop, sequential, then complete", boto3, "")
    table.add_row("  of which its parts", _timed(large.size, large.boto3_parts_seconds), "")
    ratio, parts_ratio = large.throughput_ratio, large.parts_ratio
    table.add_row(
        "client / boto3 (MiB/s)",
        ("-" if ratio is None else f"{ratio:.2f}")
        + ("" if parts_ratio is None else f" (parts alone {parts_ratio:.2f})"),
        f">= {LARGE_THROUGHPUT_RATIO}",
    )
    for commit_size, seconds in large.commits.items():
        median, failed = large.commit_median(commit_size), large.commit_failures[commit_size]
        measured = "-" if median is None else f"{median * 1000:.0f} ms"
        if seconds:
            measured += f" ({min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f})"
        table.add_row(
            f"commit only, {commit_size // MIB} MiB, median (min-max) of {len(seconds)}",
            measured + (f", {len(failed)} failed" if failed else ""),
            "",
        )
    commit_ratio = large.commit_ratio
    table.add_row(
        f"commit {size} MiB / 1 MiB",
        "-" if commit_ratio is None else f"{commit_ratio:.1f}",
        f"<= {LARGE_COMMIT_RATIO}",
    )
    table.add_row(
        f"  emulator alone (boto3 loop), {size} MiB: CompleteMultipartUpload, ListParts",
        f"{large.boto3_complete_seconds:.2f} s, {large.boto3_list_parts_seconds:.2f} s",
        "context: in every local commit",
    )
    table.add_row(
        "client peak RSS (VmHWM of its own process)",
        f"{large.client_peak_rss / MB:.0f} MB",
        f"<= {large.memory_target / MB:.0f} MB = ({PARALLEL} + 1) x {part} MiB + 100 MB",
    )
    console.print(table)
    _large_verdicts(large, verdicts)


def _large_verdicts(large: LargeFiles, verdicts: list[Verdict]) -> None:
    from bench.large_files import MB, MIB

    size = large.size // MIB
    ratio = large.throughput_ratio
    if ratio is None:
        detail = f"failed: {'; '.join(large.client_failures)}"
    else:
        detail = f"{ratio:.2f} ({large.boto3_seconds:.1f} s / {large.client_seconds:.1f} s)"
    if large.client_retries:
        detail += f"; the client repeated {large.client_retries} attempts"
    verdicts.append(
        Verdict(
            f"large file client >= {LARGE_THROUGHPUT_RATIO} x a boto3 upload_part loop "
            f"({size} MiB)",
            ratio is not None and ratio >= LARGE_THROUGHPUT_RATIO,
            detail,
        )
    )
    commit_ratio = large.commit_ratio
    failures = [f for found in large.commit_failures.values() for f in found]
    verdicts.append(
        Verdict(
            f"commit {size} MiB <= {LARGE_COMMIT_RATIO} x commit 1 MiB (medians)",
            commit_ratio is not None and commit_ratio <= LARGE_COMMIT_RATIO and not failures,
            ("-" if commit_ratio is None else f"{commit_ratio:.1f}")
            + (f"; {len(failures)} failed commits: {failures[0]}" if failures else ""),
        )
    )
    verdicts.append(
        Verdict(
            "large commits in local mode",
            None,
            f"the emulator's CompleteMultipartUpload and ListParts (the boto3 loop's) for {size} "
            f"MiB: {large.boto3_complete_seconds:.2f} s and "
            f"{large.boto3_list_parts_seconds:.2f} s; local mode completes without copying the "
            "parts and lists checksums it already verified, so, as on S3, completing costs about "
            "the same whatever the size (local/moto_patches.py)",
        )
    )
    verdicts.append(
        Verdict(
            "large file client peak RSS <= (parallel + 1) x part size + 100 MB",
            large.client_peak_rss <= large.memory_target,
            f"{large.client_peak_rss / MB:.0f} MB <= {large.memory_target / MB:.0f} MB",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--warm-calls", type=int, default=200)
    parser.add_argument("--uploads", type=int, default=100, help="uploads per concurrency level")
    parser.add_argument(
        "--large-commits", type=int, default=3, help="timed commits per large file size"
    )
    parser.add_argument("--skip", default="", help=f"comma-separated, of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = set(SECTIONS) - {s.strip() for s in args.skip.split(",") if s.strip()}
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    console = Console(width=140)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    console.print(
        f"[bold]Upload service benchmark[/bold] — {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    if load > 0.5 * (os.cpu_count() or 1):
        console.print(
            "[yellow]The machine is busy: figures are noisy; take final ones on a quiet "
            "machine.[/yellow]"
        )
    verdicts: list[Verdict] = []
    if "cold" in sections:
        cold_section(console, args.cold_runs, verdicts)
    if "warm" in sections:
        warm_section(console, args.warm_calls, verdicts)
    if sections & {"payload", "load", "large"}:
        local_sections(console, sections, args.uploads, args.large_commits, verdicts)
    summary = Table(title="Targets")
    for column in ("target", "status", "measured"):
        summary.add_column(column)
    for verdict in verdicts:
        summary.add_row(verdict.target, _status(verdict), verdict.detail)
    console.print(summary)
    return 1 if any(v.passed is False for v in verdicts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
