"""``upload-ops``: what happened to an upload, from the stack's CloudWatch Logs, what no
compensation accounted for, and whether a deployed stack works end to end (``smoke``).

Against AWS the log groups come from the CloudFormation stack's outputs; against local mode
(``--endpoint-url http://127.0.0.1:5000``) from their names (see :mod:`ops.logs`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from rich.console import Console

from ops import history, html_page, logs, orphans, render, smoke
from upload_client.cli import API_KEY_ENV
from upload_client.errors import ConfigurationError

app = typer.Typer(add_completion=False, help=__doc__, no_args_is_help=True)
PIPE_WIDTH: Final = 160  # columns when stdout is not a terminal (``COLUMNS`` overrides)
DEFAULT_STACK: Final = "UploadService"
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

StackName = Annotated[
    str, typer.Option("--stack-name", help="The stack whose outputs name the log groups.")
]
EndpointUrl = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint override, e.g. local mode's emulator."),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region.")]
StateMachineLogGroup = Annotated[
    str | None,
    typer.Option("--state-machine-log-group", help="Read this log group (no discovery)."),
]
TaskLogGroups = Annotated[
    list[str] | None,
    typer.Option("--task-log-group", help="A task's log group (repeatable; no discovery)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def _console() -> Console:
    """Made per command: stdout may have been replaced (tests), and a pipe gets wide lines."""
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(highlight=False, width=wide)


def parse_duration(value: str, option: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d`` -> seconds; a BadParameter names ``option``."""
    match = _DURATION.match(value)
    if match is None:
        raise typer.BadParameter(f"{value!r} is not like 90s, 30m, 24h or 7d", param_hint=option)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _setup(
    *,
    stack_name: str,
    endpoint_url: str | None,
    region: str | None,
    state_machine_log_group: str | None,
    task_log_groups: list[str] | None,
) -> tuple[Any, logs.LogGroups]:
    try:
        session = logs.aws_session(region, endpoint_url)
        client = logs.logs_client(session, endpoint_url)
        groups = logs.discover(
            session,
            client,
            stack_name=stack_name,
            endpoint_url=endpoint_url,
            state_machine_log_group=state_machine_log_group,
            task_log_groups=task_log_groups or [],
        )
    except logs.DiscoveryError as exc:
        _fail(str(exc))
    except BotoCoreError as exc:
        _fail(_configuration_problem(exc))
    return client, groups


def _read_logs(
    *,
    since: str,
    stack_name: str,
    endpoint_url: str | None,
    region: str | None,
    state_machine_log_group: str | None,
    task_log_groups: list[str] | None,
    history_pattern: str,
    task_pattern: str,
    request_id: str | None = None,
) -> tuple[list[Any], list[Any]]:
    """The workflow's history events and the tasks' log lines since ``since``, as filtered."""
    start_ms = int((time.time() - parse_duration(since, "--since")) * 1000)
    client, groups = _setup(
        stack_name=stack_name,
        endpoint_url=endpoint_url,
        region=region,
        state_machine_log_group=state_machine_log_group,
        task_log_groups=task_log_groups,
    )
    try:
        events = [
            event
            for record in logs.fetch(
                client, groups.state_machine, start_ms=start_ms, filter_pattern=history_pattern
            )
            if (event := logs.parse_history_record(record)) is not None
        ]
        lines = [
            line
            for task, group in groups.tasks.items()
            for record in logs.fetch(client, group, start_ms=start_ms, filter_pattern=task_pattern)
            if (
                line := logs.parse_task_record(
                    record, log_group=group, task=task, request_id=request_id
                )
            )
            is not None
        ]
    except (ClientError, BotoCoreError) as exc:
        _fail(f"reading the logs failed: {exc}")
    return events, lines


def _configuration_problem(exc: BotoCoreError) -> str:
    """What is wrong with the AWS configuration, and what to do (a missing region is the usual
    one: the commands call AWS's regional endpoints)."""
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (or a profile's region)"
    return f"the AWS configuration cannot be used: {exc}"


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _print_json(document: object) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


@app.command("history")
def history_command(
    request_id_or_execution_arn: Annotated[
        str, typer.Argument(metavar="REQUEST_ID_OR_EXECUTION_ARN")
    ],
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK,
    endpoint_url: EndpointUrl = None,
    region: Region = None,
    since: Annotated[str, typer.Option(help="How far back to search: 30m, 24h, 7d.")] = "24h",
    state_machine_log_group: StateMachineLogGroup = None,
    task_log_group: TaskLogGroups = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write one self-contained HTML page to FILE instead: the state graph with the "
            "path taken, a timeline to scale, the task logs.",
        ),
    ] = None,
) -> None:
    """Timeline of one execution: states, retries, failures, compensation, the HTTP status the
    client got, and the tasks' log lines of that request."""
    try:
        request_id = history.request_id_of(request_id_or_execution_arn)
        pattern = logs.quoted_term(request_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="REQUEST_ID_OR_EXECUTION_ARN") from None
    if as_json and html is not None:
        _fail("give --json or --html, not both")
    events, lines = _read_logs(
        since=since,
        stack_name=stack_name,
        endpoint_url=endpoint_url,
        region=region,
        state_machine_log_group=state_machine_log_group,
        task_log_groups=task_log_group,
        history_pattern=pattern,
        task_pattern=pattern,
        request_id=request_id,
    )
    timeline = history.build_timeline(events, request_id, lines)
    found = bool(timeline.events or timeline.task_logs)
    if html is not None:
        if found:  # no page for a request the logs do not know
            _write_page(timeline, html)
    elif as_json:
        _print_json(history.timeline_model(timeline))
    else:
        render.timeline(_console(), timeline)
    if not found:
        typer.echo(f"No log events of request {request_id} in the last {since}.", err=True)
        raise typer.Exit(1)


def _write_page(timeline: history.Timeline, path: Path) -> None:
    try:
        html_page.write(timeline, path)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")
    typer.echo(f"Wrote {path.resolve()}")


@app.command("executions")
def executions_command(
    since: Annotated[str, typer.Option(help="How far back: 30m, 1h, 7d.")] = "1h",
    status: Annotated[
        str | None, typer.Option(help="Only this status: FAILED, SUCCEEDED or TIMED_OUT.")
    ] = None,
    product: Annotated[str | None, typer.Option(help="Only uploads of this productId.")] = None,
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK,
    endpoint_url: EndpointUrl = None,
    region: Region = None,
    state_machine_log_group: StateMachineLogGroup = None,
    task_log_group: TaskLogGroups = None,
) -> None:
    """Recent executions, oldest first: start, request id, product, status, duration, error."""
    wanted = status.upper() if status else None
    if wanted is not None and wanted not in history.STATUSES:
        raise typer.BadParameter(
            f"{status!r} is not one of {', '.join(history.STATUSES)}", param_hint="--status"
        )
    events, lines = _read_logs(
        since=since,
        stack_name=stack_name,
        endpoint_url=endpoint_url,
        region=region,
        state_machine_log_group=state_machine_log_group,
        task_log_groups=task_log_group,
        history_pattern=logs.EXECUTION_BOUNDARY_PATTERN,
        task_pattern=logs.PRODUCT_PATTERN,
    )
    summaries = history.summarize(events, history.product_ids_from(lines))
    summaries = [
        s
        for s in summaries
        if (wanted is None or s.status == wanted) and (product is None or s.product_id == product)
    ]
    if as_json:
        _print_json({"executions": [history.summary_model(s) for s in summaries]})
    else:
        render.executions(_console(), summaries)


@app.command("orphans")
def orphans_command(
    delete: Annotated[
        bool,
        typer.Option(
            "--delete", help="Delete each orphan (by VersionId; a metadata write is undone)."
        ),
    ] = False,
    grace: Annotated[
        str | None,
        typer.Option(help="Only what is older than this: 90s, 10m. Default: the sweep's own."),
    ] = None,
    as_json: AsJson = False,
    stack_name: StackName = DEFAULT_STACK,
    endpoint_url: EndpointUrl = None,
    region: Region = None,
) -> None:
    """What no compensation accounted for: object versions (and metadata writes) of requests
    that did not end in 200, older than the grace period. Exit 1 when any remain."""
    given = parse_duration(grace, "--grace") if grace else None
    try:
        session = logs.aws_session(region, endpoint_url)
        target = orphans.discover(session, stack_name=stack_name, endpoint_url=endpoint_url)
    except logs.DiscoveryError as exc:
        _fail(str(exc))
    except BotoCoreError as exc:
        _fail(_configuration_problem(exc))
    period = timedelta(seconds=target.grace_seconds if given is None else given)
    try:
        result = orphans.find(
            session, target, endpoint_url=endpoint_url, grace=period, delete=delete
        )
    except (ClientError, BotoCoreError) as exc:
        _fail(f"reading the ledger or the bucket failed: {exc}")
    if as_json:
        _print_json(orphans.result_model(result, period))
    else:
        render.orphans(_console(), result, period)
    if any(not orphan.deleted for orphan in result.orphans):
        raise typer.Exit(1)


@app.command("smoke")
def smoke_command(
    stack_name: Annotated[
        str | None,
        typer.Option(
            "--stack-name",
            help=f"The stack whose outputs name the API, bucket, table (default {DEFAULT_STACK}).",
        ),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", help="Local mode: the URL of POST /upload (with --endpoint-url)."
        ),
    ] = None,
    endpoint_url: EndpointUrl = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            help="Send x-api-key (default: SigV4, or the stack's own key with auth=apiKey).",
        ),
    ] = None,
    region: Region = None,
    as_json: AsJson = False,
) -> None:
    """Upload a small file through the API, check the answer, the stored object version and
    the metadata item against the contract, and a refused request; then delete what the upload
    created, whatever failed. Exit 1 when a check fails, 2 when the stack, local mode or AWS
    credentials cannot be found."""
    if (api_url is None) != (endpoint_url is None) or (api_url and stack_name):
        _fail("give --api-url with --endpoint-url (local mode), or --stack-name (or neither)")
    try:
        session = logs.aws_session(region, endpoint_url)
        if api_url is not None and endpoint_url is not None:
            target = smoke.discover_local(session, api_url, endpoint_url)
        else:
            target = smoke.discover_stack(session, stack_name or DEFAULT_STACK)
        signer = smoke.signer_for(session, target, api_key)
        report = smoke.run(session, target, signer, endpoint_url=endpoint_url)
    except (logs.DiscoveryError, ConfigurationError) as exc:
        _fail(str(exc))
    except BotoCoreError as exc:
        _fail(_configuration_problem(exc))
    except ClientError as exc:
        _fail(f"the AWS configuration cannot be used: {exc}")
    if as_json:
        _print_json(smoke.report_model(report))
    else:
        smoke.render(_console(), report)
    if not report.passed:
        typer.echo(f"Error: {smoke.failure_line(report)}", err=True)
        raise typer.Exit(1)
