"""The orphan sweep's schedule (infra/sweep.py): EventBridge Scheduler invokes the sweep function
every few minutes with a role of its own that may invoke that function only."""

from __future__ import annotations

import json

import msgspec

from tasks.contract.ledger import SWEEP_INTERVAL_MINUTES
from tasks.core.models import SweepEvent

from .infra_helpers import logical_id_with_prefix, only, permissions, render, role_statements


def ids(template):
    return {
        "schedule": only(template, "AWS::Scheduler::Schedule")[0],
        "role": logical_id_with_prefix(template, "AWS::IAM::Role", "SweepRole"),
        "sweep": logical_id_with_prefix(template, "AWS::Lambda::Function", "TasksSweepFunc"),
    }


def test_the_schedule_runs_the_sweep_every_five_minutes_without_retry(default_stack):
    template = default_stack.template_json
    found = ids(template)
    # Copies: the template is shared by the whole session.
    schedule = dict(template["Resources"][found["schedule"]]["Properties"])
    target = dict(schedule.pop("Target"))
    assert schedule == {
        "ScheduleExpression": "rate(5 minutes)",
        "ScheduleExpressionTimezone": "Etc/UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Description": "Upload service: find what no compensation accounted for",
    }
    assert SWEEP_INTERVAL_MINUTES == 5
    # CloudFormation names it, in the default group.
    assert "Name" not in schedule
    assert "GroupName" not in schedule
    input_text = target.pop("Input")
    assert target == {
        "Arn": {"Fn::GetAtt": [found["sweep"], "Arn"]},
        "RoleArn": {"Fn::GetAtt": [found["role"], "Arn"]},
        # A failed run is not repeated: the next one does the same work.
        "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 0},
    }
    # The schedule's execution id names the run in the sweep's logs.
    assert json.loads(input_text) == {"requestId": "<aws.scheduler.execution-id>"}


def test_the_schedules_input_is_the_sweep_tasks_event(default_stack):
    [schedule] = [
        r
        for r in default_stack.template_json["Resources"].values()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    event = json.loads(schedule["Properties"]["Target"]["Input"])
    fields = {field.encode_name for field in msgspec.structs.fields(SweepEvent)}
    assert set(event) == fields
    assert msgspec.convert(event, SweepEvent).requestId == "<aws.scheduler.execution-id>"


def test_the_schedulers_role_is_assumed_by_this_accounts_scheduler_only(default_stack):
    template = default_stack.template_json
    role = template["Resources"][ids(template)["role"]]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            # No other account's schedule can act through it (confused deputy).
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_the_schedulers_role_may_invoke_the_sweep_function_only(default_stack):
    template = default_stack.template_json
    found = ids(template)
    sweep = "${" + found["sweep"] + ".Arn}"
    assert permissions(role_statements(template, found["role"])) == {
        ("lambda:InvokeFunction", sweep, "null"),
        ("lambda:InvokeFunction", f"{sweep}:*", "null"),
    }


def test_the_schedule_is_the_same_when_the_sweep_deletes(default_stack, sweep_deletes_stack):
    base = default_stack.template_json
    flagged = sweep_deletes_stack.template_json
    for key in ("schedule", "role"):
        assert flagged["Resources"][ids(flagged)[key]] == base["Resources"][ids(base)[key]]


def test_the_sweep_function_is_an_output_with_its_log_group(default_stack):
    template = default_stack.template_json
    outputs = {name: render(o["Value"]) for name, o in template["Outputs"].items()}
    group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", "TasksSweepLogGroup")
    assert outputs["SweepFunctionArn"] == "${" + ids(template)["sweep"] + ".Arn}"
    assert outputs["SweepLogGroupName"] == "${" + group + "}"


def test_lambda_does_not_retry_a_failed_sweep_either(default_stack):
    """The schedule does not retry, and neither does Lambda's asynchronous invocation: a failed
    run is done again by the next one, not twice alongside it."""
    template = default_stack.template_json
    sweep = logical_id_with_prefix(template, "AWS::Lambda::Function", "TasksSweepFunction")
    _, config = only(template, "AWS::Lambda::EventInvokeConfig")
    assert config["Properties"]["FunctionName"] == {"Ref": sweep}
    assert config["Properties"]["MaximumRetryAttempts"] == 0
