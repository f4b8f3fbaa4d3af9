"""Alarms, the optional alarm topic and the dashboard (infra/monitoring.py)."""

from __future__ import annotations

import json
import re

import pytest

from tasks.contract.errors import CLIENT_ERROR_NAMES
from tests.conftest import ALARM_EMAIL

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    logical_id_with_prefix,
    only,
    render,
    resources_of_type,
    state_machine_definition,
    state_machine_id,
)

# Every task function, the sessions' included, gets the same throttle alarm and error widget.
TASKS = ("Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session")
ALARMS = (
    "WorkflowFailures",
    "CompensationFailures",
    "OrphanVersions",
    "SweepErrors",
    "SessionFailures",
    "Api5xx",
    "ApiLatencyP99",
    *(f"{task}Throttles" for task in TASKS),
)
# The alarms on one metric (the others are metric math: WorkflowFailures, CompensationFailures).
SINGLE_METRIC_ALARMS = tuple(
    a for a in ALARMS if a not in ("WorkflowFailures", "CompensationFailures")
)


def alarm(template, name):
    logical_id = logical_id_with_prefix(template, "AWS::CloudWatch::Alarm", f"Monitoring{name}")
    return template["Resources"][logical_id]["Properties"]


def metric_stat(stat):
    """A ``MetricStat`` (or an alarm's own top-level metric fields) as one comparable dict."""
    metric = stat.get("Metric", stat)
    return {
        "namespace": metric["Namespace"],
        "metric": metric["MetricName"],
        "dimensions": {d["Name"]: render(d["Value"]) for d in metric.get("Dimensions", [])},
        "stat": stat.get("Stat", stat.get("Statistic")),
        "period": stat["Period"],
    }


def single_metric(properties):
    if "Metrics" not in properties:
        return metric_stat(properties)
    [returned] = [m for m in properties["Metrics"] if m.get("ReturnData", True)]
    return metric_stat(returned["MetricStat"])


def ids(template):
    return {
        # The workflow metrics are the upload workflow's (the sessions' failures reach Api5xx).
        "machine": "${" + state_machine_id(template) + "}",
        "stage": "${" + only(template, "AWS::ApiGateway::Stage")[0] + "}",
        "api_name": only(template, "AWS::ApiGateway::RestApi")[1]["Properties"]["Name"],
        **{
            task: "${"
            + logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{task}Func")
            + "}"
            for task in TASKS
        },
    }


def expected_single_metric_alarms(template):
    refs = ids(template)
    api = {"ApiName": refs["api_name"], "Stage": refs["stage"]}
    expected = {
        # Counted by the sweep every run while they remain.
        "OrphanVersions": (
            {
                "namespace": "UploadService",
                "metric": "OrphanVersions",
                "dimensions": {"service": "upload"},
                "stat": "Sum",
                "period": 300,
            },
            1,
        ),
        # Counted from the sessions workflow's log (test_failed_sessions_are_counted_...).
        "SessionFailures": (
            {
                "namespace": "UploadService",
                "metric": "SessionFailedExecutions",
                "dimensions": {},
                "stat": "Sum",
                "period": 300,
            },
            1,
        ),
        # A sweep that fails looks for no orphan.
        "SweepErrors": (
            {
                "namespace": "AWS/Lambda",
                "metric": "Errors",
                "dimensions": {"FunctionName": refs["Sweep"]},
                "stat": "Sum",
                "period": 300,
            },
            1,
        ),
        "Api5xx": (
            {
                "namespace": "AWS/ApiGateway",
                "metric": "5XXError",
                "dimensions": api,
                "stat": "Sum",
                "period": 300,
            },
            1,
        ),
        "ApiLatencyP99": (
            {
                "namespace": "AWS/ApiGateway",
                "metric": "Latency",
                "dimensions": api,
                "stat": "p99",
                "period": 300,
            },
            20000,
        ),
    }
    for task in TASKS:
        expected[f"{task}Throttles"] = (
            {
                "namespace": "AWS/Lambda",
                "metric": "Throttles",
                "dimensions": {"FunctionName": refs[task]},
                "stat": "Sum",
                "period": 300,
            },
            1,
        )
    return expected


def test_exactly_the_planned_alarms(default_stack):
    found = resources_of_type(default_stack.template_json, "AWS::CloudWatch::Alarm")
    assert len(found) == len(ALARMS)
    for name in ALARMS:
        alarm(default_stack.template_json, name)  # one each


@pytest.mark.parametrize("name", SINGLE_METRIC_ALARMS)
def test_single_metric_alarm(default_stack, name):
    template = default_stack.template_json
    properties = alarm(template, name)
    metric, threshold = expected_single_metric_alarms(template)[name]
    assert single_metric(properties) == metric
    assert properties["Threshold"] == threshold
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["EvaluationPeriods"] == 1
    assert properties.get("DatapointsToAlarm", 1) == 1
    assert properties["TreatMissingData"] == "notBreaching"
    assert "AlarmActions" not in properties
    assert "AlarmName" not in properties  # CloudFormation names it
    assert properties["AlarmDescription"]


def test_api_metrics_use_a_stack_specific_api_name(default_stack):
    # REST API metrics are keyed by name: "Api" (CDK's default) would mix in other stacks' APIs.
    assert ids(default_stack.template_json)["api_name"] == "UploadService-UploadApi"


def test_workflow_failures_alarm_subtracts_client_rejections(default_stack):
    template = default_stack.template_json
    properties = alarm(template, "WorkflowFailures")
    machine = ids(template)["machine"]
    metrics = {m["Id"]: m for m in properties["Metrics"]}
    [expression] = [m for m in properties["Metrics"] if "Expression" in m]
    assert expression.get("ReturnData", True) is True
    assert all(m.get("ReturnData") is False for m in metrics.values() if m is not expression)
    stats = {
        metric_id: metric_stat(m["MetricStat"])
        for metric_id, m in metrics.items()
        if "MetricStat" in m
    }
    assert stats["failed"] == {
        "namespace": "AWS/States",
        "metric": "ExecutionsFailed",
        "dimensions": {"StateMachineArn": machine},
        "stat": "Sum",
        "period": 300,
    }
    assert stats["timedOut"] == {**stats["failed"], "metric": "ExecutionsTimedOut"}
    rejected = {k: v for k, v in stats.items() if k.startswith("rejected")}
    # Every client error, the session ones too (validate and store raise SessionNotFound and
    # SessionNotOpen on a commit), and a content mismatch (compensated, then rejected); the
    # Session task counts none (it is not in this workflow).
    assert sorted(v["dimensions"]["reason"] for v in rejected.values()) == sorted(
        (*CLIENT_ERROR_NAMES, "ContentMismatch")
    )
    assert len(rejected) == 8
    for stat in rejected.values():
        assert stat == {
            "namespace": "UploadService",
            "metric": "Rejections",
            "dimensions": {"service": "upload", "reason": stat["dimensions"]["reason"]},
            "stat": "Sum",
            "period": 300,
        }
    assert set(stats) == {"failed", "timedOut", *rejected}
    # failed + timed out - every client rejection; a missing series counts as 0.
    text = re.sub(r"\s+", "", expression["Expression"])
    assert (
        text
        == "FILL(failed,0)+FILL(timedOut,0)-("
        + "+".join(f"FILL({k},0)" for k in sorted(rejected))
        + ")"
    )
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["EvaluationPeriods"] == 1
    assert properties["TreatMissingData"] == "notBreaching"
    assert "AlarmActions" not in properties


def test_compensation_failures_alarm_takes_the_larger_of_reports_and_failed_executions(
    default_stack,
):
    """A task that reports (compensate, report) counts CompensationFailures; an execution that
    ended in CompensationFailed is counted from the workflow's own log, even if no task could
    report. The alarm takes whichever saw more, a missing series counting as 0."""
    properties = alarm(default_stack.template_json, "CompensationFailures")
    metrics = {m["Id"]: m for m in properties["Metrics"]}
    [expression] = [m for m in properties["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True
    assert re.sub(r"\s+", "", expression["Expression"]) == (
        "MAX([FILL(reported,0),FILL(executions,0)])"
    )
    assert {
        metric_id: metric_stat(m["MetricStat"])
        for metric_id, m in metrics.items()
        if "MetricStat" in m
    } == {
        "reported": {
            "namespace": "UploadService",
            "metric": "CompensationFailures",
            "dimensions": {"service": "upload"},
            "stat": "Sum",
            "period": 300,
        },
        # What the metric filter below publishes: no dimension.
        "executions": {
            "namespace": "UploadService",
            "metric": "CompensationFailedExecutions",
            "dimensions": {},
            "stat": "Sum",
            "period": 300,
        },
    }
    assert len(metrics) == 3
    assert all(m["ReturnData"] is False for m in metrics.values() if m is not expression)
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["EvaluationPeriods"] == 1
    assert properties["TreatMissingData"] == "notBreaching"
    assert "AlarmActions" not in properties


def test_failed_compensations_are_counted_from_the_workflow_log(default_stack):
    template = default_stack.template_json
    filters = resources_of_type(template, "AWS::Logs::MetricFilter")
    assert len(filters) == 2  # this one and the sessions workflow's
    filter_id = logical_id_with_prefix(
        template, "AWS::Logs::MetricFilter", "MonitoringCompensationFailedExecutions"
    )
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", "WorkflowLogGroup")
    assert filters[filter_id]["Properties"] == {
        "LogGroupName": {"Ref": group},
        # The workflow's ExecutionFailed event whose error is the CompensationFailed Fail state's.
        "FilterPattern": (
            '{ ($.type = "ExecutionFailed") && ($.details.error = "CompensationFailed") }'
        ),
        "MetricTransformations": [
            {
                "MetricName": "CompensationFailedExecutions",
                "MetricNamespace": "UploadService",
                "MetricValue": "1",
            }
        ],
    }
    states = state_machine_definition(template)["States"]
    assert states["CompensationFailed"]["Error"] == "CompensationFailed"


def test_failed_sessions_are_counted_from_the_sessions_log_without_rejections(default_stack):
    template = default_stack.template_json
    filter_id = logical_id_with_prefix(
        template, "AWS::Logs::MetricFilter", "MonitoringSessionFailedExecutions"
    )
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", "SessionsLogGroup")
    # Failed, with any error but a client's (the Rejected state's), or timed out.
    not_rejected = "".join(f' && ($.details.error != "{name}")' for name in CLIENT_ERROR_NAMES)
    pattern = (
        f'{{ (($.type = "ExecutionFailed"){not_rejected}) || ($.type = "ExecutionTimedOut") }}'
    )
    assert resources_of_type(template, "AWS::Logs::MetricFilter")[filter_id]["Properties"] == {
        "LogGroupName": {"Ref": group},
        "FilterPattern": pattern,
        "MetricTransformations": [
            {
                "MetricName": "SessionFailedExecutions",
                "MetricNamespace": "UploadService",
                "MetricValue": "1",
            }
        ],
    }
    states = state_machine_definition(template, SESSIONS_WORKFLOW)["States"]
    assert states["SessionFailed"]["Error"] not in CLIENT_ERROR_NAMES
    assert set(states["Session"]["Catch"][0]["ErrorEquals"]) == set(CLIENT_ERROR_NAMES)


def test_no_alarm_topic_without_alarm_email(default_stack):
    template = default_stack.template_json
    for resource_type in ("AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::KMS::Key"):
        assert not any(
            logical_id.startswith("Monitoring")
            for logical_id in resources_of_type(template, resource_type)
        ), resource_type
    assert "AlarmTopicArn" not in template["Outputs"]


def test_alarm_email_adds_an_encrypted_topic_for_every_alarm(alarm_email_stack):
    template = alarm_email_stack.template_json
    topic_id, topic = only(template, "AWS::SNS::Topic")
    assert topic_id.startswith("MonitoringAlarmTopic")
    assert "TopicName" not in topic["Properties"]
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "MonitoringAlarmTopicKey")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = template["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    # CloudWatch must be able to use the key, or alarm notifications are silently dropped.
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch) == 1
    assert sorted(cloudwatch[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert cloudwatch[0]["Effect"] == "Allow"

    _, subscription = only(template, "AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Endpoint": ALARM_EMAIL,
        "Protocol": "email",
        "TopicArn": {"Ref": topic_id},
    }
    for name in ALARMS:
        assert alarm(template, name)["AlarmActions"] == [{"Ref": topic_id}], name
    assert render(template["Outputs"]["AlarmTopicArn"]["Value"]) == "${" + topic_id + "}"


def test_alarm_topic_policy_denies_plain_http_and_lets_this_accounts_alarms_publish(
    alarm_email_stack,
):
    """The TLS-only deny gives the topic a policy of its own, which replaces SNS's default one:
    without the allow, CloudWatch may not publish and every alarm action fails."""
    template = alarm_email_stack.template_json
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, policy = only(template, "AWS::SNS::TopicPolicy")
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    assert policy["Properties"]["PolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowPublishThroughSSLOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": {"Ref": topic_id},
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "AllowThisAccountsAlarmsToPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": {"Ref": topic_id},
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                    "ArnLike": {
                        "aws:SourceArn": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":cloudwatch:",
                                    {"Ref": "AWS::Region"},
                                    ":",
                                    {"Ref": "AWS::AccountId"},
                                    ":alarm:*",
                                ],
                            ]
                        }
                    },
                },
            },
        ],
    }


def test_alarm_email_changes_nothing_else_about_the_alarms(default_stack, alarm_email_stack):
    for name in ALARMS:
        with_topic = dict(alarm(alarm_email_stack.template_json, name))
        del with_topic["AlarmActions"]
        assert with_topic == alarm(default_stack.template_json, name), name


# --- dashboard -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(default_stack):
    template = default_stack.template_json
    dashboard_id, resource = only(template, "AWS::CloudWatch::Dashboard")
    assert "DashboardName" not in resource["Properties"]  # CloudFormation names it
    assert render(template["Outputs"]["DashboardName"]["Value"]) == "${" + dashboard_id + "}"
    body = json.loads(render(resource["Properties"]["DashboardBody"]))
    return {w["properties"]["title"]: w for w in body["widgets"]}


def graph_metrics(widget):
    """Each metric line as (namespace, name, dimensions, stat), or ("expression", text)."""
    lines: list[tuple[object, ...]] = []
    for line in widget["properties"]["metrics"]:
        *fields, options = line if isinstance(line[-1], dict) else (*line, {})
        if "expression" in options:
            lines.append(("expression", options["expression"]))
            continue
        namespace, name, *pairs = fields
        dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
        lines.append((namespace, name, dimensions, options.get("stat", "Average")))
    return lines


def test_dashboard_task_metrics(dashboard):
    service = {"service": "upload"}
    assert graph_metrics(dashboard["Uploads stored"]) == [
        ("UploadService", "UploadsStored", service, "Sum")
    ]
    assert graph_metrics(dashboard["Bytes stored"]) == [
        ("UploadService", "BytesStored", service, "Sum")
    ]
    compensations = dashboard["Compensations and orphans"]
    assert graph_metrics(compensations) == [
        ("UploadService", "Compensations", service, "Sum"),
        ("expression", "MAX([FILL(reported, 0), FILL(executions, 0)])"),
        # The expression's inputs, hidden.
        ("UploadService", "CompensationFailures", service, "Sum"),
        ("UploadService", "CompensationFailedExecutions", {}, "Sum"),
        # The sweep's counts, on the right axis.
        ("UploadService", "OrphanVersions", service, "Sum"),
        ("UploadService", "OrphansDeleted", service, "Sum"),
    ]
    options = [line[-1] for line in compensations["properties"]["metrics"]]
    assert [o.get("visible", True) for o in options] == [True, True, False, False, True, True]
    assert [o.get("yAxis", "left") for o in options] == ["left"] * 4 + ["right"] * 2
    assert graph_metrics(dashboard["Rejections by reason"]) == [
        (
            "expression",
            'SEARCH(\'{UploadService,reason,service} MetricName="Rejections" '
            "service=\"upload\"', 'Sum', 300)",
        )
    ]


def test_dashboard_api_and_workflow_metrics(default_stack, dashboard):
    refs = ids(default_stack.template_json)
    api = {"ApiName": refs["api_name"], "Stage": refs["stage"]}
    assert graph_metrics(dashboard["API requests"]) == [
        ("AWS/ApiGateway", "Count", api, "Sum"),
        ("AWS/ApiGateway", "4XXError", api, "Sum"),
        ("AWS/ApiGateway", "5XXError", api, "Sum"),
    ]
    latency = dashboard["API latency (ms)"]
    assert graph_metrics(latency) == [
        ("AWS/ApiGateway", "Latency", api, "p50"),
        ("AWS/ApiGateway", "Latency", api, "p99"),
    ]
    budget = {a["value"] for a in latency["properties"]["annotations"]["horizontal"]}
    assert budget == {29000, 20000}
    machine = {"StateMachineArn": refs["machine"]}
    assert graph_metrics(dashboard["Executions"]) == [
        ("AWS/States", "ExecutionsSucceeded", machine, "Sum"),
        ("AWS/States", "ExecutionsFailed", machine, "Sum"),
        ("AWS/States", "ExecutionsTimedOut", machine, "Sum"),
    ]
    functions = graph_metrics(dashboard["Task errors and throttles"])
    assert functions == [
        ("AWS/Lambda", "Errors", {"FunctionName": refs[task]}, "Sum") for task in TASKS
    ] + [("AWS/Lambda", "Throttles", {"FunctionName": refs[task]}, "Sum") for task in TASKS]


def test_dashboard_shows_every_alarm(default_stack, dashboard):
    template = default_stack.template_json
    alarms = dashboard["Alarms"]["properties"]["alarms"]
    expected = {
        "${"
        + logical_id_with_prefix(template, "AWS::CloudWatch::Alarm", f"Monitoring{n}")
        + ".Arn}"
        for n in ALARMS
    }
    assert set(alarms) == expected
