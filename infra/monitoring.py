"""Alarms and a dashboard for operators; an SNS topic for the alarms when ``alarmEmail`` is set.

Alarms (each: 5-minute period, one evaluation period, missing data = not breaching; a quiet
service is a healthy one):

- ``WorkflowFailures``: executions that failed or timed out *for a reason other than the client*.
  A rejected request (400/409/413) ends in the ``Rejected`` Fail state, so Step Functions'
  ``ExecutionsFailed`` counts it too; the alarm subtracts the validate task's ``Rejections``.
  Express workflows publish the same execution metrics as Standard ones (``AWS/States``, dimension
  ``StateMachineArn``) but have no execution history API: the history is in the state machine's
  log group (``StateMachineLogGroupName``).
- ``CompensationFailures``: a compensation that could not undo everything: the larger of the
  metric the compensate and report tasks emit with their ORPHAN line, and a metric filter on the
  workflow's log counting executions that ended in ``CompensationFailed`` (it fires even if no
  task managed to report).
- ``OrphanVersions``: the sweep found uncommitted versions or metadata writes older than the
  grace period; it stays on, run after run, until they are dealt with (``upload-ops orphans``).
- ``SweepErrors``: the sweep function failed, so orphans are not being looked for.
- ``SessionFailures``: upload-session requests (``/uploads`` routes) whose execution failed or
  timed out for a reason other than the request, counted by a metric filter on the sessions
  workflow's log (its executions publish the same ``AWS/States`` metrics, but a rejected request
  fails an execution too, and the session task emits no rejection metric to subtract).
- ``Api5xx`` and ``ApiLatencyP99`` on the ``prod`` stage.
- ``<Task>Throttles``: the functions have no reserved concurrency, so the account's pool can
  run dry. (No per-function ``Errors`` alarm: validate raises on every rejected request and store
  retries transient errors, so Lambda ``Errors`` is not a failure signal here; it is on the
  dashboard, and real failures reach ``WorkflowFailures`` and ``Api5xx``.)
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compliance import acknowledge
from infra.functions import TaskFunctions
from infra.settings import Settings
from tasks.contract.errors import CLIENT_ERROR_NAMES, REJECTED_ERROR_NAMES, CompensationFailed
from tasks.contract.names import (
    BYTES_STORED,
    COMPENSATION_FAILED_EXECUTIONS,
    COMPENSATION_FAILURES,
    COMPENSATIONS,
    NAMESPACE,
    ORPHAN_VERSIONS,
    ORPHANS_DELETED,
    REASON_DIMENSION,
    REJECTIONS,
    SERVICE,
    SERVICE_DIMENSION,
    SESSION_FAILED_EXECUTIONS,
    UPLOADS_STORED,
)

PERIOD = Duration.minutes(5)
API_TIMEOUT_MS = 29_000  # API Gateway's integration timeout: the whole request's budget
LATENCY_P99_THRESHOLD_MS = 20_000  # alarm well before clients start getting 504s


@dataclass(frozen=True, kw_only=True)
class _Metrics:
    """Every metric the alarms and the dashboard show, each defined once."""

    # What the tasks emit (EMF).
    uploads: cloudwatch.Metric
    bytes_stored: cloudwatch.Metric
    rejections_by_reason: cloudwatch.MathExpression
    compensations: cloudwatch.Metric
    compensation_failures: cloudwatch.MathExpression
    orphan_versions: cloudwatch.Metric
    orphans_deleted: cloudwatch.Metric
    # The workflow's executions.
    executions_succeeded: cloudwatch.Metric
    executions_failed: cloudwatch.Metric
    executions_timed_out: cloudwatch.Metric
    workflow_failures: cloudwatch.MathExpression
    # The API stage.
    api_count: cloudwatch.Metric
    api_4xx: cloudwatch.Metric
    api_5xx: cloudwatch.Metric
    latency_p50: cloudwatch.Metric
    latency_p99: cloudwatch.Metric


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        stage: apigw.Stage,
        functions: TaskFunctions,
        workflow_log_group: logs.ILogGroup,
        sessions_log_group: logs.ILogGroup,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        failed_executions = self._build_compensation_failed_filter(workflow_log_group)
        metrics = _build_metrics(state_machine, stage, failed_executions)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        # Alarms first: the notifications and the dashboard's alarm widget cover every one.
        self._add_alarms(metrics, functions)
        self._alarm(
            "SessionFailures",
            self._build_session_failed_filter(sessions_log_group),
            "Upload-session requests (the /uploads routes) failed or timed out for a reason "
            "other than the request: in the sessions workflow's log group (output "
            "SessionsLogGroupName), type ExecutionFailed / ExecutionTimedOut; the session task's "
            "log (SessionLogGroupName) has the same requestId.",
        )
        self.topic = self._add_alarm_notifications(settings)
        self.dashboard = self._build_dashboard(metrics, functions)

    def _add_alarms(self, metrics: _Metrics, functions: TaskFunctions) -> None:
        self._alarm(
            "WorkflowFailures",
            metrics.workflow_failures,
            "Upload executions failed or timed out for a reason other than the request "
            "(client rejections are subtracted). Find them in the state machine log group "
            "(output StateMachineLogGroupName): type ExecutionFailed / ExecutionTimedOut.",
        )
        self._alarm(
            "CompensationFailures",
            metrics.compensation_failures,
            "A compensation failed: what an upload stored may remain. An ORPHAN line in the "
            "compensate or report task's log (CompensateLogGroupName, ReportLogGroupName) names "
            "the key, the request and the versions; `upload-ops orphans` lists what remains once "
            "the grace period has passed, `upload-ops orphans --delete` removes it.",
        )
        self._alarm(
            "OrphanVersions",
            metrics.orphan_versions,
            "The sweep found object versions or metadata writes that no upload committed (ORPHAN "
            "lines in SweepLogGroupName). `upload-ops orphans` lists them, `upload-ops orphans "
            "--delete` removes them; the alarm stays on while they remain.",
        )
        self._alarm(
            "SweepErrors",
            functions.sweep.function.metric_errors(period=PERIOD, statistic="Sum"),
            "The orphan sweep failed (SweepLogGroupName): orphans are not being looked for.",
        )
        # Sum >= 1, not a rate: every 5xx is an upload that failed with nothing stored (or an
        # orphan reported), and at this service's volume a rate would hide isolated failures
        # yet swing to 50% on one error out of two requests. Client errors are 4xx, not here.
        self._alarm(
            "Api5xx",
            metrics.api_5xx,
            "The upload API answered 5xx (500 InternalError, 503 ServiceUnavailable, "
            "504 Timeout). The response's requestId is the execution name.",
        )
        self._alarm(
            "ApiLatencyP99",
            metrics.latency_p99,
            f"Upload API p99 latency is at least {LATENCY_P99_THRESHOLD_MS} ms, approaching "
            f"API Gateway's {API_TIMEOUT_MS} ms limit (504 Timeout beyond it).",
            threshold=LATENCY_P99_THRESHOLD_MS,
        )
        for task in functions.all:
            self._alarm(
                f"{task.spec.title}Throttles",
                task.function.metric_throttles(period=PERIOD, statistic="Sum"),
                f"The {task.spec.name} task function was throttled (account concurrency "
                "exhausted?); Step Functions retries once, then the upload fails.",
            )

    def _build_compensation_failed_filter(self, log_group: logs.ILogGroup) -> cloudwatch.Metric:
        """Executions that ended in CompensationFailed, counted from the workflow's own log by
        CloudWatch: the alarm fires even if no task managed to report."""
        return self._count_log_events(
            "CompensationFailedExecutions",
            log_group,
            COMPENSATION_FAILED_EXECUTIONS,
            logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.type", "=", "ExecutionFailed"),
                logs.FilterPattern.string_value(
                    "$.details.error", "=", CompensationFailed.__name__
                ),
            ),
        )

    def _build_session_failed_filter(self, log_group: logs.ILogGroup) -> cloudwatch.Metric:
        """Sessions executions that timed out, or failed with an error that is not a client's
        (the Rejected state's errors): the service's failures, not the requests'."""
        not_rejected = [
            logs.FilterPattern.string_value("$.details.error", "!=", name)
            for name in CLIENT_ERROR_NAMES
        ]
        return self._count_log_events(
            "SessionFailedExecutions",
            log_group,
            SESSION_FAILED_EXECUTIONS,
            logs.FilterPattern.any(
                logs.FilterPattern.all(
                    logs.FilterPattern.string_value("$.type", "=", "ExecutionFailed"),
                    *not_rejected,
                ),
                logs.FilterPattern.string_value("$.type", "=", "ExecutionTimedOut"),
            ),
        )

    def _count_log_events(
        self,
        construct_id: str,
        log_group: logs.ILogGroup,
        metric_name: str,
        pattern: logs.IFilterPattern,
    ) -> cloudwatch.Metric:
        """A metric filter counting ``pattern``'s events of ``log_group``, summed per period."""
        metric_filter = logs.MetricFilter(
            self,
            construct_id,
            log_group=log_group,
            metric_namespace=NAMESPACE,
            metric_name=metric_name,
            filter_pattern=pattern,
            metric_value="1",
        )
        return metric_filter.metric(period=PERIOD, statistic="Sum", label="Failed executions")

    def _alarm(
        self, name: str, metric: cloudwatch.IMetric, description: str, *, threshold: float = 1
    ) -> None:
        self.alarms[name] = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )

    def _add_alarm_notifications(self, settings: Settings) -> sns.Topic | None:
        """Without alarmEmail the alarms have no action; with it each notifies one SNS topic."""
        if settings.alarm_email is None:
            return None
        topic = self._build_alarm_topic(settings.alarm_email, settings.removal_policy)
        action = cw_actions.SnsAction(topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
        return topic

    def _build_alarm_topic(self, email: str, removal_policy: RemovalPolicy) -> sns.Topic:
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key: its own key, whose
        # policy lets CloudWatch (alarm actions) use it.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Upload service: encrypts the alarm notification topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Upload service alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # enforce_ssl gives the topic a policy of its own (the TLS-only deny), which replaces
        # SNS's default policy: without this statement nothing lets CloudWatch publish, and every
        # alarm action fails (not authorized to perform SNS:Publish). This account's alarms only.
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        subscription = topic.add_subscription(subscriptions.EmailSubscription(email))
        acknowledge(
            subscription,
            "Serverless-SNSRedrivePolicy",
            "an email notification of an alarm; an undelivered email loses nothing, since the "
            "alarm's state and history stay in CloudWatch (dashboard alarm widget), and a "
            "dead-letter queue of alarm emails would need an alarm of its own.",
        )
        return topic

    def _build_dashboard(self, metrics: _Metrics, functions: TaskFunctions) -> cloudwatch.Dashboard:
        """Three rows: what the service did, how the API and the workflow fared, the tasks."""
        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(*_service_row(metrics))
        dashboard.add_widgets(*_api_and_execution_row(metrics))
        dashboard.add_widgets(*_task_and_alarm_row(functions, list(self.alarms.values())))
        return dashboard


def _build_metrics(
    state_machine: sfn.IStateMachine,
    stage: apigw.Stage,
    compensation_failed_executions: cloudwatch.Metric,
) -> _Metrics:
    executions_failed = state_machine.metric_failed(period=PERIOD, statistic="Sum", label="Failed")
    executions_timed_out = state_machine.metric_timed_out(
        period=PERIOD, statistic="Sum", label="Timed out"
    )
    return _Metrics(
        uploads=_task_metric(UPLOADS_STORED, "Uploads stored"),
        bytes_stored=_task_metric(BYTES_STORED, "Bytes stored"),
        rejections_by_reason=_rejections_by_reason(),
        compensations=_task_metric(COMPENSATIONS, "Compensations"),
        compensation_failures=cloudwatch.MathExpression(
            # The tasks' reports, or the executions that ended so, whichever saw more.
            expression="MAX([FILL(reported, 0), FILL(executions, 0)])",
            using_metrics={
                "reported": _task_metric(COMPENSATION_FAILURES, "Reported"),
                "executions": compensation_failed_executions,
            },
            label="Compensation failures",
            period=PERIOD,
        ),
        orphan_versions=_task_metric(ORPHAN_VERSIONS, "Orphans found by the sweep"),
        orphans_deleted=_task_metric(ORPHANS_DELETED, "Orphans deleted by the sweep"),
        executions_succeeded=state_machine.metric_succeeded(
            period=PERIOD, statistic="Sum", label="Succeeded"
        ),
        executions_failed=executions_failed,
        executions_timed_out=executions_timed_out,
        workflow_failures=_workflow_failures(executions_failed, executions_timed_out),
        api_count=stage.metric_count(period=PERIOD, statistic="Sum", label="Requests"),
        api_4xx=stage.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
        api_5xx=stage.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
        latency_p50=stage.metric_latency(period=PERIOD, statistic="p50", label="p50"),
        latency_p99=stage.metric_latency(period=PERIOD, statistic="p99", label="p99"),
    )


def _task_metric(
    name: str, label: str, *, dimensions: dict[str, str] | None = None
) -> cloudwatch.Metric:
    """A metric the tasks emit (EMF, tasks/core/observability.py), summed per period."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={SERVICE_DIMENSION: SERVICE, **(dimensions or {})},
        statistic="Sum",
        period=PERIOD,
        label=label,
    )


def _rejections_by_reason() -> cloudwatch.MathExpression:
    """One series per rejection reason, whatever reasons the tasks report."""
    return cloudwatch.MathExpression(
        expression=(
            f"SEARCH('{{{NAMESPACE},{REASON_DIMENSION},{SERVICE_DIMENSION}}} "
            f'MetricName="{REJECTIONS}" {SERVICE_DIMENSION}="{SERVICE}"\', '
            f"'Sum', {PERIOD.to_seconds()})"
        ),
        using_metrics={},
        label="",  # each series is labelled by its reason
        period=PERIOD,
    )


def _workflow_failures(
    failed: cloudwatch.Metric, timed_out: cloudwatch.Metric
) -> cloudwatch.MathExpression:
    """Failed or timed-out executions minus the client rejections, which end in a Fail state
    too (Rejected) but are the request's fault, not the service's."""
    # A search expression cannot drive an alarm: the client reasons are named one by one.
    client_rejections = {
        f"rejected{index}": _task_metric(REJECTIONS, reason, dimensions={REASON_DIMENSION: reason})
        for index, reason in enumerate(REJECTED_ERROR_NAMES)
    }
    return cloudwatch.MathExpression(
        expression="FILL(failed, 0) + FILL(timedOut, 0) - ("
        + " + ".join(f"FILL({name}, 0)" for name in client_rejections)
        + ")",
        using_metrics={"failed": failed, "timedOut": timed_out, **client_rejections},
        label="Failed or timed out, not rejected",
        period=PERIOD,
    )


def _service_row(metrics: _Metrics) -> list[cloudwatch.IWidget]:
    return [
        cloudwatch.GraphWidget(title="Uploads stored", left=[metrics.uploads], width=6),
        cloudwatch.GraphWidget(title="Bytes stored", left=[metrics.bytes_stored], width=6),
        cloudwatch.GraphWidget(
            title="Rejections by reason", left=[metrics.rejections_by_reason], width=6
        ),
        cloudwatch.GraphWidget(
            title="Compensations and orphans",
            left=[metrics.compensations, metrics.compensation_failures],
            right=[metrics.orphan_versions, metrics.orphans_deleted],
            width=6,
        ),
    ]


def _api_and_execution_row(metrics: _Metrics) -> list[cloudwatch.IWidget]:
    budget = [
        cloudwatch.HorizontalAnnotation(value=API_TIMEOUT_MS, label="29 s API budget"),
        cloudwatch.HorizontalAnnotation(
            value=LATENCY_P99_THRESHOLD_MS, label="p99 alarm", color="#ff7f0e"
        ),
    ]
    return [
        cloudwatch.GraphWidget(
            title="API requests",
            left=[metrics.api_count],
            right=[metrics.api_4xx, metrics.api_5xx],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="API latency (ms)",
            left=[metrics.latency_p50, metrics.latency_p99],
            left_annotations=budget,
            left_y_axis=cloudwatch.YAxisProps(min=0, max=API_TIMEOUT_MS + 1_000),
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="Executions",
            left=[
                metrics.executions_succeeded,
                metrics.executions_failed,
                metrics.executions_timed_out,
            ],
            width=8,
        ),
    ]


def _task_and_alarm_row(
    functions: TaskFunctions, alarms: list[cloudwatch.Alarm]
) -> list[cloudwatch.IWidget]:
    # Lambda Errors gets no alarm (see the module docstring) but is worth seeing.
    return [
        cloudwatch.GraphWidget(
            title="Task errors and throttles",
            left=[
                task.function.metric_errors(
                    period=PERIOD, statistic="Sum", label=f"{task.spec.title} errors"
                )
                for task in functions.all
            ],
            right=[
                task.function.metric_throttles(
                    period=PERIOD, statistic="Sum", label=f"{task.spec.title} throttles"
                )
                for task in functions.all
            ],
            width=12,
        ),
        cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=12),
    ]
