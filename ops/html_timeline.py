"""The timeline of the history page: an inline SVG with one horizontal bar per state entered,
to scale, from when it was entered to when it was exited, on an axis in milliseconds from the
execution's start; a task's attempts are separate segments on its bar (a retry's wait is the bar
between them). The first row is the execution itself.

A bar is a ``<rect class="bar OUTCOME">`` with ``data-state``, ``data-start-ms`` and
``data-duration-ms`` (from the execution's start); its ``width`` is the duration times the scale
the ``<svg>`` carries in ``data-px-per-ms`` (a bar of 0 ms is drawn as a hairline). A state
never exited runs to the execution's end, or to the last event, and is also ``open``. An attempt
is a ``<rect class="attempt ok|failed|open">`` measured the same way.
"""

from __future__ import annotations

from html import escape
from typing import Final

from ops.execution_path import Attempt, attempts, visit_outcome
from ops.history import StateVisit, Timeline
from ops.workflow_graph import UPLOAD_WORKFLOW

LABEL_WIDTH: Final = 190
PLOT_WIDTH: Final = 900
RIGHT: Final = 170  # room after the plot for the last bar's duration and attempts
ROW: Final = 24
BAR: Final = 16
SEGMENT: Final = 8  # an attempt's height, inside its state's bar
AXIS: Final = 28  # the axis' labels above the first row
MIN_BAR: Final = 1.5  # px: a bar of 0 ms stays visible
TICKS: Final = 8  # about as many ticks as this


class _Scale:
    """Milliseconds since the execution's start -> x."""

    def __init__(self, origin: int, end: int) -> None:
        self.origin = origin
        self.span = max(end - origin, 1)
        self.px_per_ms = PLOT_WIDTH / self.span

    def x(self, at_ms: int) -> float:
        return LABEL_WIDTH + (at_ms - self.origin) * self.px_per_ms

    def width(self, duration_ms: int) -> float:
        return max(duration_ms * self.px_per_ms, MIN_BAR)


def timeline_svg(timeline: Timeline) -> str:
    end = _end_ms(timeline)
    scale = _Scale(timeline.started_ms or _first_ms(timeline, end), end)
    rows = [_execution_row(timeline, scale, end)]
    for index, (visit, tries) in enumerate(zip(timeline.states, attempts(timeline), strict=True)):
        outcome = visit_outcome(visit, tries, UPLOAD_WORKFLOW, timeline.status)
        rows.append(_state_row(index + 1, visit, outcome, tries, scale, end))
    height = AXIS + ROW * len(rows) + 6
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT
    return "\n".join(
        [
            f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" data-px-per-ms="{scale.px_per_ms:.10g}" role="img" '
            'aria-label="Timeline">',
            _axis(scale, height),
            *rows,
            "</svg>",
        ]
    )


def _end_ms(timeline: Timeline) -> int:
    """Where the axis ends: the execution's end, else the last thing logged."""
    times = [e.timestamp_ms for e in timeline.events]
    times += [s.exited_ms or s.entered_ms for s in timeline.states]
    if timeline.stopped_ms is not None:
        times.append(timeline.stopped_ms)
    return max(times, default=timeline.started_ms or 0)


def _first_ms(timeline: Timeline, end: int) -> int:
    return min((s.entered_ms for s in timeline.states), default=end)


def _execution_row(timeline: Timeline, scale: _Scale, end: int) -> str:
    status = timeline.status.lower().replace("_", "-")
    bar = _rect(f"bar execution {status}", 0, "(execution)", scale.origin, end, scale)
    duration = timeline.duration_ms
    note = f"{duration} ms" if duration is not None else "not ended"
    return _row(0, "execution", bar, note, scale.x(end))


def _state_row(
    index: int, visit: StateVisit, outcome: str, tries: list[Attempt], scale: _Scale, end: int
) -> str:
    exited = visit.exited_ms if visit.exited_ms is not None else end
    # A Fail state has no exit event: it lasts until the execution failed.
    open_class = " open" if visit.exited_ms is None and visit.type != "Fail" else ""
    bars = [_rect(f"bar {outcome}{open_class}", index, visit.name, visit.entered_ms, exited, scale)]
    for attempt in tries:
        kind = "open" if attempt.ended_ms is None else "failed" if attempt.failed else "ok"
        stop = end if attempt.ended_ms is None else attempt.ended_ms
        bars.append(_rect(f"attempt {kind}", index, visit.name, attempt.started_ms, stop, scale))
    note = f"{exited - visit.entered_ms} ms" + (" (not exited)" if open_class else "")
    if visit.attempts > 1:
        note += f" · {visit.attempts} attempts"
    return _row(index, visit.name, "".join(bars), note, scale.x(exited))


def _rect(classes: str, row: int, state: str, start_ms: int, stop_ms: int, scale: _Scale) -> str:
    height = SEGMENT if classes.startswith("attempt") else BAR
    y = AXIS + row * ROW + (ROW - height) / 2
    duration = stop_ms - start_ms
    return (
        f'<rect class="{classes}" x="{scale.x(start_ms):.2f}" y="{y:g}" '
        f'width="{scale.width(duration):.2f}" height="{height}" data-state="{escape(state)}" '
        f'data-start-ms="{start_ms - scale.origin}" data-duration-ms="{duration}">'
        f"<title>{escape(state)}: {duration} ms</title></rect>"
    )


def _row(index: int, label: str, bars: str, note: str, note_x: float) -> str:
    baseline = AXIS + index * ROW + ROW / 2 + 4
    return (
        f'<g class="row" data-row="{index}">'
        f'<text class="row-label" x="{LABEL_WIDTH - 8}" y="{baseline:g}" text-anchor="end">'
        f"{escape(label)}</text>{bars}"
        f'<text class="row-note" x="{note_x + 6:.2f}" y="{baseline:g}">{escape(note)}</text></g>'
    )


def tick_step(span_ms: int) -> int:
    """A round step (1, 2 or 5 times a power of ten ms) giving about :data:`TICKS` ticks."""
    raw = max(span_ms / TICKS, 1)
    power = 1
    while power * 10 <= raw:
        power *= 10
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _axis(scale: _Scale, height: int) -> str:
    step = tick_step(scale.span)
    ticks = []
    for at in range(0, scale.span + 1, step):
        x = LABEL_WIDTH + at * scale.px_per_ms
        ticks.append(
            f'<line class="tick" x1="{x:.2f}" y1="{AXIS - 6}" x2="{x:.2f}" y2="{height}"/>'
            f'<text class="tick-label" x="{x:.2f}" y="{AXIS - 10}" text-anchor="middle">'
            f"{at} ms</text>"
        )
    return f'<g class="axis">{"".join(ticks)}</g>'
