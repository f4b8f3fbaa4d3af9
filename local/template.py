"""The synthesized template, read as the source of truth for local mode.

Intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``,
``Fn::Split``, ``Fn::If``) resolve to local physical names and ARNs. Physical names are derived
from the stack name and logical id the way CloudFormation derives them (minus the random suffix),
unless the template names the resource; KMS key ids come from the emulator, which creates the keys
first and registers their ids here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"
# The last part of the stack id (arn:...:stack/<stack name>/<UUID> in CloudFormation), fixed: what
# the template builds from it (the workflows' log group names take
# ``Fn::Select [2, Fn::Split ["/", AWS::StackId]]``) is the same from one local run to the next.
LOCAL_STACK_UUID = "00000000-0000-4000-8000-000000000000"

# CloudFormation's name property per resource type (when the template sets one).
_NAME_PROPERTIES: dict[str, str] = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::DynamoDB::GlobalTable": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::IAM::Role": "RoleName",
    "AWS::ApiGateway::Model": "Name",
    "AWS::KMS::Alias": "AliasName",
}


class TemplateError(Exception):
    """The template uses something local mode cannot resolve."""


class _NoValue:
    pass


NO_VALUE = _NoValue()


class Resolver:
    """Resolves intrinsic functions against one stack template."""

    def __init__(self, template: Mapping[str, Any], stack_name: str) -> None:
        self.template = template
        self.stack_name = stack_name
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self._physical_ids: dict[str, str] = {}
        self._attributes: dict[tuple[str, str], str] = {}
        self._conditions: dict[str, bool] = {}

    # -- physical names -------------------------------------------------------------------
    def register(self, logical_id: str, physical_id: str, **attributes: str) -> None:
        """Record a physical id (and attributes) the emulator obtained when creating a resource."""
        self._physical_ids[logical_id] = physical_id
        for name, value in attributes.items():
            self._attributes[(logical_id, name)] = value

    def resources_of(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == resource_type
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return props

    def physical_id(self, logical_id: str) -> str:
        if logical_id in self._physical_ids:
            return self._physical_ids[logical_id]
        if logical_id not in self.resources:
            raise TemplateError(f"Ref to unknown resource {logical_id}")
        resource_type = self.resources[logical_id]["Type"]
        name_property = _NAME_PROPERTIES.get(resource_type)
        explicit = self.properties(logical_id).get(name_property) if name_property else None
        if explicit is not None:
            name = self.resolve_str(explicit)
        else:
            name = self._generated_name(logical_id, resource_type)
        if resource_type == "AWS::StepFunctions::StateMachine":
            physical = arn("states", f"stateMachine:{name}")
        else:
            physical = name
        self._physical_ids[logical_id] = physical
        return physical

    def _generated_name(self, logical_id: str, resource_type: str) -> str:
        if resource_type == "AWS::KMS::Key":
            raise TemplateError(f"KMS key {logical_id} has no id yet: create it first")
        name = f"{self.stack_name}-{logical_id}"
        if resource_type == "AWS::S3::Bucket":
            return re.sub(r"[^a-z0-9.-]", "-", name.lower())[:63]
        if resource_type in ("AWS::Lambda::Function", "AWS::IAM::Role"):
            return name[:64]
        if resource_type == "AWS::StepFunctions::StateMachine":
            return logical_id[:80]
        return name

    def attribute(self, logical_id: str, name: str) -> str:
        if (logical_id, name) in self._attributes:
            return self._attributes[(logical_id, name)]
        resource_type = self.resources.get(logical_id, {}).get("Type")
        physical = self.physical_id(logical_id)
        if name == "Arn":
            arns: dict[str, Callable[[], str]] = {
                "AWS::S3::Bucket": lambda: f"arn:{PARTITION}:s3:::{physical}",
                "AWS::DynamoDB::Table": lambda: arn("dynamodb", f"table/{physical}"),
                "AWS::DynamoDB::GlobalTable": lambda: arn("dynamodb", f"table/{physical}"),
                "AWS::Lambda::Function": lambda: arn("lambda", f"function:{physical}"),
                "AWS::Logs::LogGroup": lambda: arn("logs", f"log-group:{physical}:*"),
                "AWS::StepFunctions::StateMachine": lambda: physical,
                "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{physical}",
                "AWS::SQS::Queue": lambda: arn("sqs", physical),
                "AWS::SNS::Topic": lambda: physical,
            }
            if resource_type in arns:
                return arns[resource_type]()
        if resource_type == "AWS::StepFunctions::StateMachine" and name == "Name":
            return physical.rsplit(":", 1)[-1]
        if resource_type == "AWS::S3::Bucket" and name in ("DomainName", "RegionalDomainName"):
            return f"{physical}.s3.amazonaws.com"
        if resource_type == "AWS::ApiGateway::RestApi" and name == "RootResourceId":
            return f"{physical}-root"
        return f"{physical}.{name}"

    # -- conditions -----------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = self.template.get("Conditions", {}).get(name)
            if definition is None:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = self._evaluate_condition(definition)
        return self._conditions[name]

    def _evaluate_condition(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            (function, args), *_ = expression.items()
            if function == "Fn::Equals":
                return bool(self.resolve(args[0]) == self.resolve(args[1]))
            if function == "Fn::Not":
                return not self._evaluate_condition(args[0])
            if function == "Fn::And":
                return all(self._evaluate_condition(a) for a in args)
            if function == "Fn::Or":
                return any(self._evaluate_condition(a) for a in args)
            if function == "Condition":
                return self.condition(args)
        raise TemplateError(f"unsupported condition {expression!r}")

    # -- intrinsic functions --------------------------------------------------------------
    def ref(self, name: str) -> Any:
        pseudo: dict[str, Any] = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": stack_id(self.stack_name),
            "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            default = parameters[name].get("Default")
            if default is None:
                raise TemplateError(f"parameter {name} has no default")
            return default
        return self.physical_id(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), *_ = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attribute(logical_id, self.resolve(attribute))
            if key == "Fn::Join":
                delimiter, parts = arg
                return str(delimiter).join(str(p) for p in self.resolve(parts))
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                delimiter, source = arg
                return str(self.resolve(source)).split(delimiter)
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if key.startswith("Fn::"):
                raise TemplateError(f"unsupported intrinsic {key}")
        return {
            k: r for k, r in ((k, self.resolve(v)) for k, v in value.items()) if r is not NO_VALUE
        }

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.attribute(logical_id, attribute)
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]+)\}", replace, str(text))

    def resolve_str(self, value: Any) -> str:
        resolved = self.resolve(value)
        if not isinstance(resolved, str):
            raise TemplateError(f"expected a string, got {resolved!r}")
        return resolved


def arn(service: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT_ID}:{resource}"


def stack_id(stack_name: str) -> str:
    """``AWS::StackId`` in local mode: CloudFormation's shape with a fixed UUID."""
    return arn("cloudformation", f"stack/{stack_name}/{LOCAL_STACK_UUID}")


# -- what the emulator needs, read from the template --------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str  # e.g. "tasks.validate.handler"
    environment: dict[str, str]
    timeout_seconds: int
    log_group: str

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition: str
    role_arn: str
    machine_type: str
    logging: dict[str, Any] | None


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: str
    selection_pattern: str | None
    templates: dict[str, str]
    parameters: dict[str, str]


@dataclass(frozen=True)
class MethodSpec:
    path: str  # the resource's path template, e.g. "/upload" or "/uploads/{uploadId}"
    http_method: str
    authorization_type: str
    integration_type: str
    integration_uri: str
    passthrough_behavior: str
    request_templates: dict[str, str]
    integration_responses: list[IntegrationResponse]
    request_models: dict[str, dict[str, Any]]  # content type -> JSON schema
    validate_body: bool
    api_key_required: bool


@dataclass(frozen=True)
class GatewayResponseSpec:
    response_type: str
    status_code: str | None
    templates: dict[str, str]
    parameters: dict[str, str]


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_names: list[str]
    methods: list[MethodSpec]
    gateway_responses: dict[str, GatewayResponseSpec]
    binary_media_types: list[str] = field(default_factory=list)


def functions(resolver: Resolver) -> list[FunctionSpec]:
    specs = []
    for logical_id, resource in resolver.resources_of("AWS::Lambda::Function").items():
        props = resource.get("Properties", {})
        handler = props.get("Handler")
        if not handler:
            continue  # inline or container functions (e.g. CDK custom resources)
        env = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        name = resolver.physical_id(logical_id)
        log_group_config = props.get("LoggingConfig", {}).get("LogGroup")
        log_group = (
            resolver.resolve_str(log_group_config) if log_group_config else f"/aws/lambda/{name}"
        )
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=name,
                arn=resolver.attribute(logical_id, "Arn"),
                handler=str(handler),
                environment={str(k): str(v) for k, v in env.items()},
                timeout_seconds=int(props.get("Timeout", 3)),
                log_group=log_group,
            )
        )
    return specs


def state_machines(resolver: Resolver) -> list[StateMachineSpec]:
    specs = []
    for logical_id, resource in resolver.resources_of("AWS::StepFunctions::StateMachine").items():
        props = resource.get("Properties", {})
        if "DefinitionString" in props:
            definition = resolver.resolve_str(props["DefinitionString"])
        elif "Definition" in props:
            definition = json.dumps(resolver.resolve(props["Definition"]))
        else:
            raise TemplateError(f"state machine {logical_id} has no inline definition")
        substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        machine_arn = resolver.physical_id(logical_id)
        logging = (
            resolver.resolve(props["LoggingConfiguration"])
            if "LoggingConfiguration" in props
            else None
        )
        specs.append(
            StateMachineSpec(
                logical_id=logical_id,
                name=machine_arn.rsplit(":", 1)[-1],
                arn=machine_arn,
                definition=definition,
                role_arn=resolver.resolve_str(props.get("RoleArn", arn("iam", "role/local"))),
                machine_type=str(props.get("StateMachineType", "STANDARD")),
                logging=logging,
            )
        )
    return specs


def _resource_paths(resolver: Resolver, api_id: str) -> dict[str, str]:
    """Logical id of each ApiGateway::Resource (and the API's root) -> its full path."""
    resources = {
        lid: r.get("Properties", {})
        for lid, r in resolver.resources_of("AWS::ApiGateway::Resource").items()
        if r.get("Properties", {}).get("RestApiId") == {"Ref": api_id}
    }

    def path_of(lid: str, seen: frozenset[str] = frozenset()) -> str:
        if lid in seen:
            raise TemplateError(f"resource cycle at {lid}")
        props = resources[lid]
        parent = props.get("ParentId")
        prefix = ""
        if isinstance(parent, dict) and "Ref" in parent and parent["Ref"] in resources:
            prefix = path_of(parent["Ref"], seen | {lid})
        return f"{prefix}/{props['PathPart']}"

    return {lid: path_of(lid) for lid in resources}


def apis(resolver: Resolver) -> list[ApiSpec]:
    validators = resolver.resources_of("AWS::ApiGateway::RequestValidator")
    return [
        _api_spec(resolver, api_id, validators)
        for api_id in resolver.resources_of("AWS::ApiGateway::RestApi")
    ]


def _api_spec(resolver: Resolver, api_id: str, validators: dict[str, dict[str, Any]]) -> ApiSpec:
    api_ref = {"Ref": api_id}
    models = _models(resolver, api_ref)
    paths = _resource_paths(resolver, api_id)
    methods = [
        _method_spec(resolver, props, paths, models, validators)
        for props in _properties_of_api(resolver, "AWS::ApiGateway::Method", api_ref)
    ]
    gateway_responses = _gateway_responses(resolver, api_ref)
    stage_names = [
        str(props.get("StageName"))
        for props in _properties_of_api(resolver, "AWS::ApiGateway::Stage", api_ref)
    ]
    api_props = resolver.properties(api_id)
    return ApiSpec(
        logical_id=api_id,
        stage_names=stage_names,
        methods=methods,
        gateway_responses=gateway_responses,
        binary_media_types=list(api_props.get("BinaryMediaTypes", [])),
    )


def _properties_of_api(
    resolver: Resolver, resource_type: str, api_ref: dict[str, str]
) -> list[dict[str, Any]]:
    """The properties of each resource of the type that belongs to the API."""
    return [
        r.get("Properties", {})
        for r in resolver.resources_of(resource_type).values()
        if r.get("Properties", {}).get("RestApiId") == api_ref
    ]


def _models(resolver: Resolver, api_ref: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Name -> properties of each of the API's models."""
    return {
        resolver.physical_id(lid): r.get("Properties", {})
        for lid, r in resolver.resources_of("AWS::ApiGateway::Model").items()
        if r.get("Properties", {}).get("RestApiId") == api_ref
    }


def _method_spec(
    resolver: Resolver,
    props: dict[str, Any],
    paths: dict[str, str],
    models: dict[str, dict[str, Any]],
    validators: dict[str, dict[str, Any]],
) -> MethodSpec:
    resource_ref = props.get("ResourceId")
    path = "/"
    if isinstance(resource_ref, dict) and resource_ref.get("Ref") in paths:
        path = paths[resource_ref["Ref"]]
    integration = props.get("Integration", {})
    request_models = _request_models(resolver, props, models)
    validate_body = _validates_body(props, validators)
    return MethodSpec(
        path=path,
        http_method=str(props.get("HttpMethod", "ANY")).upper(),
        authorization_type=str(props.get("AuthorizationType", "NONE")),
        integration_type=str(integration.get("Type", "MOCK")),
        integration_uri=str(resolver.resolve(integration.get("Uri", ""))),
        passthrough_behavior=str(integration.get("PassthroughBehavior", "WHEN_NO_MATCH")),
        request_templates=_templates(resolver, integration.get("RequestTemplates", {})),
        integration_responses=_integration_responses(resolver, integration),
        request_models=request_models,
        validate_body=validate_body,
        api_key_required=bool(props.get("ApiKeyRequired", False)),
    )


def _request_models(
    resolver: Resolver, props: dict[str, Any], models: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Content type -> JSON schema of the method's request models."""
    request_models: dict[str, dict[str, Any]] = {}
    for content_type, model_ref in props.get("RequestModels", {}).items():
        model = models.get(resolver.resolve_str(model_ref))
        if model is not None:
            schema = resolver.resolve(model.get("Schema", {}))
            request_models[content_type.lower()] = (
                json.loads(schema) if isinstance(schema, str) else schema
            )
    return request_models


def _validates_body(props: dict[str, Any], validators: dict[str, dict[str, Any]]) -> bool:
    """Whether the method's request validator validates request bodies."""
    validator_ref = props.get("RequestValidatorId")
    if isinstance(validator_ref, dict) and validator_ref.get("Ref") in validators:
        validator = validators[validator_ref["Ref"]].get("Properties", {})
        return bool(validator.get("ValidateRequestBody", False))
    return False


def _integration_responses(
    resolver: Resolver, integration: dict[str, Any]
) -> list[IntegrationResponse]:
    return [
        IntegrationResponse(
            status_code=str(r.get("StatusCode", "200")),
            selection_pattern=r.get("SelectionPattern"),
            templates=_templates(resolver, r.get("ResponseTemplates", {})),
            parameters=_parameters(resolver, r.get("ResponseParameters", {})),
        )
        for r in integration.get("IntegrationResponses", [])
    ]


def _gateway_responses(
    resolver: Resolver, api_ref: dict[str, str]
) -> dict[str, GatewayResponseSpec]:
    """Response type -> the API's gateway response for it."""
    responses = {}
    for props in _properties_of_api(resolver, "AWS::ApiGateway::GatewayResponse", api_ref):
        response_type = str(props["ResponseType"])
        status = props.get("StatusCode")
        responses[response_type] = GatewayResponseSpec(
            response_type=response_type,
            status_code=str(status) if status is not None else None,
            templates=_templates(resolver, props.get("ResponseTemplates", {})),
            parameters=_parameters(resolver, props.get("ResponseParameters", {})),
        )
    return responses


def _templates(resolver: Resolver, templates: Mapping[str, Any]) -> dict[str, str]:
    """Mapping templates by content type (lower case: content types match case-insensitively)."""
    return {k.lower(): resolver.resolve_str(v) for k, v in templates.items()}


def _parameters(resolver: Resolver, parameters: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(resolver.resolve(v)) for k, v in parameters.items()}
