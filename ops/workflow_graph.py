"""The upload workflow's states and transitions, as a graph to draw an execution on.

Where the graph comes from: this module states it, from the state ids in
:mod:`tasks.contract.names` and the transitions of infra/state_machine.py (every ``Next``,
``Default``, ``Choices[].Next`` and ``Catch[].Next`` of the definition). The alternatives need
more than the CLI has: ``DescribeStateMachine`` (``states:DescribeStateMachine``) or the deployed
template (``cloudformation:GetTemplate``) are permissions the CLI does not use elsewhere (it reads
log groups and stack outputs only), and importing ``infra`` would pull the CDK into the CLI. So
that this copy cannot drift from the definition, ``tests/ops/test_history_html.py`` compares it
with the definition local mode runs (synthesized from infra/). And an execution can still show
what the graph lacks (say, a state added since this CLI was installed): :func:`with_execution`
adds every state it entered and every step it took that the graph does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, Literal

from tasks.contract import names

Role = Literal["main", "compensation", "end", "unknown"]


@dataclass(frozen=True)
class State:
    name: str
    type: str  # the ASL type: Task, Pass, Choice, Succeed, Fail
    role: Role  # "compensation": on the way to undoing a stored file


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    label: str = ""  # when it is taken, if not simply next: the caught error, the choice
    known: bool = True  # False: seen in an execution, not in the graph


@dataclass(frozen=True)
class Graph:
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]

    def state(self, name: str) -> State | None:
        return next((s for s in self.states if s.name == name), None)


_CLIENT_ERROR = "client error"  # tasks.contract.errors.CLIENT_ERROR_NAMES: a 4xx, nothing stored
_ANY_ERROR = "any error"

# Listed in the order to draw them when they share a column: the way an upload usually goes first.
UPLOAD_WORKFLOW: Final = Graph(
    states=(
        State(names.VALIDATE_STATE, "Task", "main"),
        State(names.STORE_STATE, "Task", "main"),
        State(names.DISCARD_FILE_CONTENT_STATE, "Pass", "main"),
        State(names.ALREADY_UPLOADED_STATE, "Choice", "main"),
        State(names.RECORD_STATE, "Task", "main"),
        State(names.UPLOADED_STATE, "Succeed", "end"),
        State(names.REPLAYED_STATE, "Succeed", "end"),
        State(names.REJECTED_STATE, "Fail", "end"),
        State(names.RECORD_FAILED_STATE, "Pass", "compensation"),
        State(names.STORE_FAILED_STATE, "Pass", "compensation"),
        State(names.CONTENT_MISMATCH_STATE, "Pass", "compensation"),
        State(names.COMPENSATE_STATE, "Task", "compensation"),
        State(names.COMPENSATED_STATE, "Choice", "compensation"),
        State(names.REPORT_ORPHAN_STATE, "Task", "compensation"),
        State(names.UPLOAD_FAILED_STATE, "Fail", "end"),
        State(names.CONTENT_REJECTED_STATE, "Fail", "end"),
        State(names.COMPENSATION_FAILED_STATE, "Fail", "end"),
    ),
    transitions=(
        Transition(names.VALIDATE_STATE, names.STORE_STATE),
        Transition(names.VALIDATE_STATE, names.REJECTED_STATE, _CLIENT_ERROR),
        Transition(names.VALIDATE_STATE, names.UPLOAD_FAILED_STATE, _ANY_ERROR),
        Transition(names.STORE_STATE, names.DISCARD_FILE_CONTENT_STATE),
        Transition(names.STORE_STATE, names.REJECTED_STATE, _CLIENT_ERROR),
        Transition(names.STORE_STATE, names.CONTENT_MISMATCH_STATE, "ContentMismatch"),
        Transition(names.STORE_STATE, names.STORE_FAILED_STATE, _ANY_ERROR),
        Transition(names.DISCARD_FILE_CONTENT_STATE, names.ALREADY_UPLOADED_STATE),
        Transition(names.ALREADY_UPLOADED_STATE, names.RECORD_STATE),
        Transition(names.ALREADY_UPLOADED_STATE, names.REPLAYED_STATE, "replay"),
        Transition(names.RECORD_STATE, names.UPLOADED_STATE),
        Transition(names.RECORD_STATE, names.RECORD_FAILED_STATE, _ANY_ERROR),
        Transition(names.RECORD_FAILED_STATE, names.COMPENSATE_STATE),
        Transition(names.STORE_FAILED_STATE, names.COMPENSATE_STATE),
        Transition(names.CONTENT_MISMATCH_STATE, names.COMPENSATE_STATE),
        Transition(names.COMPENSATE_STATE, names.COMPENSATED_STATE),
        Transition(names.COMPENSATE_STATE, names.COMPENSATION_FAILED_STATE, "reported"),
        Transition(names.COMPENSATE_STATE, names.REPORT_ORPHAN_STATE, "crashed, timed out"),
        Transition(names.COMPENSATED_STATE, names.UPLOAD_FAILED_STATE),
        Transition(names.COMPENSATED_STATE, names.CONTENT_REJECTED_STATE, "mismatch"),
        Transition(names.REPORT_ORPHAN_STATE, names.COMPENSATION_FAILED_STATE),
    ),
)


def with_execution(graph: Graph, path: Sequence[tuple[str, str]]) -> Graph:
    """``graph`` plus what an execution did that it lacks. ``path``: each state entered, in
    order, with its type (``Task``, ``Pass``...)."""
    states = list(graph.states)
    for name, state_type in path:
        if all(s.name != name for s in states):
            states.append(State(name, state_type, "unknown"))
    transitions = list(graph.transitions)
    known = {(t.source, t.target) for t in transitions}
    for (source, _), (target, _) in pairwise(path):
        if (source, target) not in known:
            known.add((source, target))
            transitions.append(Transition(source, target, known=False))
    return Graph(tuple(states), tuple(transitions))
