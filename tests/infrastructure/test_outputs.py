"""Stack outputs: what operators, the README and local mode rely on."""

from __future__ import annotations

from local.template import ACCOUNT_ID, LOCAL_STACK_UUID, REGION, Resolver
from tests.conftest import STACK_NAME

from .infra_helpers import SESSIONS_WORKFLOW, logical_id_with_prefix, only, render, state_machine_id

TASKS = ("Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session")


def test_outputs(default_stack):
    template = default_stack.template_json
    outputs = {name: render(o["Value"]) for name, o in template["Outputs"].items()}
    api_id, _ = only(template, "AWS::ApiGateway::RestApi")
    stage_id, _ = only(template, "AWS::ApiGateway::Stage")
    machine_id = state_machine_id(template)
    sessions_machine_id = state_machine_id(template, SESSIONS_WORKFLOW)

    def ref(resource_type, prefix, attribute=None):
        logical_id = logical_id_with_prefix(template, resource_type, prefix)
        return "${" + logical_id + (f".{attribute}" if attribute else "") + "}"

    expected = {
        "ApiUrl": "https://${"
        + api_id
        + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${"
        + stage_id
        + "}/upload",
        "StateMachineArn": "${" + machine_id + "}",
        "BucketName": ref("AWS::S3::Bucket", "StorageUploadBucket"),
        "TableName": ref("AWS::DynamoDB::Table", "StorageMetadataTable"),
        "IdempotencyTableName": ref("AWS::DynamoDB::Table", "StorageIdempotencyTable"),
        "LedgerTableName": ref("AWS::DynamoDB::Table", "StorageLedgerTable"),
        "SessionsTableName": ref("AWS::DynamoDB::Table", "StorageSessionsTable"),
        "SessionsStateMachineArn": "${" + sessions_machine_id + "}",
        "SessionsLogGroupName": ref("AWS::Logs::LogGroup", "SessionsLogGroup"),
        "ApiAccessLogGroupName": ref("AWS::Logs::LogGroup", "EdgeAccessLogs"),
        "StateMachineLogGroupName": ref("AWS::Logs::LogGroup", "WorkflowLogGroup"),
        "DashboardName": ref("AWS::CloudWatch::Dashboard", "MonitoringDashboard"),
    }
    for task in TASKS:
        expected[f"{task}FunctionArn"] = ref("AWS::Lambda::Function", f"Tasks{task}Func", "Arn")
        expected[f"{task}LogGroupName"] = ref("AWS::Logs::LogGroup", f"Tasks{task}LogGroup")
    # CDK's RestApi adds its own stage URL output beside ours.
    extra = {name for name in outputs if name.startswith("EdgeApiEndpoint")}
    assert len(extra) == 1
    assert {k: v for k, v in outputs.items() if k not in extra} == expected


def test_local_mode_resolves_the_workflow_log_group_names_and_their_outputs(default_stack):
    """Local mode derives the state machines' log group names from the template as CloudFormation
    does, from a stack id of CloudFormation's shape with a fixed UUID: the groups it creates are
    the ones the outputs name, the same from one run to the next."""
    template = default_stack.template_json
    resolver = Resolver(template, STACK_NAME)
    assert resolver.ref("AWS::StackId") == (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/{LOCAL_STACK_UUID}"
    )
    prefix = f"/aws/vendedlogs/states/{STACK_NAME}-{LOCAL_STACK_UUID}"
    for output, group_prefix, name in (
        ("StateMachineLogGroupName", "WorkflowLogGroup", f"{prefix}/upload-workflow"),
        ("SessionsLogGroupName", "SessionsLogGroup", f"{prefix}/sessions-workflow"),
    ):
        group = logical_id_with_prefix(template, "AWS::Logs::LogGroup", group_prefix)
        assert resolver.physical_id(group) == name
        assert resolver.resolve(template["Outputs"][output]["Value"]) == name
