"""The REST API edge: StartSyncExecution integration, validation, errors, throttling, auth."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from infra.templates import request_template, response_template
from tasks.contract.limits import MAX_FILE_BYTES
from tests.conftest import CORS_ORIGINS

from .infra_helpers import (
    logical_id_with_prefix,
    only,
    permissions,
    render,
    resources_of_type,
    role_statements,
)


def post_method(stack):
    methods = [
        m
        for m in resources_of_type(stack.template_json, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    [method] = methods
    return method["Properties"]


def state_machine_ref(stack):
    logical_id, _ = only(stack.template_json, "AWS::StepFunctions::StateMachine")
    return logical_id


def test_api_is_regional_with_a_prod_stage(default_stack):
    _, api = only(default_stack.template_json, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert "Name" not in api["Properties"] or isinstance(api["Properties"]["Name"], str)
    _, stage = only(default_stack.template_json, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == "prod"
    [resource] = resources_of_type(
        default_stack.template_json, "AWS::ApiGateway::Resource"
    ).values()
    assert resource["Properties"]["PathPart"] == "upload"


def test_integration_starts_a_sync_execution_with_our_templates(default_stack):
    method = post_method(default_stack)
    integration = method["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert render(integration["Uri"]) == (
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:states:action/StartSyncExecution"
    )
    assert integration["PassthroughBehavior"] == "NEVER"
    assert list(integration["RequestTemplates"]) == ["application/json"]
    arn = "${" + state_machine_ref(default_stack) + "}"
    assert render(integration["RequestTemplates"]["application/json"]) == request_template(arn)
    responses = {
        r.get("SelectionPattern"): (r["StatusCode"], r["ResponseTemplates"])
        for r in integration["IntegrationResponses"]
    }
    expected = {"application/json": response_template()}
    assert responses == {
        None: ("200", expected),
        r"4\d{2}": ("400", expected),
        r"5\d{2}": ("500", expected),
    }


def test_api_role_may_only_start_sync_executions_of_this_state_machine(default_stack):
    template = default_stack.template_json
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", "EdgeStartExecutionRole")
    assert post_method(default_stack)["Integration"]["Credentials"] == {
        "Fn::GetAtt": [role_id, "Arn"]
    }
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role
    assert permissions(role_statements(template, role_id)) == {
        ("states:StartSyncExecution", "${" + state_machine_ref(default_stack) + "}", "null")
    }


def test_request_body_model_and_validator(default_stack):
    template = default_stack.template_json
    method = post_method(default_stack)
    assert method["RequestParameters"] == {"method.request.header.Idempotency-Key": False}
    [validator] = resources_of_type(template, "AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    model_id, model = only(template, "AWS::ApiGateway::Model")
    assert method["RequestModels"] == {"application/json": {"Ref": model_id}}
    # Only the shape: every field rule is the validate task's, which names the field at fault.
    assert model["Properties"]["Schema"] == {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "UploadRequest",
        "type": "object",
    }


def test_stage_throttling_logging_and_tracing(default_stack):
    _, stage = only(default_stack.template_json, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "LoggingLevel": "ERROR",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 2000,
            "ThrottlingRateLimit": 1000,
        }
    ]
    assert props["TracingEnabled"] is True
    group = logical_id_with_prefix(
        default_stack.template_json, "AWS::Logs::LogGroup", "EdgeAccessLogs"
    )
    assert render(props["AccessLogSetting"]["DestinationArn"]).endswith(
        ":log-group:${" + group + "}"
    )
    access_log = json.loads(props["AccessLogSetting"]["Format"])
    assert {
        "requestId": "$context.requestId",
        "status": "$context.status",
        "latency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "errorMessage": "$context.error.message",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.path",
    }.items() <= access_log.items()


GATEWAY_RESPONSES = {
    "BAD_REQUEST_BODY": ("400", "ValidationError"),
    "BAD_REQUEST_PARAMETERS": ("400", "ValidationError"),
    "ACCESS_DENIED": ("403", "Forbidden"),
    "MISSING_AUTHENTICATION_TOKEN": ("403", "Forbidden"),
    "INVALID_SIGNATURE": ("403", "Forbidden"),
    "EXPIRED_TOKEN": ("403", "Forbidden"),
    "INVALID_API_KEY": ("403", "Forbidden"),
    "THROTTLED": ("429", "TooManyRequests"),
    "QUOTA_EXCEEDED": ("429", "TooManyRequests"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UnsupportedMediaType"),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge"),
    "INTEGRATION_TIMEOUT": ("504", "Timeout"),
    "INTEGRATION_FAILURE": ("503", "ServiceUnavailable"),
    "DEFAULT_4XX": (None, "BadRequest"),
    "DEFAULT_5XX": (None, "InternalError"),
}


def render_gateway_body(template_text):
    """Substitute API Gateway's variables as it does (simple substitution, no VTL)."""
    return template_text.replace("$context.requestId", "req-1").replace(
        "$context.error.messageString", '"Some message"'
    )


@pytest.fixture(scope="module")
def gateway_responses(default_stack):
    found = {}
    for response in resources_of_type(
        default_stack.template_json, "AWS::ApiGateway::GatewayResponse"
    ).values():
        props = response["Properties"]
        found[props["ResponseType"]] = props
    return found


def test_gateway_responses_cover_every_edge_error(gateway_responses):
    assert set(gateway_responses) == set(GATEWAY_RESPONSES)


@pytest.mark.parametrize(("response_type", "expected"), GATEWAY_RESPONSES.items())
def test_gateway_response_has_the_contract_status_and_body(
    gateway_responses, response_type, expected
):
    status, code = expected
    props = gateway_responses[response_type]
    assert props.get("StatusCode") == status
    assert (
        props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    )
    body = json.loads(render_gateway_body(props["ResponseTemplates"]["application/json"]))
    assert body["requestId"] == "req-1"
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


def test_bad_request_body_stays_json_whatever_the_validation_problem(gateway_responses):
    # Gateway responses substitute variables without escaping: a quoted problem description
    # (e.g. ["price"]) must never be pasted into the body.
    text = gateway_responses["BAD_REQUEST_BODY"]["ResponseTemplates"]["application/json"]
    assert "validationErrorString" not in text
    body = json.loads(render_gateway_body(text))
    assert body["error"]["code"] == "ValidationError"


def test_request_too_large_states_the_limits_in_bytes(gateway_responses):
    body = json.loads(
        render_gateway_body(
            gateway_responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"]
        )
    )
    assert str(MAX_FILE_BYTES) in body["error"]["message"]
    assert "10485760" in body["error"]["message"]


def test_iam_auth_by_default(default_stack):
    method = post_method(default_stack)
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["ApiKeyRequired"] is False
    assert not resources_of_type(default_stack.template_json, "AWS::ApiGateway::ApiKey")
    assert not resources_of_type(default_stack.template_json, "AWS::ApiGateway::UsagePlan")


def usage_plan(stack):
    _, plan = only(stack.template_json, "AWS::ApiGateway::UsagePlan")
    return plan["Properties"]


def test_api_key_auth_requires_a_key_bound_to_a_usage_plan_on_the_stage(api_key_stack):
    template = api_key_stack.template_json
    method = post_method(api_key_stack)
    assert method["AuthorizationType"] == "NONE"
    assert method["ApiKeyRequired"] is True
    plan_id, _ = only(template, "AWS::ApiGateway::UsagePlan")
    key_id, _ = only(template, "AWS::ApiGateway::ApiKey")
    stage_id, _ = only(template, "AWS::ApiGateway::Stage")
    api_id, _ = only(template, "AWS::ApiGateway::RestApi")
    plan = usage_plan(api_key_stack)
    assert plan["Throttle"] == {"RateLimit": 1000, "BurstLimit": 2000}
    assert plan["Quota"] == {"Limit": 1_000_000, "Period": "DAY"}
    [api_stage] = plan["ApiStages"]
    assert (api_stage["ApiId"], api_stage["Stage"]) == ({"Ref": api_id}, {"Ref": stage_id})
    [link] = resources_of_type(template, "AWS::ApiGateway::UsagePlanKey").values()
    assert link["Properties"] == {
        "KeyId": {"Ref": key_id},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": plan_id},
    }
    assert "ApiKeyId" in template["Outputs"]


def test_daily_quota_flag_sets_the_usage_plan_quota(daily_quota_stack):
    assert usage_plan(daily_quota_stack)["Quota"] == {"Limit": 5000, "Period": "DAY"}


def test_no_cors_by_default(default_stack):
    methods = resources_of_type(default_stack.template_json, "AWS::ApiGateway::Method").values()
    assert [m["Properties"]["HttpMethod"] for m in methods] == ["POST"]
    for response in post_method(default_stack)["Integration"]["IntegrationResponses"]:
        assert "Access-Control" not in response["ResponseTemplates"]["application/json"]


def test_cors_origins_add_a_preflight_and_the_allow_origin_header(cors_stack):
    template = cors_stack.template
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "OPTIONS",
            "AuthorizationType": "NONE",
            "Integration": Match.object_like({"Type": "MOCK"}),
        },
    )
    for response in post_method(cors_stack)["Integration"]["IntegrationResponses"]:
        text = response["ResponseTemplates"]["application/json"]
        assert text.endswith(response_template())
        assert "$context.responseOverride.header.Access-Control-Allow-Origin" in text
        for origin in CORS_ORIGINS:
            assert f"'{origin}'" in text
