"""The CloudWatch Logs Insights saved queries (infra/saved_queries.py): their names, the log groups
each runs on, and that the fields and messages they look for are the ones the code writes."""

from __future__ import annotations

from typing import Any

import pytest

from infra.saved_queries import COMPENSATED_MESSAGE, ORPHAN_PREFIX, REQUEST_ID_PLACEHOLDER
from infra.stack import STACK_ID
from ops.history import STATUS_BY_EVENT
from tasks import compensate, report
from tasks.contract.errors import REJECTED_ERROR_NAMES
from tasks.core import sweep

from .infra_helpers import logical_id_with_prefix, resources_of_type

QUERIES = (
    "request-history",
    "failed-executions",
    "compensations-and-orphans",
    "slowest-executions",
)


def _log_group(template: dict[str, Any], prefix: str) -> dict[str, str]:
    return {"Ref": logical_id_with_prefix(template, "AWS::Logs::LogGroup", prefix)}


@pytest.fixture(scope="module")
def queries(default_stack: Any) -> dict[str, dict[str, Any]]:
    """Query name (after the stack's folder) -> its properties."""
    found = {}
    for resource in resources_of_type(
        default_stack.template_json, "AWS::Logs::QueryDefinition"
    ).values():
        folder, name = resource["Properties"]["Name"].split("/")
        assert folder == STACK_ID
        found[name] = resource["Properties"]
    return found


def test_one_saved_query_per_common_question_in_the_stacks_folder(
    queries: dict[str, dict[str, Any]],
) -> None:
    assert sorted(queries) == sorted(QUERIES)


def test_each_query_runs_on_the_log_groups_that_answer_it(
    default_stack: Any, queries: dict[str, dict[str, Any]]
) -> None:
    template = default_stack.template_json

    def groups(*prefixes: str) -> list[dict[str, str]]:
        return [_log_group(template, prefix) for prefix in prefixes]

    workflows = groups("WorkflowLogGroup", "SessionsLogGroup")
    tasks = groups(
        *(
            f"Tasks{task}LogGroup"
            for task in ("Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session")
        )
    )
    assert queries["request-history"]["LogGroupNames"] == [
        *groups("EdgeAccessLogs"),
        *workflows,
        *tasks,
    ]
    assert queries["failed-executions"]["LogGroupNames"] == workflows
    assert queries["slowest-executions"]["LogGroupNames"] == workflows
    assert queries["compensations-and-orphans"]["LogGroupNames"] == groups(
        "TasksCompensateLogGroup",
        "TasksReportLogGroup",
        "TasksSweepLogGroup",
    )


def test_the_request_history_query_names_its_placeholder(
    queries: dict[str, dict[str, Any]],
) -> None:
    assert queries["request-history"]["QueryString"].splitlines() == [
        "fields @timestamp, @log, type, details.name, details.error, message",
        f'| filter @message like "{REQUEST_ID_PLACEHOLDER}"',
        "| sort @timestamp asc",
        "| limit 1000",
    ]


def test_failed_executions_are_the_ended_events_not_caused_by_the_request(
    queries: dict[str, dict[str, Any]],
) -> None:
    text = queries["failed-executions"]["QueryString"]
    ended = [event for event, status in STATUS_BY_EVENT.items() if status != "SUCCEEDED"]
    assert f"| filter type in [{', '.join(f'{e!r}' for e in ended)}]".replace("'", '"') in text
    rejected = ", ".join(f'"{name}"' for name in REJECTED_ERROR_NAMES)
    assert f"| filter details.error not in [{rejected}]" in text


def test_compensations_and_orphans_match_the_tasks_own_messages(
    queries: dict[str, dict[str, Any]],
) -> None:
    text = queries["compensations-and-orphans"]["QueryString"]
    assert f'message = "{COMPENSATED_MESSAGE}" or message like /^{ORPHAN_PREFIX}/' in text
    assert compensate.COMPENSATED_MESSAGE == COMPENSATED_MESSAGE
    orphan_lines = (
        compensate.ORPHAN_MESSAGE,
        report.ORPHAN_MESSAGE,
        sweep.ORPHAN_MESSAGE,
        sweep.METADATA_MESSAGE,
    )
    for orphan_line in orphan_lines:
        assert orphan_line.startswith(ORPHAN_PREFIX)


def test_slowest_executions_rank_executions_by_first_to_last_event(
    queries: dict[str, dict[str, Any]],
) -> None:
    assert queries["slowest-executions"]["QueryString"].splitlines() == [
        "filter ispresent(execution_arn)",
        "| stats min(@timestamp) as started, max(@timestamp) - min(@timestamp) as durationMs, "
        "latest(type) as lastEvent by execution_arn",
        "| sort durationMs desc",
        "| limit 50",
    ]
