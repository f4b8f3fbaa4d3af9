"""The state graph of the history page: an inline SVG of the workflow's states and transitions
(:mod:`ops.workflow_graph`, laid out by :mod:`ops.graph_layout`) with one execution's path on it.

Each state is a ``<g class="state OUTCOME">`` (``data-state``, ``data-outcome``,
``data-attempts``): succeeded, retried (it succeeded after a retry), failed, compensation (a
state of the compensation path the execution went through), running, unvisited. A retried task
carries an "N attempts" badge. Transitions taken are drawn dark (violet on the way to and along
the compensation), the others pale; a transition the graph lacks but the execution took is
dotted. The page's stylesheet (:mod:`ops.html_page`) gives the classes their colours.
"""

from __future__ import annotations

from html import escape
from typing import Final

from ops.execution_path import Outcome, state_outcomes, taken
from ops.graph_layout import NODE_HEIGHT, NODE_WIDTH, Box, Layout, Point, layout
from ops.history import StateVisit, Timeline
from ops.workflow_graph import UPLOAD_WORKFLOW, Graph, State, Transition, with_execution

NAME_SIZE: Final = 12.0  # px
GLYPH_WIDTH: Final = 0.64  # DejaVu Sans' mean advance per em: a name that may not fit is squeezed
MARKERS: Final = ("idle", "taken", "compensation", "observed")


def graph_svg(timeline: Timeline) -> str:
    graph = with_execution(UPLOAD_WORKFLOW, [(s.name, s.type) for s in timeline.states])
    placed = layout(
        [s.name for s in graph.states], [(t.source, t.target) for t in graph.transitions]
    )
    outcomes = state_outcomes(timeline, graph)
    last_visits = {visit.name: visit for visit in timeline.states}
    steps = taken(timeline)
    left, top, width, height = placed.view_box
    parts = [
        f'<svg class="graph" viewBox="{left:g} {top:g} {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" aria-label="State graph">',
        _markers(),
        '<g class="transitions">',
        # the path last, so that it is drawn over the transitions it shares a gap with
        *(_transition(t, placed, graph, steps) for t in graph.transitions if _idle(t, steps)),
        *(_transition(t, placed, graph, steps) for t in graph.transitions if not _idle(t, steps)),
        "</g>",
        '<g class="labels">',
        *_labels(graph, placed),
        "</g>",
        '<g class="states">',
        *(
            _state(s, placed.boxes[s.name], outcomes[s.name], last_visits.get(s.name))
            for s in graph.states
        ),
        "</g></svg>",
    ]
    return "\n".join(parts)


def _markers() -> str:
    arrows = "".join(
        f'<marker id="arrow-{kind}" class="arrow {kind}" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker>'
        for kind in MARKERS
    )
    return f"<defs>{arrows}</defs>"


def _transition(
    transition: Transition, placed: Layout, graph: Graph, steps: set[tuple[str, str]]
) -> str:
    edge = (transition.source, transition.target)
    if edge in steps:
        roles = {_role(graph, transition.source), _role(graph, transition.target)}
        kind = "compensation" if "compensation" in roles else "taken"
    else:
        kind = "idle"
    if not transition.known:
        kind = "observed"
    title = f"{transition.source} → {transition.target}"
    if transition.label:
        title += f" ({transition.label})"
    return (
        f'<path class="transition {kind}" data-source="{escape(transition.source)}" '
        f'data-target="{escape(transition.target)}" d="{_path_data(placed.paths[edge])}" '
        f'marker-end="url(#arrow-{kind})"><title>{escape(title)}</title></path>'
    )


def _idle(transition: Transition, steps: set[tuple[str, str]]) -> bool:
    return (transition.source, transition.target) not in steps


def _role(graph: Graph, name: str) -> str:
    state = graph.state(name)
    return "unknown" if state is None else state.role


def _path_data(points: list[Point]) -> str:
    head, *rest = points
    return f"M{head[0]:g},{head[1]:g} " + " ".join(f"L{x:g},{y:g}" for x, y in rest)


def _labels(graph: Graph, placed: Layout) -> list[str]:
    """Why a transition is taken, written above its target (the arrow comes in from the left):
    where the target is reached from several states, the one it names is said."""
    labels = []
    for state in graph.states:
        incoming = [t for t in graph.transitions if t.target == state.name]
        named = [t for t in incoming if t.label]
        if not named:
            continue
        if len(named) == len(incoming) and len({t.label for t in named}) == 1:
            text = named[0].label
        else:
            text = "; ".join(f"{t.source}: {t.label}" for t in named)
        box = placed.boxes[state.name]
        labels.append(
            f'<text class="transition-label" x="{box.x + 2:g}" y="{box.y - 6:g}">'
            f"{escape(text)}</text>"
        )
    return labels


def _state(state: State, box: Box, outcome: Outcome, visit: StateVisit | None) -> str:
    attempts = visit.attempts if visit is not None else 0
    classes = f"state {outcome} role-{state.role}" + (" end" if state.role == "end" else "")
    rounding = NODE_HEIGHT / 2 if state.role == "end" else 6
    subtitle = state.type if visit is None else f"{state.type} · {_visit_time(visit)}"
    title = f"{state.name} ({state.type}): {outcome}"
    if visit is not None and visit.error:
        title += f", {visit.error}"
    parts = [
        f'<g class="{classes}" data-state="{escape(state.name)}" data-outcome="{outcome}" '
        f'data-attempts="{attempts}"><title>{escape(title)}</title>',
        f'<rect x="{box.x:g}" y="{box.y:g}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" '
        f'rx="{rounding:g}"/>',
        _text("name", box.x + NODE_WIDTH / 2, box.y + 18, state.name, NAME_SIZE),
        _text("detail", box.x + NODE_WIDTH / 2, box.y + 33, subtitle, NAME_SIZE * 0.85),
    ]
    if attempts > 1:
        parts.append(_badge(box, f"{attempts} attempts"))
    parts.append("</g>")
    return "".join(parts)


def _visit_time(visit: StateVisit) -> str:
    if visit.type == "Fail":
        return "ended here"  # a Fail state has no exit event: the execution failed
    if visit.exited_ms is None:
        return "not exited"
    return f"{visit.exited_ms - visit.entered_ms} ms"


def _text(kind: str, x: float, y: float, text: str, size: float) -> str:
    """Centred text, squeezed into the box when it would not fit."""
    room = NODE_WIDTH - 10
    squeeze = ""
    if len(text) * size * GLYPH_WIDTH > room:
        squeeze = f' textLength="{room}" lengthAdjust="spacingAndGlyphs"'
    return (
        f'<text class="{kind}" x="{x:g}" y="{y:g}" text-anchor="middle"{squeeze}>'
        f"{escape(text)}</text>"
    )


def _badge(box: Box, text: str) -> str:
    width = 9 + len(text) * 6
    x, y = box.x + NODE_WIDTH - width + 6, box.y - 9
    return (
        f'<g class="badge"><rect x="{x:g}" y="{y:g}" width="{width}" height="16" rx="8"/>'
        f'<text x="{x + width / 2:g}" y="{y + 12:g}" text-anchor="middle">{escape(text)}</text></g>'
    )
