"""Stack outputs: what operators, the README and local mode rely on."""

from __future__ import annotations

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
