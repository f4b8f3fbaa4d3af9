"""What ``python -m verify`` prints: one line per function (name, handler, what was called,
outcome, seconds, and the reason of a failure), one line per failed scenario, a summary line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from verify.sandbox import Call


@dataclass(frozen=True)
class FunctionReport:
    name: str  # the template's logical id
    handler: str
    init_seconds: float | None  # None: the handler was not imported
    calls: tuple[Call, ...]
    start_failure: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the function failed, in one line (None: it passed)."""
        if self.start_failure is not None:
            return f"init: {self.start_failure}"
        for call in self.calls:
            if call.error is not None:
                return f"{call.label}: {call.error}"
        return None if self.calls else "not called: no scenario invokes it"

    @property
    def called(self) -> str:
        if self.init_seconds is None:
            return "import failed"
        labels = list(dict.fromkeys(call.label for call in self.calls))
        plural = "" if len(self.calls) == 1 else "s"
        return f"import + {len(self.calls)} call{plural} ({', '.join(labels) or 'none'})"

    @property
    def seconds(self) -> float:
        return (self.init_seconds or 0.0) + sum(call.seconds for call in self.calls)


def function_lines(reports: Sequence[FunctionReport]) -> list[str]:
    """The functions as aligned columns; a failure's reason ends its line."""
    rows = [
        (
            r.name,
            r.handler,
            r.called,
            "ok" if r.problem is None else "FAILED",
            f"{r.seconds:6.1f} s",
            r.problem or "",
        )
        for r in reports
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(5)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return lines


def scenario_line(name: str, reason: str) -> str:
    return f"scenario {name}: FAILED: {reason}"


def summary_line(
    reports: Sequence[FunctionReport],
    scenarios: int,
    failed_scenarios: int,
    target: str,
    seconds: float,
) -> str:
    failed = sum(r.problem is not None for r in reports)
    passed = failed == 0 and failed_scenarios == 0 and bool(reports)
    counts = (
        f"{len(reports) - failed} of {len(reports)} functions ok, "
        f"{scenarios - failed_scenarios} of {scenarios} scenarios passed"
    )
    verdict = "ok" if passed else "FAILED"
    return f"verify-arm64 {verdict}: {counts}, on {target}, in {seconds:.1f} s"
