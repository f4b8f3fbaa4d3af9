"""What one execution did, in the terms the history page draws it: the outcome of each state,
the transitions it took, and each attempt of a task with its own times (from the history
events: an attempt runs from its ``*Scheduled`` event to the event that ended it)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

from ops.history import FAILURE_EVENTS, SCHEDULED_EVENTS, StateVisit, Timeline
from ops.workflow_graph import Graph

Outcome = Literal["succeeded", "retried", "failed", "compensation", "running", "unvisited"]
SUCCESS_EVENTS: Final = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded"})
ENDED: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Attempt:
    started_ms: int
    ended_ms: int | None  # None: the execution ended (or the log ends) before the attempt did
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def attempts(timeline: Timeline) -> list[list[Attempt]]:
    """The attempts of each of ``timeline.states``, in the same order. The events are walked
    as :func:`ops.history.build_timeline` walks them, so the visits line up."""
    found: list[list[Attempt]] = []
    open_visits: list[int] = []
    for event in timeline.events:
        name = event.details.get("name")
        if event.type.endswith("StateEntered") and isinstance(name, str):
            open_visits.append(len(found))
            found.append([])
        elif event.type.endswith("StateExited") and isinstance(name, str):
            for index in reversed(open_visits):
                if timeline.states[index].name == name:
                    open_visits.remove(index)
                    break
        elif event.type in SCHEDULED_EVENTS and open_visits:
            found[open_visits[-1]].append(Attempt(event.timestamp_ms, None))
        elif event.type in SUCCESS_EVENTS | FAILURE_EVENTS and open_visits:
            current = found[open_visits[-1]]
            if current and current[-1].ended_ms is None:
                error = None
                if event.type in FAILURE_EVENTS:
                    error = str(event.details.get("error") or event.type)
                current[-1] = Attempt(current[-1].started_ms, event.timestamp_ms, error)
    return found


def visit_outcome(visit: StateVisit, tries: list[Attempt], graph: Graph, status: str) -> Outcome:
    """Failed: its last attempt failed (``visit.error`` is any attempt's), or it is where the
    execution failed or stopped."""
    state = graph.state(visit.name)
    last_failed = tries[-1].failed if tries else visit.error is not None
    if last_failed or visit.type == "Fail":
        return "failed"
    if visit.exited_ms is None and visit.type != "Succeed":
        return "failed" if status in ENDED else "running"
    if state is not None and state.role == "compensation":
        return "compensation"
    return "retried" if visit.attempts > 1 else "succeeded"


def state_outcomes(timeline: Timeline, graph: Graph) -> dict[str, Outcome]:
    """Every state of ``graph``: the outcome of its last visit, or unvisited."""
    outcomes: dict[str, Outcome] = {s.name: "unvisited" for s in graph.states}
    for visit, tries in zip(timeline.states, attempts(timeline), strict=True):
        outcomes[visit.name] = visit_outcome(visit, tries, graph, timeline.status)
    return outcomes


def taken(timeline: Timeline) -> set[tuple[str, str]]:
    """The transitions the execution took: each state to the next one it entered."""
    visits = timeline.states
    return {(a.name, b.name) for a, b in pairwise(visits)}


def compensation_note(timeline: Timeline) -> str | None:
    """What the compensation did, in one sentence; None when it did not run."""
    if timeline.compensation is None:
        return None
    if timeline.compensation == "done":
        return "Compensation ran: the file versions this request stored were deleted."
    return "Compensation FAILED: what it could not undo was reported as an orphan."
