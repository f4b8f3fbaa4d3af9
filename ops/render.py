"""Human output of the CLI (rich). The JSON output is :mod:`ops.history`'s model."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ops.history import (
    FAILURE_EVENTS,
    ExecutionSummary,
    Timeline,
    http_status,
    iso,
)
from tasks.contract.names import COMPENSATE_STATE
from tasks.core.sweep import SweepResult

STATUS_STYLE: Final = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
    "RUNNING": "yellow",
    "UNKNOWN": "yellow",
}
MAX_CAUSE: Final = 300
MAX_FIELDS: Final = 160


def _time(ms: int | None) -> str:
    value = iso(ms)
    return "-" if value is None else value[11:23]  # HH:MM:SS.mmm (the date is in the header)


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def timeline(console: Console, tl: Timeline) -> None:
    http = tl.http_status
    console.print(Text(f"Request {tl.request_id}", style="bold"))
    console.print(f"  execution  {tl.execution_arn or '(no history events found)'}")
    line = Text("  status     ")
    line.append_text(_status(tl.status))
    if tl.error:
        line.append(f"  error {tl.error}", style="red")
    line.append(f"  -> HTTP {http if http is not None else '?'}")
    console.print(line)
    started = iso(tl.started_ms)
    console.print(f"  started    {started or '-'}   duration {_ms(tl.duration_ms)}")
    if tl.cause:
        console.print(f"  cause      {_clip(tl.cause, MAX_CAUSE)}", markup=False)
    if tl.compensation == "done":
        console.print(Text("  compensation ran: the stored file versions were deleted", "yellow"))
    elif tl.compensation == "failed":
        console.print(Text("  compensation FAILED: an orphaned version was reported", "red"))

    states = Table(title="States", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("state", "type", "entered", "exited", "duration", "attempts", "error"):
        states.add_column(column)
    for visit in tl.states:
        duration = None if visit.exited_ms is None else visit.exited_ms - visit.entered_ms
        retried = visit.attempts > 1
        states.add_row(
            Text(visit.name, style="yellow" if visit.name == COMPENSATE_STATE else ""),
            visit.type,
            _time(visit.entered_ms),
            _time(visit.exited_ms),
            _ms(duration),
            Text(
                f"{visit.attempts} (retried)" if retried else str(visit.attempts or "-"),
                style="yellow" if retried else "",
            ),
            Text(visit.error or "", style="red"),
        )
    console.print(states)

    events = Table(title="Events", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("id", "time", "type", "state", "error"):
        events.add_column(column)
    for event in tl.events:
        error = event.details.get("error")
        failed = event.type in FAILURE_EVENTS or event.type == "ExecutionFailed"
        events.add_row(
            str(event.id),
            _time(event.timestamp_ms),
            Text(event.type + (" (cut)" if event.truncated else ""), style="red" if failed else ""),
            str(event.details.get("name") or ""),
            Text(str(error or ""), style="red"),
        )
    console.print(events)

    console.print(Text(f"Task logs ({len(tl.task_logs)} lines)", style="italic"))
    for log in tl.task_logs:
        text = Text(f"  {_time(log.timestamp_ms)} {log.task:<10} {log.level:<7} ")
        text.append(log.message, style="red" if log.level in ("ERROR", "CRITICAL") else "")
        if log.fields:
            text.append("  " + _clip(_compact(log.fields), MAX_FIELDS), style="dim")
        console.print(text)


def executions(console: Console, summaries: list[ExecutionSummary]) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("started", "request id", "product", "status", "http", "duration", "error"):
        table.add_column(column, no_wrap=column in ("started", "request id"))
    for s in summaries:
        http = http_status(s.status, s.error)
        table.add_row(
            (iso(s.started_ms) or "-")[:23],
            s.request_id,
            s.product_id or "-",
            _status(s.status),
            "-" if http is None else str(http),
            _ms(s.duration_ms),
            Text(s.error or "", style="red"),
        )
    console.print(table)
    console.print(f"{len(summaries)} execution(s)")


def _compact(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), default=str, ensure_ascii=False)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def orphans(console: Console, result: SweepResult, grace: timedelta) -> None:
    """The sweep's findings, one row per orphan."""
    table = Table(title=f"Orphans older than {int(grace.total_seconds())} s")
    for column in ("request id", "intent", "s3 key", "version id", "last modified", "action"):
        table.add_column(column, overflow="fold")
    for orphan in result.orphans:
        table.add_row(
            orphan.request_id,
            orphan.intent_status,
            orphan.s3_key,
            orphan.version_id or "(metadata write)",
            orphan.last_modified.isoformat(timespec="seconds") if orphan.last_modified else "",
            Text("deleted", style="green") if orphan.deleted else Text("remains", style="red"),
        )
    console.print(table)
    console.print(
        f"{len(result.orphans)} orphan(s); {result.examined} open request(s) examined, "
        f"{result.waiting} waiting for the grace period, {result.closed} closed"
    )
