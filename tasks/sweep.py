"""Sweep task: scheduled every few minutes (EventBridge Scheduler), outside the workflow.

Finds, reports and (with the context flag ``sweepDeletesOrphans``) deletes what no compensation
accounted for: tasks.core.sweep says how, and why it never touches a committed version or one
younger than the grace period.

Event: {"requestId"} (the schedule's execution id, for the logs); returns the counts of the
pass. Env: LEDGER_TABLE_NAME, METADATA_TABLE_NAME, ORPHAN_GRACE_SECONDS, SWEEP_DELETES_ORPHANS.
Metrics: OrphanVersions (the orphans found, every run while they remain: its alarm stays on until
they are dealt with), OrphansDeleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tasks.contract import ledger as ledger_contract
from tasks.contract import names
from tasks.contract.errors import InvalidTaskInput
from tasks.contract.timing import SWEEP_SDK
from tasks.core import aws
from tasks.core.entry import lambda_handler, task_input
from tasks.core.models import SweepEvent
from tasks.core.observability import emit_metric
from tasks.core.sweep import Stores, SweepMode, sweep
from tasks.core.tracing import tracer

TASK = names.SWEEP


def settings(env: Mapping[str, str]) -> tuple[timedelta, SweepMode]:
    """The grace period and the mode the environment asks for."""
    raw = env.get(names.ORPHAN_GRACE_SECONDS) or str(ledger_contract.DEFAULT_GRACE_SECONDS)
    try:
        grace = timedelta(seconds=float(raw))
    except ValueError:
        raise InvalidTaskInput(f"{names.ORPHAN_GRACE_SECONDS} is not a number") from None
    deletes = (env.get(names.SWEEP_DELETES_ORPHANS) or "").lower() == "true"
    return grace, SweepMode.DELETE if deletes else SweepMode.SWEEP


def run(event: dict[str, Any], *, env: Mapping[str, str]) -> dict[str, Any]:
    """One sweep with settings and endpoint taken from ``env``."""
    with task_input(TASK, SweepEvent, event, env):
        grace, mode = settings(env)
        stores = Stores(
            s3=aws.s3_client(env, SWEEP_SDK),
            dynamodb=aws.dynamodb_client(env, SWEEP_SDK),
            ledger_table=aws.required_setting(env, names.LEDGER_TABLE_NAME),
            metadata_table=aws.required_setting(env, names.METADATA_TABLE_NAME),
        )
        with aws.storage_errors("Sweeping the open uploads"):
            result = sweep(stores, grace=grace, now=datetime.now(UTC), mode=mode)
        found = len(result.orphans)
        if found:
            emit_metric(names.ORPHAN_VERSIONS, MetricUnit.Count, found, env=env)
        deleted = sum(orphan.deleted for orphan in result.orphans)
        if deleted:
            emit_metric(names.ORPHANS_DELETED, MetricUnit.Count, deleted, env=env)
        return {
            "examined": result.examined,
            "orphans": found,
            "deleted": deleted,
            "closed": result.closed,
            "waiting": result.waiting,
            "unfinished": result.unfinished,
        }


handler = lambda_handler(run, tracer=tracer)
