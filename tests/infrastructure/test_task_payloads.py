"""Each Lambda task's payload in the state machine (its ``Parameters``) carries exactly the fields
of the event struct the task reads (tasks/core/models.py): a key the task does not read, or a
field the state machine does not send, fails here rather than in an end-to-end run."""

from __future__ import annotations

import msgspec
import pytest

from tasks.contract import names
from tasks.core.models import (
    CompensateEvent,
    Payload,
    RecordEvent,
    ReportEvent,
    StoreEvent,
    ValidateEvent,
)

from .infra_helpers import state_machine_definition

EVENT_STRUCTS: dict[str, type[Payload]] = {
    names.VALIDATE_STATE: ValidateEvent,
    names.STORE_STATE: StoreEvent,
    names.RECORD_STATE: RecordEvent,
    names.COMPENSATE_STATE: CompensateEvent,
    names.REPORT_ORPHAN_STATE: ReportEvent,
}


@pytest.fixture(scope="module")
def states(default_stack):
    return state_machine_definition(default_stack.template_json)["States"]


def test_every_lambda_task_has_an_event_struct(states):
    tasks = {name for name, state in states.items() if state["Type"] == "Task"}
    assert tasks == set(EVENT_STRUCTS)


@pytest.mark.parametrize("state", sorted(EVENT_STRUCTS))
def test_the_payload_keys_are_the_event_struct_fields(states, state):
    sent = {key.removesuffix(".$") for key in states[state]["Parameters"]}
    read = {field.encode_name for field in msgspec.structs.fields(EVENT_STRUCTS[state])}
    assert sent == read
