"""REST API: POST /upload -> the upload workflow, the /uploads routes -> the sessions workflow
(both states:StartSyncExecution), with the contract's error shapes."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compliance import acknowledge, skip_checkov
from infra.log_groups import encrypted_log_group
from infra.settings import AuthMode, Settings
from infra.templates import request_template, response_template, session_request_template
from tasks.contract.errors import GATEWAY_PREFIX, OUTCOMES

STAGE_NAME = "prod"
RESOURCE_PATH = "upload"
SESSIONS_PATH = "uploads"
UPLOAD_ID_PARAMETER = "method.request.path.uploadId"
THROTTLE_RATE_LIMIT = 1000  # requests per second, steady
THROTTLE_BURST_LIMIT = 2000
JSON = "application/json"
IDEMPOTENCY_HEADER = "method.request.header.Idempotency-Key"
CORS_ALLOW_HEADERS = [
    "Content-Type",
    "Authorization",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Api-Key",
    "Idempotency-Key",
]

# One access log line per request, JSON. Never the body.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
    "integrationError": "$context.integration.error",
}


def _error_body(code: str, message: str) -> str:
    """A gateway response body (simple substitution, not VTL). ``message`` is a JSON value."""
    return (
        '{"error": {"code": "' + code + '", "message": ' + message + "}, "
        '"requestId": "$context.requestId"}'
    )


def _text(message: str) -> str:
    return json.dumps(message)


# Every gateway response the API customizes: the contract's outcome of the same name (status,
# code, message), so that every answer API Gateway gives by itself carries a contract code.
CONTRACT_GATEWAY_RESPONSES: tuple[apigw.ResponseType, ...] = (
    apigw.ResponseType.BAD_REQUEST_BODY,
    apigw.ResponseType.BAD_REQUEST_PARAMETERS,
    apigw.ResponseType.ACCESS_DENIED,
    apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    apigw.ResponseType.INVALID_SIGNATURE,
    apigw.ResponseType.EXPIRED_TOKEN,
    apigw.ResponseType.INVALID_API_KEY,
    apigw.ResponseType.WAF_FILTERED,
    apigw.ResponseType.RESOURCE_NOT_FOUND,
    apigw.ResponseType.THROTTLED,
    apigw.ResponseType.QUOTA_EXCEEDED,
    apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE,
    apigw.ResponseType.REQUEST_TOO_LARGE,
    apigw.ResponseType.INTEGRATION_TIMEOUT,
    apigw.ResponseType.INTEGRATION_FAILURE,
    apigw.ResponseType.DEFAULT_4_XX,
    apigw.ResponseType.DEFAULT_5_XX,
)


def gateway_responses() -> dict[apigw.ResponseType, tuple[str, str, str]]:
    """Response type -> (status code, client code, message as JSON), from the contract's
    outcomes (``Gateway.<TYPE>``)."""
    responses: dict[apigw.ResponseType, tuple[str, str, str]] = {}
    for response_type in CONTRACT_GATEWAY_RESPONSES:
        outcome = OUTCOMES[GATEWAY_PREFIX + response_type.response_type]
        responses[response_type] = (str(outcome.status), outcome.code, _text(outcome.message))
    return responses


def request_model_schema() -> apigw.JsonSchema:
    """The edge's fast check: the body is one JSON object (so the request template can embed it
    in the execution input as it is). Field rules live in one place, the validate task, which
    names every offending field in ``details``; an edge model with field rules would answer the
    same mistakes with a generic message (gateway responses cannot carry the problem safely)."""
    return apigw.JsonSchema(
        schema=apigw.JsonSchemaVersion.DRAFT4,
        title="UploadRequest",
        type=apigw.JsonSchemaType.OBJECT,
    )


class UploadApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        sessions_machine: sfn.IStateMachine,
        logs_key: kms.IKey,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_log_group = encrypted_log_group(
            self, "AccessLogs", key=logs_key, removal_policy=settings.removal_policy
        )
        self.api = self._build_rest_api(settings)
        self.stage = self.api.deployment_stage
        # API Gateway's own errors (auth, throttling, a bad body) in the contract's error shape.
        self._add_gateway_responses(settings.cors_origins)
        self.role = self._build_start_execution_role(state_machine, sessions_machine)
        api_key_mode = settings.auth is AuthMode.API_KEY
        self._validator = self.api.add_request_validator(
            "BodyAndHeaders", validate_request_body=True, validate_request_parameters=True
        )
        self._model = self.api.add_model(
            "UploadRequestModel", content_type=JSON, schema=request_model_schema()
        )
        self.method = self._add_upload_method(state_machine, settings.cors_origins, api_key_mode)
        self.session_methods = self._add_session_methods(
            sessions_machine, settings.cors_origins, api_key_mode
        )
        self.api_key = self._add_usage_plan(settings.daily_quota) if api_key_mode else None
        self._add_acknowledgements(api_key_mode)
        self.url = self.api.url_for_path(f"/{RESOURCE_PATH}")

    def _build_rest_api(self, settings: Settings) -> apigw.RestApi:
        api = apigw.RestApi(
            self,
            "Api",
            # REST API metrics are keyed by ApiName (not id): a name unique to this stack keeps
            # the alarms and dashboard (infra/monitoring.py) off other APIs' metrics.
            rest_api_name=f"{Stack.of(self).stack_name}-UploadApi",
            description="Upload service: POST /upload runs the upload workflow synchronously",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution and access logging need the account's API Gateway CloudWatch role. It is
            # one per account and region (AWS::ApiGateway::Account): setting it sets it for every
            # API in the region, so it is kept after the stack is deleted. With the context flag
            # apiGatewayCloudWatchRole=false the stack leaves the account's setting alone.
            cloud_watch_role=settings.api_gateway_cloudwatch_role,
            cloud_watch_role_removal_policy=(
                RemovalPolicy.RETAIN if settings.api_gateway_cloudwatch_role else None
            ),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # dataTrace would log whole request bodies, i.e. the files.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
            ),
        )
        if settings.api_gateway_cloudwatch_role:
            acknowledge(
                api.node.find_child("CloudWatchRole"),
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "the account-level API Gateway logging role; AWS documents this managed policy "
                "for it and keeps it current.",
            )
        return api

    def _add_gateway_responses(self, cors_origins: tuple[str, ...] | None) -> None:
        headers: dict[str, str] = {"Content-Type": f"'{JSON}'"}
        if cors_origins and len(cors_origins) == 1:
            # Gateway responses can only carry a static value: one origin (or *) only.
            headers["Access-Control-Allow-Origin"] = f"'{cors_origins[0]}'"
        for response_type, (status, code, message) in gateway_responses().items():
            self.api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status,
                response_headers=headers,
                templates={JSON: _error_body(code, message)},
            )

    def _build_start_execution_role(
        self, state_machine: sfn.IStateMachine, sessions_machine: sfn.IStateMachine
    ) -> iam.Role:
        """What the integrations run as: they may start these two workflows and nothing else."""
        role = iam.Role(
            self,
            "StartExecutionRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway: start sync executions of the upload and sessions workflows",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartSyncExecution"],
                resources=[state_machine.state_machine_arn, sessions_machine.state_machine_arn],
            )
        )
        return role

    def _build_integration(
        self,
        request: str,
        cors_origins: tuple[str, ...] | None,
        success_status: int = 200,
    ) -> apigw.AwsIntegration:
        """StartSyncExecution with the ``request`` template, its output mapped to the contract's
        responses by status: the default (a succeeded call), 413, any other 4xx, 5xx."""
        # (method response, selection pattern, selected by Step Functions' HTTP 413). The 4xx
        # pattern leaves 413 out: API Gateway keeps integration responses in a map keyed by status
        # code (the order here is lost) and does not document which of two matching patterns
        # wins. The default answers the route's success status: an integration response must
        # name a method response.
        selections = (
            (str(success_status), None, False),
            ("413", "413", True),
            ("400", r"4(1[0-24-9]|[02-9]\d)", False),
            ("500", r"5\d{2}", False),
        )
        return apigw.AwsIntegration(
            service="states",
            action="StartSyncExecution",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self.role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={JSON: request},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code=status,
                        selection_pattern=pattern,
                        response_templates={
                            JSON: _with_cors_origin(
                                response_template(success_status, selected_by_413=by_413),
                                cors_origins,
                            )
                        },
                    )
                    for status, pattern, by_413 in selections
                ],
            ),
        )

    def _add_upload_method(
        self,
        state_machine: sfn.IStateMachine,
        cors_origins: tuple[str, ...] | None,
        api_key_mode: bool,
    ) -> apigw.Method:
        """POST /upload: the body checked against the model before the workflow starts."""
        integration = self._build_integration(
            request_template(state_machine.state_machine_arn), cors_origins
        )
        resource = self.api.root.add_resource(RESOURCE_PATH)
        _add_preflight(resource, cors_origins, ["POST", "OPTIONS"])
        return self._add_method(
            resource,
            "POST",
            integration,
            api_key_mode,
            has_body=True,
            parameters={IDEMPOTENCY_HEADER: False},
        )

    def _add_session_methods(
        self,
        sessions_machine: sfn.IStateMachine,
        cors_origins: tuple[str, ...] | None,
        api_key_mode: bool,
    ) -> list[apigw.Method]:
        """POST /uploads, POST /uploads/{uploadId}/parts, GET and DELETE /uploads/{uploadId}:
        each an operation of the sessions workflow (tasks/session.py)."""
        arn = sessions_machine.state_machine_arn
        collection = self.api.root.add_resource(SESSIONS_PATH)
        session = collection.add_resource("{uploadId}")
        parts = session.add_resource("parts")
        _add_preflight(collection, cors_origins, ["POST", "OPTIONS"])
        _add_preflight(session, cors_origins, ["GET", "DELETE", "OPTIONS"])
        _add_preflight(parts, cors_origins, ["POST", "OPTIONS"])
        path = {UPLOAD_ID_PARAMETER: True}
        routes: tuple[tuple[apigw.Resource, str, str, int, bool, dict[str, bool]], ...] = (
            (collection, "POST", "open", 201, True, {}),
            (parts, "POST", "parts", 200, True, path),
            (session, "GET", "describe", 200, False, path),
            (session, "DELETE", "abort", 200, False, path),
        )
        return [
            self._add_method(
                resource,
                http_method,
                self._build_integration(
                    session_request_template(arn, operation), cors_origins, status
                ),
                api_key_mode,
                has_body=has_body,
                parameters=parameters,
                success_status=status,
            )
            for resource, http_method, operation, status, has_body, parameters in routes
        ]

    def _add_method(
        self,
        resource: apigw.Resource,
        http_method: str,
        integration: apigw.AwsIntegration,
        api_key_mode: bool,
        *,
        has_body: bool,
        parameters: dict[str, bool],
        success_status: int = 200,
    ) -> apigw.Method:
        """A method with the API's authorization, and for a body the JSON-object model."""
        return resource.add_method(
            http_method,
            integration,
            authorization_type=(
                apigw.AuthorizationType.NONE if api_key_mode else apigw.AuthorizationType.IAM
            ),
            api_key_required=api_key_mode,
            request_models={JSON: self._model} if has_body else None,
            request_validator=self._validator,
            request_parameters=parameters,
            method_responses=[
                apigw.MethodResponse(
                    status_code=status, response_models={JSON: apigw.Model.EMPTY_MODEL}
                )
                for status in (str(success_status), "400", "413", "500")
            ],
        )

    def _add_usage_plan(self, daily_quota: int) -> apigw.IApiKey:
        """auth=apiKey: one client key, bound to a plan with the stage throttle and a quota."""
        key = self.api.add_api_key("ApiKey", description="Upload service client key")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            description="Upload service: stage throttle and daily quota",
            throttle=apigw.ThrottleSettings(
                rate_limit=THROTTLE_RATE_LIMIT, burst_limit=THROTTLE_BURST_LIMIT
            ),
            quota=apigw.QuotaSettings(limit=daily_quota, period=apigw.Period.DAY),
        )
        plan.add_api_stage(stage=self.stage)
        plan.add_api_key(key)
        return key

    def _add_acknowledgements(self, api_key_mode: bool) -> None:
        """cdk-nag and checkov findings that do not apply to this API, each with its reason
        (the CloudWatch role's: in ``_build_rest_api``, which creates it or not)."""
        methods = [self.method, *self.session_methods]
        if api_key_mode:
            for method in methods:
                acknowledge(
                    method,
                    "AwsSolutions-APIG4",
                    "auth=apiKey was chosen at deploy time: the method requires an API key bound "
                    "to a usage plan with throttle and daily quota.",
                )
            cognito_reason = "machine clients authenticate with an API key (auth=apiKey)."
        else:
            cognito_reason = (
                "the method uses IAM (SigV4) authorization; clients are AWS principals."
            )
        for method in methods:
            acknowledge(method, "AwsSolutions-COG4", f"no Cognito user pool: {cognito_reason}")
        acknowledge(
            self.stage,
            "AwsSolutions-APIG3",
            "no WAF web ACL: every request is authenticated (IAM or API key), validated against "
            "a model and throttled at 1000 rps / burst 2000; a WAF can be added per account.",
        )
        skip_checkov(
            self.stage,
            "CKV_AWS_120",
            "No cache: the only method is POST /upload, whose every request stores a new file; "
            "a cached response would skip the upload.",
        )


def _add_preflight(
    resource: apigw.Resource, origins: tuple[str, ...] | None, methods: list[str]
) -> None:
    if origins:
        resource.add_cors_preflight(
            allow_origins=list(origins), allow_methods=methods, allow_headers=CORS_ALLOW_HEADERS
        )


def _with_cors_origin(template: str, origins: tuple[str, ...] | None) -> str:
    """Prefix the response template with a VTL block that echoes an allowed Origin."""
    if not origins:
        return template
    if origins == ("*",):
        block = "#set($context.responseOverride.header.Access-Control-Allow-Origin = '*')\n"
    else:
        allowed = ", ".join(f"'{origin}'" for origin in origins)
        block = (
            "#set($corsOrigin = $input.params().header.get('Origin'))\n"
            f"#if([{allowed}].contains($corsOrigin))\n"
            "#set($context.responseOverride.header.Access-Control-Allow-Origin = $corsOrigin)\n"
            "#set($context.responseOverride.header.Vary = 'Origin')\n"
            "#end\n"
        )
    return block + template
