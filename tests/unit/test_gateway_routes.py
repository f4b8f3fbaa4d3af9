"""local/gateway.py: resources with ``{name}`` path parameters and body-less methods, routed and
rendered as API Gateway does, on a small template read through local/template.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.gateway import Gateway, Request, Response
from local.template import Resolver, apis

API = "Api"
STAGE = "prod"
START_SYNC = "arn:aws:apigateway:us-east-1:states:action/StartSyncExecution"
UPLOADS_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Uploads"
PARTS_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Parts"

# Writes what the template sees into the StartSyncExecution request, where the executor reads it.
REQUEST_TEMPLATE = """#set($params = $input.params())
{"stateMachineArn": "@@ARN@@", "name": "$context.requestId", "input": "{}", "seen": {
"uploadId": "$util.escapeJavaScript($input.params('uploadId'))",
"pathUploadId": "$util.escapeJavaScript("$!params.path.uploadId")",
"pathCount": $params.path.size(),
"resourcePath": "$context.resourcePath",
"httpMethod": "$context.httpMethod",
"path": "$util.escapeJavaScript($context.path)",
"body": "$util.escapeJavaScript($input.body)",
"json": $input.json('$')}}"""
RESPONSE_TEMPLATE = (
    '{"status": "$input.path(\'$.status\')", '
    '"uploadId": "$util.escapeJavaScript($input.params(\'uploadId\'))"}'
)
MISSING_TOKEN_BODY = '{"error": "Forbidden", "requestId": "$context.requestId"}'
BAD_BODY_TEMPLATE = '{"error": "ValidationError", "requestId": "$context.requestId"}'


def _resource(logical_id: str, parent: str | None, path_part: str) -> dict[str, Any]:
    parent_id = {"Ref": parent} if parent else {"Fn::GetAtt": [API, "RootResourceId"]}
    return {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"RestApiId": {"Ref": API}, "ParentId": parent_id, "PathPart": path_part},
    }


def _method(resource: str, verb: str, machine_arn: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "RestApiId": {"Ref": API},
            "ResourceId": {"Ref": resource},
            "HttpMethod": verb,
            "AuthorizationType": "AWS_IAM",
            "RequestValidatorId": {"Ref": "Validator"},
            "Integration": {
                "Type": "AWS",
                "IntegrationHttpMethod": "POST",
                "Uri": START_SYNC,
                "PassthroughBehavior": "NEVER",
                "RequestTemplates": {
                    "application/json": REQUEST_TEMPLATE.replace("@@ARN@@", machine_arn)
                },
                "IntegrationResponses": [
                    {
                        "StatusCode": "200",
                        "ResponseTemplates": {"application/json": RESPONSE_TEMPLATE},
                    }
                ],
            },
            **properties,
        },
    }


def _gateway_response(response_type: str, status: str, template: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {
            "RestApiId": {"Ref": API},
            "ResponseType": response_type,
            "StatusCode": status,
            "ResponseTemplates": {"application/json": template},
        },
    }


PATH_PARAMETER = {"RequestParameters": {"method.request.path.uploadId": True}}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        API: {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "uploads"}},
        "Stage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {"RestApiId": {"Ref": API}, "StageName": STAGE},
        },
        "Validator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {"RestApiId": {"Ref": API}, "ValidateRequestBody": True},
        },
        "UploadModel": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "RestApiId": {"Ref": API},
                "ContentType": "application/json",
                "Schema": {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
            },
        },
        "Uploads": _resource("Uploads", None, "uploads"),
        "Upload": _resource("Upload", "Uploads", "{uploadId}"),
        "Parts": _resource("Parts", "Upload", "parts"),
        "Latest": _resource("Latest", "Uploads", "latest"),
        "UploadsPost": _method(
            "Uploads",
            "POST",
            UPLOADS_MACHINE,
            RequestModels={"application/json": {"Ref": "UploadModel"}},
        ),
        "UploadGet": _method("Upload", "GET", UPLOADS_MACHINE, **PATH_PARAMETER),
        "UploadDelete": _method("Upload", "DELETE", UPLOADS_MACHINE, **PATH_PARAMETER),
        "PartsPost": _method("Parts", "POST", PARTS_MACHINE, **PATH_PARAMETER),
        "LatestGet": _method("Latest", "GET", UPLOADS_MACHINE),
        "MissingToken": _gateway_response(
            "MISSING_AUTHENTICATION_TOKEN", "403", MISSING_TOKEN_BODY
        ),
        "BadBody": _gateway_response("BAD_REQUEST_BODY", "400", BAD_BODY_TEMPLATE),
    }
}


class RecordingExecutor:
    """StartSyncExecution that records each request and answers a succeeded execution."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        return {"executionArn": "arn:local:execution", "status": "SUCCEEDED", "output": "{}"}


@pytest.fixture
def executor() -> RecordingExecutor:
    return RecordingExecutor()


@pytest.fixture
def gateway(executor: RecordingExecutor) -> Gateway:
    (api,) = apis(Resolver(TEMPLATE, "Test"))
    return Gateway(api, executor)


def _call(
    gateway: Gateway,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Response:
    return gateway.handle(Request(method=method, target=target, headers=headers or {}, body=body))


def _seen(executor: RecordingExecutor) -> dict[str, Any]:
    """What the request template saw, for the one request the executor got."""
    (request,) = executor.requests
    seen: dict[str, Any] = request["seen"]
    return seen


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "target", "body", "resource_path", "machine", "upload_id"),
    [
        ("POST", "/uploads", b'{"a": 1}', "/uploads", UPLOADS_MACHINE, ""),
        ("GET", "/uploads/abc", b"", "/uploads/{uploadId}", UPLOADS_MACHINE, "abc"),
        ("DELETE", "/uploads/abc", b"", "/uploads/{uploadId}", UPLOADS_MACHINE, "abc"),
        ("POST", "/uploads/abc/parts", b"{}", "/uploads/{uploadId}/parts", PARTS_MACHINE, "abc"),
        ("GET", "/prod/uploads/abc", b"", "/uploads/{uploadId}", UPLOADS_MACHINE, "abc"),
        (
            "POST",
            "/prod/uploads/abc/parts",
            b"{}",
            "/uploads/{uploadId}/parts",
            PARTS_MACHINE,
            "abc",
        ),
    ],
)
def test_each_path_reaches_its_method_with_its_parameters(
    gateway: Gateway,
    executor: RecordingExecutor,
    method: str,
    target: str,
    body: bytes,
    resource_path: str,
    machine: str,
    upload_id: str,
) -> None:
    response = _call(gateway, method, target, body, JSON if body else None)

    assert response.status == 200
    assert json.loads(response.body) == {"status": "SUCCEEDED", "uploadId": upload_id}
    (request,) = executor.requests
    assert request["stateMachineArn"] == machine
    seen = _seen(executor)
    assert seen["resourcePath"] == resource_path
    assert seen["httpMethod"] == method
    assert seen["uploadId"] == upload_id
    assert seen["pathUploadId"] == upload_id
    assert seen["pathCount"] == (1 if upload_id else 0)


@pytest.mark.parametrize("target", ["/uploads/abc", "/prod/uploads/abc"])
def test_context_path_is_the_actual_path_under_the_stage(
    gateway: Gateway, executor: RecordingExecutor, target: str
) -> None:
    assert _call(gateway, "GET", target).status == 200
    assert _seen(executor)["path"] == "/prod/uploads/abc"


def test_a_literal_segment_wins_over_a_parameter(
    gateway: Gateway, executor: RecordingExecutor
) -> None:
    assert _call(gateway, "GET", "/uploads/latest").status == 200
    assert _call(gateway, "GET", "/uploads/latest2").status == 200

    literal, parameter = (request["seen"] for request in executor.requests)
    assert (literal["resourcePath"], literal["uploadId"]) == ("/uploads/latest", "")
    assert (parameter["resourcePath"], parameter["uploadId"]) == ("/uploads/{uploadId}", "latest2")


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/nothing"),
        ("GET", "/prod"),
        ("GET", "/uploads/abc/parts/x"),
        ("POST", "/uploads//parts"),  # a parameter takes a non-empty segment
        ("PUT", "/uploads/abc"),  # the resource exists, the method does not
        ("GET", "/uploads"),
        # The literal resource matches and has no DELETE: the {uploadId} sibling's is not used.
        ("DELETE", "/uploads/latest"),
    ],
)
def test_no_resource_and_method_is_missing_authentication_token(
    gateway: Gateway, executor: RecordingExecutor, method: str, target: str
) -> None:
    response = _call(gateway, method, target)

    assert response.status == 403
    assert json.loads(response.body) == {
        "error": "Forbidden",
        "requestId": response.headers["x-amzn-RequestId"],
    }
    assert executor.requests == []


def test_a_path_parameter_is_percent_decoded(gateway: Gateway, executor: RecordingExecutor) -> None:
    response = _call(gateway, "GET", "/uploads/a%20b%2Fc%C3%A9+d")

    assert response.status == 200
    seen = _seen(executor)
    assert seen["resourcePath"] == "/uploads/{uploadId}"
    assert seen["uploadId"] == seen["pathUploadId"] == "a b/c\u00e9+d"
    assert json.loads(response.body)["uploadId"] == "a b/c\u00e9+d"


def test_params_looks_in_the_path_before_the_query_string_and_headers(
    gateway: Gateway, executor: RecordingExecutor
) -> None:
    _call(gateway, "GET", "/uploads/abc?uploadId=query", headers={"uploadId": "header"})

    assert _seen(executor)["uploadId"] == "abc"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_request_without_body_or_content_type_gets_the_json_template(
    gateway: Gateway, executor: RecordingExecutor, method: str
) -> None:
    # The method has the body validator but no model: nothing to validate the empty body against.
    response = _call(gateway, method, "/uploads/abc")

    assert response.status == 200
    seen = _seen(executor)
    assert seen["body"] == ""
    assert seen["json"] == {}


@pytest.mark.parametrize("body", [b"", b"[]"])
def test_a_method_with_a_model_still_refuses_a_body_that_is_not_an_object(
    gateway: Gateway, executor: RecordingExecutor, body: bytes
) -> None:
    response = _call(gateway, "POST", "/uploads", body, JSON)

    assert response.status == 400
    assert json.loads(response.body)["error"] == "ValidationError"
    assert executor.requests == []


def test_a_json_body_reaches_the_template(gateway: Gateway, executor: RecordingExecutor) -> None:
    _call(gateway, "POST", "/uploads/abc/parts", b'{"part": 1}', JSON)

    seen = _seen(executor)
    assert json.loads(seen["body"]) == seen["json"] == {"part": 1}


def test_a_type_without_a_response_of_its_own_takes_its_family_status_and_body(
    executor: RecordingExecutor,
) -> None:
    # API Gateway: DEFAULT_4XX's status code applies to every 4xx type that sets none.
    resources = dict(TEMPLATE["Resources"])
    resources["Default4xx"] = _gateway_response("DEFAULT_4XX", "403", MISSING_TOKEN_BODY)
    (api,) = apis(Resolver({"Resources": resources}, "Test"))
    gateway = Gateway(api, executor)

    refused = gateway.gateway_response("UNSUPPORTED_MEDIA_TYPE", {"requestId": "r-1"})
    own = gateway.gateway_response("BAD_REQUEST_BODY", {"requestId": "r-2"})

    assert (refused.status, json.loads(refused.body)) == (
        403,
        {"error": "Forbidden", "requestId": "r-1"},
    )
    assert (own.status, json.loads(own.body)) == (
        400,
        {"error": "ValidationError", "requestId": "r-2"},
    )
