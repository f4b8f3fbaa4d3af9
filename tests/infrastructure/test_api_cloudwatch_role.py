"""The account's API Gateway CloudWatch role (context flag apiGatewayCloudWatchRole): by default
the stack creates the role and sets it as API Gateway's role for the whole region, both kept
after the stack is deleted; with the flag false it does neither and leaves the account's setting
alone."""

from __future__ import annotations

import json

import pytest

from infra.settings import Settings, SettingsError

from .infra_helpers import only, resources_of_type

PUSH_TO_CLOUDWATCH_LOGS = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        ],
    ]
}
ACKNOWLEDGED_ROLE = "/UploadService/Edge/Api/CloudWatchRole"


def cloudwatch_roles(template):
    """The roles with API Gateway's managed logging policy."""
    return {
        logical_id: role
        for logical_id, role in resources_of_type(template, "AWS::IAM::Role").items()
        if PUSH_TO_CLOUDWATCH_LOGS in role["Properties"].get("ManagedPolicyArns", [])
    }


@pytest.mark.parametrize("variant", ["default_stack", "destroy_stack"])
def test_by_default_the_stack_sets_the_regions_role_and_keeps_it_after_deletion(request, variant):
    """Kept even with destroyOnDelete: other APIs of the account and region log through it."""
    template = request.getfixturevalue(variant).template_json
    account_id, account = only(template, "AWS::ApiGateway::Account")
    [(role_id, role)] = cloudwatch_roles(template).items()
    assert account["Properties"] == {"CloudWatchRoleArn": {"Fn::GetAtt": [role_id, "Arn"]}}
    assert role["Properties"] == {
        "AssumeRolePolicyDocument": {
            "Statement": [
                {
                    "Action": "sts:AssumeRole",
                    "Effect": "Allow",
                    "Principal": {"Service": "apigateway.amazonaws.com"},
                }
            ],
            "Version": "2012-10-17",
        },
        "ManagedPolicyArns": [PUSH_TO_CLOUDWATCH_LOGS],
    }
    for resource in (account, role):
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"
    # The stage logs from its first deploy: it waits for the role to be set.
    stage_id, stage = only(template, "AWS::ApiGateway::Stage")
    assert account_id in stage["DependsOn"], stage_id


def test_with_the_flag_false_the_stack_creates_and_sets_no_role(
    default_stack, no_cloudwatch_role_stack
):
    template = no_cloudwatch_role_stack.template_json
    assert resources_of_type(template, "AWS::ApiGateway::Account") == {}
    assert cloudwatch_roles(template) == {}
    # Nothing else changes: the stage still logs (through the account's existing role).
    default = default_stack.template_json
    removed = {only(default, "AWS::ApiGateway::Account")[0], *cloudwatch_roles(default)}
    assert set(template["Resources"]) == set(default["Resources"]) - removed
    _, stage = only(template, "AWS::ApiGateway::Stage")
    _, default_stage = only(default, "AWS::ApiGateway::Stage")
    assert "DependsOn" not in stage
    assert stage["Properties"] == default_stage["Properties"]
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "ERROR"
    assert "AccessLogSetting" in stage["Properties"]


def acknowledged_paths(stack):
    metadata = json.loads((stack.outdir / "UploadService.metadata.json").read_text())
    return {
        path
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
    }


def test_the_roles_acknowledgement_goes_with_the_role(default_stack, no_cloudwatch_role_stack):
    """(cdk-nag runs on both: test_compliance.py.)"""
    assert ACKNOWLEDGED_ROLE in acknowledged_paths(default_stack)
    assert ACKNOWLEDGED_ROLE not in acknowledged_paths(no_cloudwatch_role_stack)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, True), ("", True), (True, True), ("true", True), (False, False), ("false", False)],
)
def test_flag_parsing(raw, expected):
    context = {"apiGatewayCloudWatchRole": raw}
    assert Settings.from_context(context.get).api_gateway_cloudwatch_role is expected


@pytest.mark.parametrize("raw", ["no", "0", 0, "off"])
def test_a_bad_value_is_refused_naming_the_flag(raw):
    context = {"apiGatewayCloudWatchRole": raw}
    with pytest.raises(SettingsError) as raised:
        Settings.from_context(context.get)
    assert str(raised.value) == f"context apiGatewayCloudWatchRole={raw!r}: expected true or false"
