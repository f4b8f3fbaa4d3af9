"""``upload-ops orphans``: what no compensation accounted for, on demand.

The same pass as the scheduled sweep (tasks.core.sweep), against a deployed stack or local mode:
it reads the open intents older than the grace period and lists the object versions (and
metadata writes) of requests that did not commit. Without ``--delete`` it only reads; with it,
it deletes each one (a version by its VersionId, a metadata write undone) and closes the intents
it accounted for, exactly as the sweep does with ``sweepDeletesOrphans``.

Where the tables are and the grace period: against AWS, the stack's outputs (``LedgerTableName``,
``TableName``, ``SweepFunctionArn``) and the sweep function's environment; against local mode
(``--endpoint-url``), the emulated sweep function's environment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ops import logs
from tasks.contract import names
from tasks.core.observability import logger as task_logger
from tasks.core.sweep import Stores, SweepMode, SweepResult, sweep


@dataclass(frozen=True)
class SweepTarget:
    ledger_table: str
    metadata_table: str
    grace_seconds: float  # the deployed sweep's


def discover(
    session: boto3.session.Session, *, stack_name: str, endpoint_url: str | None
) -> SweepTarget:
    """The tables and the grace period of the stack (or of local mode)."""
    lambda_client = session.client("lambda", endpoint_url=endpoint_url)
    if endpoint_url is None:
        outputs = logs.stack_outputs(session, stack_name)
        missing = {"LedgerTableName", "TableName", "SweepFunctionArn"} - set(outputs)
        if missing:
            raise logs.DiscoveryError(f"the stack has no output {', '.join(sorted(missing))}")
        environment = _environment(lambda_client, outputs["SweepFunctionArn"])
    else:
        environment = _local_sweep_environment(lambda_client)
    try:
        return SweepTarget(
            ledger_table=environment[names.LEDGER_TABLE_NAME],
            metadata_table=environment[names.METADATA_TABLE_NAME],
            grace_seconds=float(environment[names.ORPHAN_GRACE_SECONDS]),
        )
    except (KeyError, ValueError) as exc:
        raise logs.DiscoveryError(f"the sweep function's environment lacks {exc}") from None


def _environment(lambda_client: Any, function: str) -> dict[str, str]:
    try:
        configuration = lambda_client.get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        raise logs.DiscoveryError(f"cannot read the sweep function {function}: {exc}") from None
    return dict(configuration.get("Environment", {}).get("Variables", {}))


def _local_sweep_environment(lambda_client: Any) -> dict[str, str]:
    for variables in logs.function_environments(lambda_client):
        if names.ORPHAN_GRACE_SECONDS in variables:
            return variables
    raise logs.DiscoveryError("no sweep function at this endpoint (is local mode running?)")


def find(
    session: boto3.session.Session,
    target: SweepTarget,
    *,
    endpoint_url: str | None,
    grace: timedelta,
    delete: bool,
) -> SweepResult:
    """One pass of the sweep (tasks.core.sweep): read only, or deleting."""
    stores = Stores(
        s3=session.client("s3", endpoint_url=endpoint_url),
        dynamodb=session.client("dynamodb", endpoint_url=endpoint_url),
        ledger_table=target.ledger_table,
        metadata_table=target.metadata_table,
    )
    mode = SweepMode.DELETE if delete else SweepMode.REPORT
    with _sweep_logs_off():
        return sweep(stores, grace=grace, now=datetime.now(UTC), mode=mode)


@contextmanager
def _sweep_logs_off() -> Iterator[None]:
    """The sweep's log lines are for its log group; here its result is the output, and stdout
    stays one table or one JSON document."""
    python_logger = logging.getLogger(task_logger.name)
    python_logger.disabled = True
    try:
        yield
    finally:
        python_logger.disabled = False


def result_model(result: SweepResult, grace: timedelta) -> dict[str, Any]:
    return {
        "graceSeconds": grace.total_seconds(),
        "examined": result.examined,
        "waiting": result.waiting,
        "closed": result.closed,
        "orphans": [orphan.to_dict() for orphan in result.orphans],
    }
