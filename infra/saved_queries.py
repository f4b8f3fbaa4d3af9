"""CloudWatch Logs Insights saved queries: one per question operators ask, over the log groups
that answer it. They appear in the console's Logs Insights page under "Saved queries", in a folder
named after the stack (README "Runbook").

- ``request-history``: everything logged about one request (API access log, workflow events,
  task lines), oldest first. Saved queries take no parameters: replace ``REQUEST_ID`` with the
  request id (the ``x-amzn-RequestId`` the client got) before running it.
- ``failed-executions``: executions of both workflows that failed, timed out or were aborted for
  a reason other than the request, in the window picked in the console.
- ``compensations-and-orphans``: every compensation, and every ``ORPHAN`` line (a compensation
  that could not undo everything, or what the sweep found).
- ``slowest-executions``: executions by duration, first event to last.

The field names are those of Step Functions' execution-history log events (``type``,
``details.name``, ``details.error``, ``execution_arn``) and of the tasks' JSON lines (``message``,
``requestId``); the messages are the tasks' own (tests check both against the code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import TaskFunctions
from tasks.contract.errors import REJECTED_ERROR_NAMES

REQUEST_ID_PLACEHOLDER: Final = "REQUEST_ID"
ENDED_EVENTS: Final = ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")
COMPENSATED_MESSAGE: Final = "Compensated"
ORPHAN_PREFIX: Final = "ORPHAN:"


def _quoted(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def _queries() -> dict[str, logs.QueryString]:
    """Query name -> its text; which log groups each runs on is in :class:`SavedQueries`."""
    return {
        "request-history": logs.QueryString(
            fields=["@timestamp", "@log", "type", "details.name", "details.error", "message"],
            filter_statements=[f'@message like "{REQUEST_ID_PLACEHOLDER}"'],
            sort="@timestamp asc",
            limit=1000,
        ),
        "failed-executions": logs.QueryString(
            fields=["@timestamp", "execution_arn", "type", "details.error", "details.cause"],
            filter_statements=[
                f"type in {_quoted(ENDED_EVENTS)}",
                f"details.error not in {_quoted(REJECTED_ERROR_NAMES)}",
            ],
            sort="@timestamp desc",
            limit=1000,
        ),
        "compensations-and-orphans": logs.QueryString(
            fields=["@timestamp", "@log", "requestId", "message", "deletedVersionIds"],
            filter_statements=[
                f'message = "{COMPENSATED_MESSAGE}" or message like /^{ORPHAN_PREFIX}/'
            ],
            sort="@timestamp desc",
            limit=1000,
        ),
        "slowest-executions": logs.QueryString(
            filter_statements=["ispresent(execution_arn)"],
            stats_statements=[
                "min(@timestamp) as started, max(@timestamp) - min(@timestamp) as durationMs, "
                "latest(type) as lastEvent by execution_arn"
            ],
            sort="durationMs desc",
            limit=50,
        ),
    }


class SavedQueries(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: TaskFunctions,
        workflow_log_group: logs.ILogGroup,
        sessions_log_group: logs.ILogGroup,
        access_log_group: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        workflows = [workflow_log_group, sessions_log_group]
        task_logs = [task.log_group for task in functions.all]
        log_groups: dict[str, list[logs.ILogGroup]] = {
            "request-history": [access_log_group, *workflows, *task_logs],
            "failed-executions": workflows,
            "compensations-and-orphans": [
                functions.compensate.log_group,
                functions.report.log_group,
                functions.sweep.log_group,
            ],
            "slowest-executions": workflows,
        }
        folder = Stack.of(self).stack_name
        for name, query in _queries().items():
            logs.QueryDefinition(
                self,
                name,
                query_definition_name=f"{folder}/{name}",
                query_string=query,
                log_groups=log_groups[name],
            )
