"""The REST API edge: StartSyncExecution integrations (POST /upload -> the upload workflow, the
/uploads routes -> the sessions workflow), validation, errors, throttling, auth, CORS."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.templates import request_template, response_template, session_request_template
from local import vtl
from local.gateway import Gateway, Request
from local.step_functions import SfnApiError
from local.template import Resolver, apis
from tasks.contract.errors import OUTCOMES
from tasks.contract.limits import MAX_FILE_BYTES
from tasks.core.models import SessionEvent, parse_payload
from tests.conftest import CORS_ORIGINS, STACK_NAME

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    UPLOAD_WORKFLOW,
    api_methods,
    logical_id_with_prefix,
    only,
    permissions,
    render,
    resource_paths,
    resources_of_type,
    role_statements,
    state_machine_id,
)

UPLOAD_ROUTE = ("POST", "/upload")
# The sessions workflow's routes: (HTTP method, path) -> (operation, success status).
SESSION_ROUTES = {
    ("POST", "/uploads"): ("open", 201),
    ("POST", "/uploads/{uploadId}/parts"): ("parts", 200),
    ("GET", "/uploads/{uploadId}"): ("describe", 200),
    ("DELETE", "/uploads/{uploadId}"): ("abort", 200),
}
ROUTES = (UPLOAD_ROUTE, *SESSION_ROUTES)
SESSION_ROUTE_PARAMS = [
    pytest.param(route, operation, status, id=" ".join(route))
    for route, (operation, status) in SESSION_ROUTES.items()
]
UPLOAD_ID_PARAMETER = "method.request.path.uploadId"
SESSIONS_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Sessions"
# The integration responses of every route, in order: (method response, selection pattern,
# selected by Step Functions' HTTP 413); None stands for the route's success status.
SELECTIONS = (
    (None, None, False),
    ("413", "413", True),
    ("400", r"4(1[0-24-9]|[02-9]\d)", False),
    ("500", r"5\d{2}", False),
)


def integration_responses(success_status: int) -> list[dict[str, Any]]:
    """The IntegrationResponses a route with this success status must have, exactly."""
    responses: list[dict[str, Any]] = []
    for status, pattern, by_413 in SELECTIONS:
        template = response_template(success_status, selected_by_413=by_413)
        response = {
            "StatusCode": status or str(success_status),
            "ResponseTemplates": {"application/json": template},
        }
        responses.append(response if pattern is None else {**response, "SelectionPattern": pattern})
    return responses


def upload_method(stack):
    return api_methods(stack.template_json)[UPLOAD_ROUTE]


def state_machine_ref(stack, workflow=UPLOAD_WORKFLOW):
    return state_machine_id(stack.template_json, workflow)


def test_api_is_regional_with_a_prod_stage(default_stack):
    _, api = only(default_stack.template_json, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert "Name" not in api["Properties"] or isinstance(api["Properties"]["Name"], str)
    _, stage = only(default_stack.template_json, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == "prod"
    assert sorted(resource_paths(default_stack.template_json).values()) == [
        "/upload",
        "/uploads",
        "/uploads/{uploadId}",
        "/uploads/{uploadId}/parts",
    ]
    assert sorted(api_methods(default_stack.template_json)) == sorted(ROUTES)


def sync_execution(method: dict[str, Any]) -> dict[str, Any]:
    """The method's integration, checked to be StartSyncExecution with one JSON template."""
    integration: dict[str, Any] = method["Integration"]
    assert integration["Type"] == "AWS"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert render(integration["Uri"]) == (
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:states:action/StartSyncExecution"
    )
    assert integration["PassthroughBehavior"] == "NEVER"
    assert list(integration["RequestTemplates"]) == ["application/json"]
    return integration


def test_integration_starts_a_sync_execution_with_our_templates(default_stack):
    method = upload_method(default_stack)
    integration = sync_execution(method)
    arn = "${" + state_machine_ref(default_stack) + "}"
    assert render(integration["RequestTemplates"]["application/json"]) == request_template(arn)
    # /upload answers 200 on success.
    assert integration["IntegrationResponses"] == integration_responses(200)
    assert [r["StatusCode"] for r in method["MethodResponses"]] == ["200", "400", "413", "500"]


@pytest.mark.parametrize(("route", "operation", "status"), SESSION_ROUTE_PARAMS)
def test_session_routes_start_the_sessions_workflow_with_their_operation(
    default_stack, route, operation, status
):
    method = api_methods(default_stack.template_json)[route]
    integration = sync_execution(method)
    # The sessions workflow, not the upload workflow, with this route's operation.
    arn = "${" + state_machine_ref(default_stack, SESSIONS_WORKFLOW) + "}"
    text = render(integration["RequestTemplates"]["application/json"])
    assert text == session_request_template(arn, operation)
    assert f'"stateMachineArn": "{arn}"' in text
    assert f'\\"operation\\": \\"{operation}\\"' in text
    # The response template with this route's success status; errors by status.
    responses = integration["IntegrationResponses"]
    assert responses == integration_responses(status)
    default = responses[0]["ResponseTemplates"]["application/json"]
    assert f"#set($context.responseOverride.status = {status})" in default
    assert [r["StatusCode"] for r in method["MethodResponses"]] == [
        str(status),
        "400",
        "413",
        "500",
    ]
    for response in method["MethodResponses"]:
        assert response["ResponseModels"] == {"application/json": "Empty"}


def sample_request(template_text, *, body, upload_id):
    """The execution input API Gateway builds from ``template_text`` for one request."""
    rendered = vtl.render(
        template_text,
        body=body,
        headers={"Content-Type": "application/json", "Authorization": "AWS4-HMAC-SHA256 secret"},
        path_params={} if upload_id is None else {"uploadId": upload_id},
        context={"requestId": "req-1", "identity": {"caller": "AIDAEXAMPLE:alice"}},
    )
    request = json.loads(rendered.text)
    return request, json.loads(request["input"])


@pytest.mark.parametrize(("route", "operation", "status"), SESSION_ROUTE_PARAMS)
def test_the_rendered_session_request_is_the_session_tasks_event(
    default_stack, route, operation, status
):
    """Rendered as API Gateway would, each route's request template starts the sessions workflow
    with the input its Session task reads: the route's operation, the path's uploadId (None on
    POST /uploads), the caller and the body as text; no header."""
    method = api_methods(default_stack.template_json)[route]
    template_text = render(method["Integration"]["RequestTemplates"]["application/json"])
    # The state machine's ARN as CloudFormation fills it in.
    token = "${" + state_machine_ref(default_stack, SESSIONS_WORKFLOW) + "}"
    assert template_text.count(token) == 1
    template_text = template_text.replace(token, SESSIONS_ARN)
    has_id = "{uploadId}" in route[1]
    body = (
        '{"productId": "P-1", "fileName": "a \'b\'.bin", "size": 5}' if route[0] == "POST" else ""
    )
    request, execution_input = sample_request(
        template_text, body=body, upload_id="req-0" if has_id else None
    )
    assert request["stateMachineArn"] == SESSIONS_ARN
    assert request["name"] == "req-1"
    assert execution_input == {
        "body": body,
        "operation": operation,
        "requestId": "req-1",
        "uploadId": "req-0" if has_id else None,
        "caller": "AIDAEXAMPLE:alice",
    }
    event = parse_payload(SessionEvent, execution_input)
    assert (event.operation, event.uploadId) == (operation, "req-0" if has_id else None)
    assert "secret" not in request["input"]


@pytest.mark.parametrize(("route", "operation", "status"), SESSION_ROUTE_PARAMS)
def test_the_rendered_session_response_has_the_routes_status(
    default_stack, route, operation, status
):
    method = api_methods(default_stack.template_json)[route]
    [default] = [
        r for r in method["Integration"]["IntegrationResponses"] if "SelectionPattern" not in r
    ]
    template_text = default["ResponseTemplates"]["application/json"]

    def respond(result):
        return vtl.render(
            template_text,
            body=json.dumps(result),
            headers={},
            context={"requestId": "req-1"},
        )

    answer = {"uploadId": "req-0", "requestId": "req-1"}
    succeeded = respond({"status": "SUCCEEDED", "output": json.dumps(answer)})
    assert succeeded.status_override == status
    assert json.loads(succeeded.text) == answer
    message = json.dumps({"message": "There is no upload session with this uploadId."})
    cause = json.dumps({"errorType": "SessionNotFound", "errorMessage": message})
    failed = respond({"status": "FAILED", "error": "SessionNotFound", "cause": cause})
    assert failed.status_override == 404
    assert json.loads(failed.text)["error"]["code"] == "NotFound"


def test_every_integration_response_maps_to_a_method_response(default_stack):
    """An integration response's status code must map to an existing method response (API
    Gateway's rule: PutIntegrationResponse); the success of POST /uploads is 201, not 200."""
    for route, method in api_methods(default_stack.template_json).items():
        declared = {r["StatusCode"] for r in method["MethodResponses"]}
        mapped = {r["StatusCode"] for r in method["Integration"]["IntegrationResponses"]}
        assert mapped == declared, route


def test_each_error_status_selects_exactly_one_integration_response(default_stack):
    """API Gateway does not document which of two matching selection patterns wins, so no status
    matches two: 413 its own, any other 4xx the 400 one, 5xx the 500 one, the rest the default."""
    for route, method in api_methods(default_stack.template_json).items():
        responses = method["Integration"]["IntegrationResponses"]
        for status in range(100, 600):
            selected = [
                r["StatusCode"]
                for r in responses
                if "SelectionPattern" in r and re.fullmatch(r["SelectionPattern"], str(status))
            ]
            expected = "413" if status == 413 else {4: "400", 5: "500"}.get(status // 100)
            assert selected == ([expected] if expected else []), (route, status)


class RefusingStepFunctions:
    """StartSyncExecution refused by Step Functions with this HTTP status and error type."""

    def __init__(self, status: int, error_type: str) -> None:
        self.status = status
        self.error_type = error_type

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        raise SfnApiError(self.status, self.error_type, "SdkSecret: refused")


@pytest.fixture(scope="module")
def local_api(default_stack):
    """The stack's REST API as local mode serves it."""
    (api,) = apis(Resolver(default_stack.template_json, STACK_NAME))
    return api


@pytest.mark.parametrize("route", ROUTES, ids=" ".join)
@pytest.mark.parametrize(
    ("sfn_status", "error_type", "outcome"),
    [
        # Selected by its status: a 413 whatever the body says (here an error that is otherwise
        # a 500).
        (413, "InternalFailure", "Edge.InputTooLarge"),
        (413, "RequestEntityTooLargeException", "Edge.InputTooLarge"),
        (400, "ValidationException", "Edge.InputTooLarge"),
        (400, "RequestEntityTooLargeException", "Edge.InputTooLarge"),
        (400, "InvalidExecutionInput", "Edge.InputNotJson"),
        (400, "ThrottlingException", "Edge.StartThrottled"),
        (500, "InternalFailure", "InternalError"),
    ],
)
def test_local_mode_answers_a_refused_start_by_its_integration_response(
    local_api, route, sfn_status, error_type, outcome
):
    http_method, path = route
    gateway = Gateway(local_api, RefusingStepFunctions(sfn_status, error_type))
    request = Request(
        method=http_method,
        target=path.replace("{uploadId}", "req-0"),
        headers={"Content-Type": "application/json"},
        body=b"{}" if http_method == "POST" else b"",
        request_id="req-1",
    )

    response = gateway.handle(request)

    expected = OUTCOMES[outcome]
    assert response.status == expected.status
    assert json.loads(response.body) == {
        "error": {"code": expected.code, "message": expected.message},
        "requestId": "req-1",
    }


def test_api_role_may_only_start_sync_executions_of_the_two_state_machines(default_stack):
    template = default_stack.template_json
    role_id = logical_id_with_prefix(template, "AWS::IAM::Role", "EdgeStartExecutionRole")
    # Every route's integration runs as it.
    for route, method in api_methods(template).items():
        assert method["Integration"]["Credentials"] == {"Fn::GetAtt": [role_id, "Arn"]}, route
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
        (
            "states:StartSyncExecution",
            "${" + state_machine_ref(default_stack, workflow) + "}",
            "null",
        )
        for workflow in (UPLOAD_WORKFLOW, SESSIONS_WORKFLOW)
    }


def test_request_body_model_and_validator(default_stack):
    template = default_stack.template_json
    methods = api_methods(template)
    validator_id, validator = only(template, "AWS::ApiGateway::RequestValidator")
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True
    model_id, model = only(template, "AWS::ApiGateway::Model")
    # One validator for every route; the JSON-object model for every body (the POSTs).
    for route, method in methods.items():
        assert method["RequestValidatorId"] == {"Ref": validator_id}, route
        if route[0] == "POST":
            assert method["RequestModels"] == {"application/json": {"Ref": model_id}}, route
        else:
            assert "RequestModels" not in method, route
    assert {route: methods[route].get("RequestParameters") for route in ROUTES} == {
        UPLOAD_ROUTE: {"method.request.header.Idempotency-Key": False},
        ("POST", "/uploads"): {},
        ("POST", "/uploads/{uploadId}/parts"): {UPLOAD_ID_PARAMETER: True},
        ("GET", "/uploads/{uploadId}"): {UPLOAD_ID_PARAMETER: True},
        ("DELETE", "/uploads/{uploadId}"): {UPLOAD_ID_PARAMETER: True},
    }
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
    "WAF_FILTERED": ("403", "Forbidden"),
    "RESOURCE_NOT_FOUND": ("404", "NotFound"),
    "THROTTLED": ("429", "TooManyRequests"),
    "QUOTA_EXCEEDED": ("429", "TooManyRequests"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UnsupportedMediaType"),
    "REQUEST_TOO_LARGE": ("413", "PayloadTooLarge"),
    "INTEGRATION_TIMEOUT": ("504", "Timeout"),
    "INTEGRATION_FAILURE": ("503", "ServiceUnavailable"),
    "DEFAULT_4XX": ("403", "Forbidden"),
    "DEFAULT_5XX": ("500", "InternalError"),
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
    for route, method in api_methods(default_stack.template_json).items():
        assert method["AuthorizationType"] == "AWS_IAM", route
        assert method["ApiKeyRequired"] is False, route
    assert not resources_of_type(default_stack.template_json, "AWS::ApiGateway::ApiKey")
    assert not resources_of_type(default_stack.template_json, "AWS::ApiGateway::UsagePlan")


def usage_plan(stack):
    _, plan = only(stack.template_json, "AWS::ApiGateway::UsagePlan")
    return plan["Properties"]


def test_api_key_auth_requires_a_key_bound_to_a_usage_plan_on_the_stage(api_key_stack):
    template = api_key_stack.template_json
    methods = api_methods(template)
    assert sorted(methods) == sorted(ROUTES)
    for route, method in methods.items():
        assert method["AuthorizationType"] == "NONE", route
        assert method["ApiKeyRequired"] is True, route
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
    methods = api_methods(default_stack.template_json)
    assert sorted(methods) == sorted(ROUTES)  # no OPTIONS
    for method in methods.values():
        for response in method["Integration"]["IntegrationResponses"]:
            assert "Access-Control" not in response["ResponseTemplates"]["application/json"]


# Each resource's preflight: the methods it allows.
PREFLIGHTS = {
    "/upload": "POST,OPTIONS",
    "/uploads": "POST,OPTIONS",
    "/uploads/{uploadId}": "GET,DELETE,OPTIONS",
    "/uploads/{uploadId}/parts": "POST,OPTIONS",
}


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
    methods = api_methods(cors_stack.template_json)
    assert sorted(methods) == sorted([*ROUTES, *(("OPTIONS", path) for path in PREFLIGHTS)])
    for path, allowed in PREFLIGHTS.items():
        preflight = methods[("OPTIONS", path)]
        assert preflight["AuthorizationType"] == "NONE", path
        [response] = preflight["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Methods"] == f"'{allowed}'"
        assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
    statuses = {UPLOAD_ROUTE: 200} | {
        route: status for route, (_, status) in SESSION_ROUTES.items()
    }
    for route, status in statuses.items():
        responses = methods[route]["Integration"]["IntegrationResponses"]
        assert len(responses) == len(SELECTIONS), route
        for response, expected in zip(responses, integration_responses(status), strict=True):
            text = response["ResponseTemplates"]["application/json"]
            assert text.endswith(expected["ResponseTemplates"]["application/json"]), route
            assert "$context.responseOverride.header.Access-Control-Allow-Origin" in text
            for origin in CORS_ORIGINS:
                assert f"'{origin}'" in text
