"""``upload-ops history --html``: one execution's history as a single self-contained HTML page.

The page holds everything it shows: inline CSS and inline SVG, no script, no font, image or
stylesheet to load; its Content-Security-Policy (``default-src 'none'``) forbids the browser to
load anything else, so it renders the same offline. Top to bottom: what the client got (request
id, status, HTTP status and code, start, duration, execution ARN, error and cause), the state
graph with the execution's path (:mod:`ops.html_graph`), the timeline to scale
(:mod:`ops.html_timeline`), the tasks' log lines of the request, and the history events.
Everything that comes from the logs is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Final

from ops.execution_path import compensation_note
from ops.history import FAILURE_EVENTS, Timeline, iso
from ops.html_graph import graph_svg
from ops.html_timeline import timeline_svg
from tasks.contract.errors import outcome_of_execution

MAX_FIELDS: Final = 4000  # characters of a log line's own fields shown (a stack trace can be long)
HEADER_KIND: Final = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "failed",
}
WIDE_FACTS: Final = frozenset({"execution", "cause"})
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'"
LEGEND: Final = (
    ("succeeded", "succeeded"),
    ("retried", "succeeded after a retry"),
    ("failed", "failed, or where it ended"),
    ("compensation", "compensation path"),
    ("unvisited", "not visited"),
)
LEGEND_LINES: Final = (
    ("taken", "transition taken"),
    ("compensation", "taken, compensating"),
    ("idle", "not taken"),
)
STYLE: Final = """
body { font: 14px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #0f172a;
  margin: 0; background: #f1f5f9; }
main { padding: 16px 20px 40px; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
header { background: #fff; border-left: 8px solid #94a3b8; padding: 12px 16px; border-radius: 6px; }
header.succeeded { border-left-color: #16a34a; } header.failed { border-left-color: #dc2626; }
dl.facts { display: grid; grid-template-columns: max-content minmax(22em, max-content)
  max-content minmax(0, 1fr); gap: 2px 16px; margin: 8px 0 0; }
dl.facts dt { color: #475569; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts dt.wide { grid-column: 1; } dl.facts dd.wide { grid-column: span 3; }
.pill { display: inline-block; padding: 0 10px; border-radius: 10px; font-weight: bold;
  color: #fff; background: #64748b; }
.pill.succeeded { background: #16a34a; } .pill.failed, .pill.timed-out, .pill.aborted {
  background: #dc2626; }
.note { margin: 8px 0 0; padding: 6px 10px; border-radius: 4px; }
.note.compensation { background: #ede9fe; color: #5b21b6; border: 1px solid #7c3aed; }
section { background: #fff; border-radius: 6px; padding: 4px 16px 12px; margin-top: 14px; }
svg { display: block; max-width: 100%; height: auto; }
svg.legend-line { display: inline-block; vertical-align: middle; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12.5px; }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px;
  vertical-align: -2px; margin-right: 5px; border: 2px solid; }
.legend i.succeeded, .state.succeeded rect { fill: #dcfce7; background: #dcfce7;
  stroke: #16a34a; border-color: #16a34a; }
.legend i.retried, .state.retried > rect { fill: #fef3c7; background: #fef3c7;
  stroke: #d97706; border-color: #d97706; }
.legend i.failed, .state.failed > rect { fill: #fee2e2; background: #fee2e2;
  stroke: #dc2626; border-color: #dc2626; }
.legend i.compensation, .state.compensation > rect { fill: #ede9fe; background: #ede9fe;
  stroke: #7c3aed; border-color: #7c3aed; }
.legend i.unvisited, .state.unvisited > rect { fill: #f8fafc; background: #f8fafc;
  stroke: #cbd5e1; border-color: #cbd5e1; }
.state.running > rect { fill: #dbeafe; stroke: #2563eb; }
.state > rect { stroke-width: 2; }
.state.role-compensation > rect { stroke-dasharray: 6 3; }
.state .name { font-size: 12px; font-weight: bold; fill: #0f172a; }
.state .detail { font-size: 10.2px; fill: #475569; }
.state.unvisited text { fill: #94a3b8; }
.badge rect { fill: #d97706; stroke: none; } .badge text { fill: #fff; font-size: 10px;
  font-weight: bold; }
.transition { fill: none; stroke-width: 1.3; stroke: #cbd5e1; }
.transition.taken { stroke: #334155; stroke-width: 2.6; }
.transition.compensation { stroke: #7c3aed; stroke-width: 2.6; stroke-dasharray: 7 3; }
.transition.observed { stroke: #0284c7; stroke-width: 2.6; stroke-dasharray: 2 3; }
.arrow.idle path { fill: #cbd5e1; } .arrow.taken path { fill: #334155; }
.arrow.compensation path { fill: #7c3aed; } .arrow.observed path { fill: #0284c7; }
.transition-label { font-size: 10px; fill: #64748b; font-style: italic; stroke: #fff;
  stroke-width: 3px; paint-order: stroke; }
.timeline text { font-size: 12px; fill: #0f172a; } .timeline .tick-label { fill: #64748b;
  font-size: 11px; }
.timeline .tick { stroke: #e2e8f0; } .timeline .row-note { fill: #475569; font-size: 11px; }
.bar.succeeded { fill: #bbf7d0; } .bar.retried { fill: #fde68a; } .bar.failed { fill: #fecaca; }
.bar.compensation { fill: #ddd6fe; } .bar.running { fill: #bfdbfe; }
.bar.open { stroke: #dc2626; stroke-dasharray: 3 2; }
.bar.execution { fill: #cbd5e1; } .bar.execution.succeeded { fill: #86efac; }
.bar.execution.failed, .bar.execution.timed-out, .bar.execution.aborted { fill: #fca5a5; }
.attempt.ok { fill: #16a34a; } .attempt.failed { fill: #dc2626; } .attempt.open { fill: #64748b; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; vertical-align: top; padding: 3px 8px;
  border-bottom: 1px solid #e2e8f0; }
th { color: #475569; font-weight: normal; }
td.fields { overflow-wrap: anywhere; color: #475569; } td.message { min-width: 16em; }
tr.error td, tr.critical td, tr.failure td { background: #fef2f2; }
tr.error td.level, tr.critical td.level, tr.warning td.level { color: #b91c1c; font-weight: bold; }
summary { cursor: pointer; font-weight: bold; margin: 12px 0 6px; }
"""


def page(timeline: Timeline) -> str:
    title = f"Request {timeline.request_id}: {timeline.status}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>",
            "<body><main>",
            _header(timeline),
            '<section id="graph"><h2>State graph: the path this execution took</h2>',
            _legend(),
            graph_svg(timeline),
            "</section>",
            '<section id="timeline"><h2>Timeline (ms from the execution\'s start)</h2>',
            timeline_svg(timeline),
            "</section>",
            _task_logs(timeline),
            _events(timeline),
            "</main></body></html>",
        ]
    )


def write(timeline: Timeline, path: Path) -> None:
    path.write_text(page(timeline), encoding="utf-8")


def _header(timeline: Timeline) -> str:
    status = timeline.status.lower().replace("_", "-")
    facts = [
        ("status", f'<span class="pill {escape(status)}">{escape(timeline.status)}</span>'),
        ("client got", escape(_client_got(timeline))),
        ("started", escape(iso(timeline.started_ms) or "-")),
        ("duration", escape(_ms(timeline.duration_ms))),
        ("execution", f"<code>{escape(timeline.execution_arn or '(no history events)')}</code>"),
    ]
    if timeline.error:
        facts.append(("error", f"<code>{escape(timeline.error)}</code>"))
    if timeline.cause:
        facts.append(("cause", f"<code>{escape(timeline.cause)}</code>"))
    rows = "".join(_fact(name, value) for name, value in facts)
    note = compensation_note(timeline)
    kind = HEADER_KIND.get(timeline.status, "unknown")
    return (
        f'<header class="{kind}"><h1>Request <code id="request-id">'
        f"{escape(timeline.request_id)}</code></h1>"
        f'<dl class="facts">{rows}</dl>'
        + (f'<p class="note compensation">{escape(note)}</p>' if note else "")
        + "</header>"
    )


def _fact(name: str, value: str) -> str:
    """Two facts a line; a long one (the ARN, the cause) on a line of its own."""
    wide = "wide" if name in WIDE_FACTS else ""
    return f'<dt class="{wide}">{name}</dt><dd class="{wide}">{value}</dd>'


def _client_got(timeline: Timeline) -> str:
    """The HTTP status and error code, by the response template's rules (as the CLI says)."""
    if timeline.http_status is None:
        return "unknown (the execution has not ended in the logs)"
    outcome = outcome_of_execution(timeline.status, timeline.error)
    return f"HTTP {timeline.http_status}" + ("" if outcome is None else f" {outcome.code}")


def _legend() -> str:
    swatches = "".join(
        f'<span><i class="{kind}"></i>{escape(text)}</span>' for kind, text in LEGEND
    )
    lines = "".join(
        f'<span><svg class="legend-line" width="30" height="10"><path class="transition {kind}" '
        f'd="M1,5 L29,5"/></svg> {escape(text)}</span>'
        for kind, text in LEGEND_LINES
    )
    return f'<p class="legend">{swatches}{lines}</p>'


def _task_logs(timeline: Timeline) -> str:
    origin = timeline.started_ms
    rows = []
    for line in timeline.task_logs:
        relative = "" if origin is None else f"+{line.timestamp_ms - origin}"
        rows.append(
            f'<tr class="{escape(line.level.lower())}">'
            f'<td class="mono">{escape(relative)}</td>'
            f'<td class="mono">{escape((iso(line.timestamp_ms) or "")[11:23])}</td>'
            f'<td>{escape(line.task)}</td><td class="level">{escape(line.level)}</td>'
            f'<td class="message">{escape(line.message)}</td>'
            f'<td class="fields mono">{escape(_fields(line.fields))}</td></tr>'
        )
    title = f"Task logs ({len(rows)} line{'' if len(rows) == 1 else 's'})"
    columns = ("ms", "time (UTC)", "task", "level", "message", "fields")
    table = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>" + "".join(rows)
    body = f"<table>{table}</table>" if rows else "<p>No task log lines of this request.</p>"
    return f'<section id="logs"><h2>{title}</h2>{body}</section>'


def _fields(fields: dict[str, Any]) -> str:
    if not fields:
        return ""
    text = json.dumps(fields, separators=(", ", ": "), default=str, ensure_ascii=False)
    return text if len(text) <= MAX_FIELDS else text[: MAX_FIELDS - 1] + "…"


def _events(timeline: Timeline) -> str:
    rows = []
    for event in timeline.events:
        failed = event.type in FAILURE_EVENTS or event.type == "ExecutionFailed"
        error = event.details.get("error")
        rows.append(
            f'<tr class="{"failure" if failed else ""}"><td>{event.id}</td>'
            f'<td class="mono">{escape((iso(event.timestamp_ms) or "")[11:23])}</td>'
            f"<td>{escape(event.type + (' (cut)' if event.truncated else ''))}</td>"
            f"<td>{escape(str(event.details.get('name') or ''))}</td>"
            f"<td>{escape(str(error or ''))}</td></tr>"
        )
    return (
        f'<section id="events"><details><summary>History events ({len(rows)})</summary>'
        "<table><tr><th>id</th><th>time (UTC)</th><th>type</th><th>state</th><th>error</th></tr>"
        f"{''.join(rows)}</table></details></section>"
    )


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"
