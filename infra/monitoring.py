"""Alarms and a dashboard for operators; an SNS topic for the alarms when ``alarmEmail`` is set.

Alarms (each: 5-minute period, one evaluation period, missing data = not breaching; a quiet
service is a healthy one):

- ``WorkflowFailures``: executions that failed or timed out *for a reason other than the client*.
  A rejected request (400/409/413) ends in the ``Rejected`` Fail state, so Step Functions'
  ``ExecutionsFailed`` counts it too; the alarm subtracts the validate task's ``Rejections``.
  Express workflows publish the same execution metrics as Standard ones (``AWS/States``, dimension
  ``StateMachineArn``) but have no execution history API: the history is in the state machine's
  log group (``StateMachineLogGroupName``).
- ``CompensationFailures``: an orphaned S3 version (CONTRACT.md "Guarantees").
- ``Api5xx`` and ``ApiLatencyP99`` on the ``prod`` stage.
- ``<Task>Throttles``: the functions have no reserved concurrency, so the account's pool can
  run dry. (No per-function ``Errors`` alarm: validate raises on every rejected request and store
  retries transient errors, so Lambda ``Errors`` is not a failure signal here; it is on the
  dashboard, and real failures reach ``WorkflowFailures`` and ``Api5xx``.)
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compliance import acknowledge
from infra.functions import TaskFunctions
from infra.settings import Settings
from tasks.contract.errors import CLIENT_ERROR_NAMES
from tasks.contract.names import (
    BYTES_STORED,
    COMPENSATION_FAILURES,
    COMPENSATIONS,
    NAMESPACE,
    REASON_DIMENSION,
    REJECTIONS,
    SERVICE,
    SERVICE_DIMENSION,
    UPLOADS_STORED,
)

PERIOD = Duration.minutes(5)
API_TIMEOUT_MS = 29_000  # API Gateway's integration timeout: the whole request's budget
LATENCY_P99_THRESHOLD_MS = 20_000  # alarm well before clients start getting 504s


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        stage: apigw.Stage,
        functions: TaskFunctions,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.topic: sns.Topic | None = None

        # --- metrics -----------------------------------------------------------------------
        uploads = self._task_metric(UPLOADS_STORED, "Uploads stored")
        bytes_stored = self._task_metric(BYTES_STORED, "Bytes stored")
        compensations = self._task_metric(COMPENSATIONS, "Compensations")
        compensation_failures = self._task_metric(COMPENSATION_FAILURES, "Compensation failures")
        rejections_by_reason = cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{NAMESPACE},{REASON_DIMENSION},{SERVICE_DIMENSION}}} "
                f'MetricName="{REJECTIONS}" {SERVICE_DIMENSION}="{SERVICE}"\', '
                f"'Sum', {PERIOD.to_seconds()})"
            ),
            using_metrics={},
            label="",  # each series is labelled by its reason
            period=PERIOD,
        )
        executions_failed = state_machine.metric_failed(
            period=PERIOD, statistic="Sum", label="Failed"
        )
        executions_timed_out = state_machine.metric_timed_out(
            period=PERIOD, statistic="Sum", label="Timed out"
        )
        executions_succeeded = state_machine.metric_succeeded(
            period=PERIOD, statistic="Sum", label="Succeeded"
        )
        # A search expression cannot drive an alarm: the client reasons are named one by one.
        client_rejections = {
            f"rejected{index}": self._task_metric(
                REJECTIONS, reason, dimensions={REASON_DIMENSION: reason}
            )
            for index, reason in enumerate(CLIENT_ERROR_NAMES)
        }
        workflow_failures = cloudwatch.MathExpression(
            expression="FILL(failed, 0) + FILL(timedOut, 0) - ("
            + " + ".join(f"FILL({name}, 0)" for name in client_rejections)
            + ")",
            using_metrics={
                "failed": executions_failed,
                "timedOut": executions_timed_out,
                **client_rejections,
            },
            label="Failed or timed out, not rejected",
            period=PERIOD,
        )
        api_count = stage.metric_count(period=PERIOD, statistic="Sum", label="Requests")
        api_4xx = stage.metric_client_error(period=PERIOD, statistic="Sum", label="4xx")
        api_5xx = stage.metric_server_error(period=PERIOD, statistic="Sum", label="5xx")
        latency_p50 = stage.metric_latency(period=PERIOD, statistic="p50", label="p50")
        latency_p99 = stage.metric_latency(period=PERIOD, statistic="p99", label="p99")

        # --- alarms ------------------------------------------------------------------------
        self._alarm(
            "WorkflowFailures",
            workflow_failures,
            "Upload executions failed or timed out for a reason other than the request "
            "(client rejections are subtracted). Find them in the state machine log group "
            "(output StateMachineLogGroupName): type ExecutionFailed / ExecutionTimedOut.",
        )
        self._alarm(
            "CompensationFailures",
            compensation_failures,
            "A compensation failed: an uploaded S3 object version was left behind without "
            "metadata. The compensate task's log (CompensateLogGroupName) names the key and "
            "version to delete.",
        )
        # Sum >= 1, not a rate: every 5xx is an upload that failed with nothing stored (or an
        # orphan reported), and at this service's volume a rate would hide isolated failures
        # yet swing to 50% on one error out of two requests. Client errors are 4xx, not here.
        self._alarm(
            "Api5xx",
            api_5xx,
            "The upload API answered 5xx (500 InternalError, 503 ServiceUnavailable, "
            "504 Timeout). The response's requestId is the execution name.",
        )
        self._alarm(
            "ApiLatencyP99",
            latency_p99,
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

        if settings.alarm_email is not None:
            removal = RemovalPolicy.DESTROY if settings.destroy_on_delete else RemovalPolicy.RETAIN
            self.topic = self._alarm_topic(settings.alarm_email, removal)
            action = cw_actions.SnsAction(self.topic)
            for alarm in self.alarms.values():
                alarm.add_alarm_action(action)

        # --- dashboard ---------------------------------------------------------------------
        budget = [
            cloudwatch.HorizontalAnnotation(value=API_TIMEOUT_MS, label="29 s API budget"),
            cloudwatch.HorizontalAnnotation(
                value=LATENCY_P99_THRESHOLD_MS, label="p99 alarm", color="#ff7f0e"
            ),
        ]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Uploads stored", left=[uploads], width=6),
            cloudwatch.GraphWidget(title="Bytes stored", left=[bytes_stored], width=6),
            cloudwatch.GraphWidget(
                title="Rejections by reason", left=[rejections_by_reason], width=6
            ),
            cloudwatch.GraphWidget(
                title="Compensations", left=[compensations, compensation_failures], width=6
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests", left=[api_count], right=[api_4xx, api_5xx], width=8
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[latency_p50, latency_p99],
                left_annotations=budget,
                left_y_axis=cloudwatch.YAxisProps(min=0, max=API_TIMEOUT_MS + 1_000),
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Executions",
                left=[executions_succeeded, executions_failed, executions_timed_out],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
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
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=12
            ),
        )

    @staticmethod
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

    def _alarm_topic(self, email: str, removal_policy: RemovalPolicy) -> sns.Topic:
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
        subscription = topic.add_subscription(subscriptions.EmailSubscription(email))
        acknowledge(
            subscription,
            "Serverless-SNSRedrivePolicy",
            "an email notification of an alarm; an undelivered email loses nothing, since the "
            "alarm's state and history stay in CloudWatch (dashboard alarm widget), and a "
            "dead-letter queue of alarm emails would need an alarm of its own.",
        )
        return topic
