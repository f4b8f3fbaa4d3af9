"""Each Lambda task's payload in the two state machines (its ``Parameters``) carries exactly the
fields of the event struct the task reads (tasks/core/models.py): a key the task does not read,
or a field the state machine does not send, fails here rather than in an end-to-end run."""

from __future__ import annotations

import msgspec
import pytest

from tasks.contract import names
from tasks.core.models import (
    CompensateEvent,
    Payload,
    RecordEvent,
    ReportEvent,
    SessionEvent,
    StoreEvent,
    ValidateEvent,
)

from .infra_helpers import SESSIONS_WORKFLOW, UPLOAD_WORKFLOW, WORKFLOWS, state_machine_definition

# Each workflow's Lambda task states and the event struct each task reads.
EVENT_STRUCTS: dict[str, dict[str, type[Payload]]] = {
    UPLOAD_WORKFLOW: {
        names.VALIDATE_STATE: ValidateEvent,
        names.STORE_STATE: StoreEvent,
        names.RECORD_STATE: RecordEvent,
        names.COMPENSATE_STATE: CompensateEvent,
        names.REPORT_ORPHAN_STATE: ReportEvent,
    },
    SESSIONS_WORKFLOW: {names.SESSION_STATE: SessionEvent},
}


@pytest.fixture(scope="module")
def states(default_stack):
    return {
        workflow: state_machine_definition(default_stack.template_json, workflow)["States"]
        for workflow in WORKFLOWS
    }


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_lambda_task_has_an_event_struct(states, workflow):
    tasks = {name for name, state in states[workflow].items() if state["Type"] == "Task"}
    assert tasks == set(EVENT_STRUCTS[workflow])


@pytest.mark.parametrize(
    ("workflow", "state"),
    [
        pytest.param(workflow, state, id=f"{workflow}-{state}")
        for workflow, structs in EVENT_STRUCTS.items()
        for state in sorted(structs)
    ],
)
def test_the_payload_keys_are_the_event_struct_fields(states, workflow, state):
    sent = {key.removesuffix(".$") for key in states[workflow][state]["Parameters"]}
    read = {field.encode_name for field in msgspec.structs.fields(EVENT_STRUCTS[workflow][state])}
    assert sent == read
