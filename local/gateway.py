"""The API edge: API Gateway's REST behaviour for the template's methods, served locally.

For each request, in API Gateway's order: route (unknown path or method -> 403
``MISSING_AUTHENTICATION_TOKEN``; see :meth:`Gateway._method` for how paths match resources and
their ``{name}`` parameters), payload limit (10 MB -> 413 ``REQUEST_TOO_LARGE``), content type
against the integration's request templates and passthrough behaviour (-> 415
``UNSUPPORTED_MEDIA_TYPE``), body against the method's request model when the request validator
validates bodies (JSON Schema draft-04 -> 400 ``BAD_REQUEST_BODY``), then the integration: the
method's real request template rendered with :func:`local.vtl.render` (a request without a
Content-Type, such as a body-less GET, gets the ``application/json`` one), ``StartSyncExecution``
of the state machine whose ARN the rendered template names, the integration response selected by
status regex, its real response template rendered, and the ``$context.responseOverride`` applied
(a template that fails to render, or no integration response for the status -> 500
``API_CONFIGURATION_ERROR``; an integration over 29 s -> 504 ``INTEGRATION_TIMEOUT``).

Each step refuses a request by raising :class:`GatewayRejection`; :meth:`Gateway._handle` turns it
into the template's gateway response for that type. Authorization is not checked locally.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import jsonschema

from local import vtl
from local.step_functions import SfnApiError
from local.template import (
    ACCOUNT_ID,
    REGION,
    ApiSpec,
    GatewayResponseSpec,
    IntegrationResponse,
    MethodSpec,
)
from tasks.contract.limits import API_GATEWAY_PAYLOAD_LIMIT_BYTES

MAX_PAYLOAD_BYTES = API_GATEWAY_PAYLOAD_LIMIT_BYTES
INTEGRATION_TIMEOUT_SECONDS = 29.0
LOCAL_API_ID = "local"

# API Gateway's default status and message per gateway response type.
_DEFAULTS: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "BAD_REQUEST_PARAMETERS": (400, "Bad request parameters"),
    "INTEGRATION_FAILURE": (504, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
}


class GatewayRejection(Exception):
    """A step of the request path refuses the request: API Gateway answers with the gateway
    response of ``response_type`` (a key of :data:`_DEFAULTS`)."""

    def __init__(self, response_type: str, *, validation_error: str | None = None) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.validation_error = validation_error  # $context.error.validationErrorString


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Request:
    method: str
    target: str  # path and query string as received
    headers: dict[str, str]  # as received (case preserved)
    body: bytes
    source_ip: str = "127.0.0.1"
    too_large: bool = False  # the server did not read a body over MAX_PAYLOAD_BYTES
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


class Executor(Protocol):
    """``states:StartSyncExecution`` (:class:`local.step_functions.SyncExecutor`)."""

    def start_sync_execution(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class _Parameters:
    """The method request's parameters, as ``$input.params()`` shows them to templates."""

    path: dict[str, str]
    querystring: dict[str, str]
    header: dict[str, str]


class Gateway:
    """One REST API of the template; :meth:`handle` answers one request."""

    def __init__(
        self,
        api: ApiSpec,
        executor: Executor,
        *,
        on_response: Callable[[Request, Response, float], None] | None = None,
    ) -> None:
        self.api = api
        self.executor = executor
        self._on_response = on_response
        self._stages = set(api.stage_names)
        self._validators: dict[int, jsonschema.protocols.Validator] = {}
        # The resources' path templates, most specific first: the first that matches is the one
        # API Gateway picks.
        self._resources = sorted({m.path for m in api.methods}, key=_specificity)

    # -- routing --------------------------------------------------------------------------
    def _route(self, path: str) -> tuple[str, str]:
        """(stage, resource path): both ``/upload`` and ``/<stage>/upload`` are served."""
        parts = path.split("/", 2)
        if len(parts) > 2 and parts[1] in self._stages:
            return parts[1], "/" + parts[2]
        stage = self.api.stage_names[0] if self.api.stage_names else "local"
        return stage, path

    def _method(
        self, resource_path: str, http_method: str
    ) -> tuple[MethodSpec | None, dict[str, str]]:
        """The method for the path and its path parameters (None: no such resource or method).

        The path picks the resource first (segment by segment, a literal segment before a
        ``{name}``), then the resource's method: a method the most specific resource lacks is
        missing even when a less specific resource has it, as in API Gateway."""
        segments = _segments(resource_path)
        for template in self._resources:
            parameters = _match(template, segments)
            if parameters is not None:
                candidates = [m for m in self.api.methods if m.path == template]
                exact = [m for m in candidates if m.http_method == http_method]
                matches = exact or [m for m in candidates if m.http_method == "ANY"]
                return (matches[0] if matches else None), parameters
        return None, {}

    # -- request handling -----------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        response = self._handle(request)
        response.headers.setdefault("x-amzn-RequestId", request.request_id)
        if self._on_response is not None:
            self._on_response(request, response, time.monotonic() - started)
        return response

    def _handle(self, request: Request) -> Response:
        split = urlsplit(request.target)
        stage, resource_path = self._route(split.path)
        method, path_parameters = self._method(resource_path, request.method.upper())
        parameters = _Parameters(
            path=path_parameters,
            querystring=dict(parse_qsl(split.query, keep_blank_values=True)),
            header=dict(request.headers),
        )
        context = self._context(request, stage, resource_path, split.path, method)
        try:
            return self._process(request, method, parameters, context)
        except GatewayRejection as rejection:  # the one place a refusal becomes a response
            if rejection.validation_error is not None:
                context["error"]["validationErrorString"] = rejection.validation_error
            return self.gateway_response(rejection.response_type, context)

    def _process(
        self,
        request: Request,
        method: MethodSpec | None,
        parameters: _Parameters,
        context: dict[str, Any],
    ) -> Response:
        """The request path, one step per check in API Gateway's order; a step that refuses the
        request raises :class:`GatewayRejection`."""
        method = _routed(method)
        _check_size(request)
        media_type, template = _request_template(method, request)
        text = self._body_text(method, media_type, request.body)
        self._check_body(method, media_type, text)
        integration_request = _integration_request(template, text, parameters, context)
        status, integration_body = self._timed_integration(method, integration_request, context)
        return self._integration_response(method, status, integration_body, parameters, context)

    @staticmethod
    def _body_text(method: MethodSpec, media_type: str, body: bytes) -> str:
        """The body as text. A JSON body must be UTF-8 (RFC 8259): one that is not fails the
        method's model, as its JSON parser fails on it; without a model the bytes pass as
        Latin-1, one character per byte."""
        try:
            return body.decode()
        except UnicodeDecodeError:
            if method.validate_body and media_type in method.request_models:
                raise GatewayRejection(
                    "BAD_REQUEST_BODY", validation_error="[Invalid UTF-8 in the request body]"
                ) from None
            return body.decode("latin-1")

    def _check_body(self, method: MethodSpec, media_type: str, text: str) -> None:
        """The body against the method's model, when the request validator validates bodies."""
        model = method.request_models.get(media_type)
        if method.validate_body and model is not None:
            problems = self._validate(model, text)
            if problems is not None:
                raise GatewayRejection("BAD_REQUEST_BODY", validation_error=problems)

    def _timed_integration(
        self, method: MethodSpec, integration_request: str, context: dict[str, Any]
    ) -> tuple[int, str]:
        """The integration's status and body; its latency goes into ``$context``."""
        started = time.monotonic()
        status, body = self._integrate(method, integration_request)
        latency = time.monotonic() - started
        context["integrationLatency"] = int(latency * 1000)
        context["integration"] = {"status": status, "latency": context["integrationLatency"]}
        if latency > INTEGRATION_TIMEOUT_SECONDS:
            raise GatewayRejection("INTEGRATION_TIMEOUT")
        return status, body

    def _integrate(self, method: MethodSpec, integration_request: str) -> tuple[int, str]:
        if method.integration_type.upper() == "AWS" and method.integration_uri.endswith(
            ":states:action/StartSyncExecution"
        ):
            try:
                request = json.loads(integration_request)
                if not isinstance(request, dict):
                    raise SfnApiError(400, "SerializationException", "Start of structure expected")
                output = self.executor.start_sync_execution(request)
            except ValueError:
                error = SfnApiError(400, "SerializationException", "Malformed request body")
                return error.status, json.dumps(error.body())
            except SfnApiError as error:
                return error.status, json.dumps(error.body())
            return 200, json.dumps(output)
        if method.integration_type.upper() == "MOCK":
            return 200, integration_request
        unsupported = SfnApiError(500, "UnsupportedIntegration", method.integration_uri)
        return unsupported.status, json.dumps(unsupported.body())

    def _integration_response(
        self,
        method: MethodSpec,
        status: int,
        body: str,
        parameters: _Parameters,
        context: dict[str, Any],
    ) -> Response:
        chosen = _selected_response(method, status)
        response_status = int(chosen.status_code)
        response_headers = {"Content-Type": "application/json"}
        response_headers.update(_static_headers(chosen.parameters, "method.response.header."))
        template = chosen.templates.get("application/json")
        if template is None:
            return Response(response_status, response_headers, body.encode())
        rendered = _render(template, body, parameters, context)
        if rendered.status_override is not None:
            response_status = rendered.status_override
        response_headers.update(rendered.header_overrides)
        return Response(response_status, response_headers, rendered.text.encode())

    # -- validation -----------------------------------------------------------------------
    def _validate(self, schema: dict[str, Any], text: str) -> str | None:
        """None when valid, else API Gateway's ``validationErrorString``-style text."""
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            # Nested deeper than Python's recursion limit ('[' * 100000): API Gateway's parser
            # rejects such a body against the model too (400 BAD_REQUEST_BODY), never a 500.
            return "[Invalid request body]"
        validator = self._validators.get(id(schema))
        if validator is None:
            validator = jsonschema.Draft4Validator(schema)
            self._validators[id(schema)] = validator
        try:
            errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        except RecursionError:  # a schema that descends into a document nested ~1000 deep
            return "[Invalid request body]"
        if not errors:
            return None
        messages = list(dict.fromkeys(_describe(e) for e in errors))  # one per failed keyword
        return "[" + ", ".join(messages) + "]"

    # -- gateway responses ----------------------------------------------------------------
    def gateway_response(self, response_type: str, context: dict[str, Any]) -> Response:
        default_status, message = _DEFAULTS.get(response_type, (500, "Internal server error"))
        spec: GatewayResponseSpec | None = self.api.gateway_responses.get(response_type)
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        fallback = self.api.gateway_responses.get(family)
        status = default_status
        # A type's own status, else its family's (API Gateway: a DEFAULT_4XX status code applies
        # to every 4xx type without one of its own).
        for source in (fallback, spec):
            if source is not None and source.status_code:
                status = int(source.status_code)
        error = context.setdefault("error", {})
        error.update(
            {
                "message": message,
                "messageString": json.dumps(message),
                "responseType": response_type,
            }
        )
        error.setdefault("validationErrorString", "")
        headers = {"Content-Type": "application/json"}
        template: str | None = None
        for source in (fallback, spec):  # the specific response overrides the family default
            if source is not None:
                headers.update(_static_headers(source.parameters, "gatewayresponse.header."))
                template = source.templates.get("application/json", template)
        if template is None:
            body = json.dumps({"message": message})
        else:
            body = substitute(template, context)
        return Response(status, headers, body.encode())

    # -- $context -------------------------------------------------------------------------
    def _context(
        self,
        request: Request,
        stage: str,
        resource_path: str,
        path: str,
        method: MethodSpec | None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "requestId": request.request_id,
            "extendedRequestId": request.request_id,
            "awsEndpointRequestId": request.request_id,
            "accountId": ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": request.header("Host") or "127.0.0.1",
            "domainPrefix": "127",
            "httpMethod": request.method.upper(),
            "path": path if path.startswith(f"/{stage}/") else f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "resourceId": "local",
            "resourcePath": method.path if method else resource_path,
            "stage": stage,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header("User-Agent") or "",
                "accountId": "",
                "caller": "",
                "user": "",
                "userArn": "",
                "apiKey": "",
                "apiKeyId": "",
            },
            "error": {},
            "region": REGION,
        }


# -- routing ------------------------------------------------------------------------------
def _segments(path: str) -> list[str]:
    """The path's segments; a trailing slash is ignored (``/`` is one empty segment)."""
    return (path.rstrip("/") or "/").split("/")[1:]


def _is_parameter(segment: str) -> bool:
    return len(segment) > 2 and segment[0] == "{" and segment[-1] == "}"


def _specificity(template: str) -> list[bool]:
    """Sort key of a resource's path template: at the first segment where two templates differ,
    a literal (False) sorts before a ``{name}`` (True)."""
    return [_is_parameter(segment) for segment in _segments(template)]


def _match(template: str, segments: list[str]) -> dict[str, str] | None:
    """The path parameters when the path's segments match the template, else None. A ``{name}``
    takes one non-empty segment, percent-decoded (``%2F`` stays inside the value as ``/``);
    literal segments compare with the segment as received."""
    expected = _segments(template)
    if len(expected) != len(segments):
        return None
    parameters = {}
    for pattern, segment in zip(expected, segments, strict=True):
        if _is_parameter(pattern):
            if not segment:
                return None
            parameters[pattern[1:-1]] = unquote(segment)
        elif pattern != segment:
            return None
    return parameters


# -- steps of the request path ------------------------------------------------------------
def _routed(method: MethodSpec | None) -> MethodSpec:
    if method is None:  # API Gateway answers an unknown path or method as if unauthenticated
        raise GatewayRejection("MISSING_AUTHENTICATION_TOKEN")
    return method


def _check_size(request: Request) -> None:
    if request.too_large or len(request.body) > MAX_PAYLOAD_BYTES:
        raise GatewayRejection("REQUEST_TOO_LARGE")


def _request_template(method: MethodSpec, request: Request) -> tuple[str, str | None]:
    """The request's media type and the integration's request template for it (None: the body
    passes through, when the passthrough behaviour allows it)."""
    content_type = request.header("Content-Type")
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    template = method.request_templates.get(media_type)
    if template is None:
        behaviour = method.passthrough_behavior.upper()
        if behaviour == "NEVER" or (behaviour == "WHEN_NO_TEMPLATES" and method.request_templates):
            raise GatewayRejection("UNSUPPORTED_MEDIA_TYPE")
    return media_type, template


def _render(
    template: str, body: str, parameters: _Parameters, context: dict[str, Any]
) -> vtl.Rendered:
    """A request or response mapping template; one that fails is the API's configuration error."""
    try:
        return vtl.render(
            template,
            body=body,
            headers=parameters.header,
            query=parameters.querystring,
            path_params=parameters.path,
            context=context,
            stage_variables={},
        )
    except vtl.TemplateRenderError:
        raise GatewayRejection("API_CONFIGURATION_ERROR") from None


def _integration_request(
    template: str | None, text: str, parameters: _Parameters, context: dict[str, Any]
) -> str:
    """The request template rendered, or the body itself when it passes through."""
    if template is None:
        return text
    return _render(template, text, parameters, context).text


def _selected_response(method: MethodSpec, status: int) -> IntegrationResponse:
    """The first integration response whose selection pattern matches the status, else the
    first without a pattern (the default)."""
    default = None
    for candidate in method.integration_responses:
        pattern = candidate.selection_pattern
        if not pattern:
            default = default or candidate
        elif re.fullmatch(pattern, str(status), flags=re.DOTALL):
            return candidate
    if default is None:
        raise GatewayRejection("API_CONFIGURATION_ERROR")
    return default


_VARIABLE = re.compile(r"\$(?:\{)?(context|stageVariables)((?:\.[A-Za-z0-9_-]+)+)\}?")


def substitute(template: str, context: Mapping[str, Any]) -> str:
    """Gateway response templates are not VTL: only ``$context.*`` variables are substituted."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) != "context":
            return ""
        current: Any = context
        for part in match.group(2).strip(".").split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        return "" if current is None else str(current)

    return _VARIABLE.sub(value, template)


def _static_headers(parameters: Mapping[str, str], prefix: str) -> dict[str, str]:
    """Static ``'value'`` mappings of response header parameters."""
    headers = {}
    for key, value in parameters.items():
        if key.startswith(prefix) and len(value) >= 2 and value[0] == value[-1] == "'":
            headers[key[len(prefix) :]] = value[1:-1]
    return headers


def _describe(error: jsonschema.ValidationError) -> str:
    """A validation error worded the way API Gateway's (json-schema-validator) words it."""
    validator = error.validator
    value = error.validator_value
    instance = error.instance
    if validator == "required":
        missing = [m for m in value if isinstance(instance, dict) and m not in instance]
        return f"object has missing required properties ({json.dumps(missing)})"
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        return "object instance has properties which are not allowed by the schema: " + json.dumps(
            extra
        )
    if validator == "type":
        allowed_types = value if isinstance(value, list) else [value]
        return (
            f"instance type ({_json_type(instance)}) does not match any allowed primitive type "
            f"(allowed: {json.dumps(allowed_types)})"
        )
    if validator == "pattern":
        return f'ECMA 262 regex "{value}" does not match input string {json.dumps(instance)}'
    if validator in ("minLength", "maxLength") and isinstance(instance, str):
        word = "short" if validator == "minLength" else "long"
        bound = "minimum" if validator == "minLength" else "maximum"
        return (
            f"string {json.dumps(instance)} is too {word} "
            f"(length: {len(instance)}, required {bound}: {value})"
        )
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = "lower" if "inimum" in validator else "greater"
        return f"numeric instance is {relation} than the required {validator}"
    return str(error.message)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
