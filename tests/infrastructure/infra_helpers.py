"""Reading a synthesized template: resources by type, intrinsic functions to text, policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id_with_prefix(template: dict[str, Any], resource_type: str, prefix: str) -> str:
    matches = [
        logical_id
        for logical_id in resources_of_type(template, resource_type)
        if logical_id.startswith(prefix)
    ]
    assert len(matches) == 1, f"{prefix}*: {matches}"
    return str(matches[0])


def render(value: Any) -> str:
    """An intrinsic-function value as text, tokens as ``${Ref}`` / ``${Logical.Attr}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Ref":
            return "${" + str(argument) + "}"
        if function == "Fn::GetAtt":
            return "${" + ".".join(argument) + "}"
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(render(part) for part in parts)
    raise AssertionError(f"cannot render {value!r}")


# The two Express workflows, by the logical id prefix of their state machines: the upload
# workflow (infra/state_machine.py) and the upload sessions' (infra/sessions.py).
UPLOAD_WORKFLOW = "WorkflowStateMachine"
SESSIONS_WORKFLOW = "SessionsStateMachine"
WORKFLOWS = (UPLOAD_WORKFLOW, SESSIONS_WORKFLOW)


def state_machine_id(template: dict[str, Any], workflow: str = UPLOAD_WORKFLOW) -> str:
    """The logical id of one of the two state machines (``UPLOAD_WORKFLOW`` by default)."""
    assert len(resources_of_type(template, "AWS::StepFunctions::StateMachine")) == len(WORKFLOWS)
    return logical_id_with_prefix(template, "AWS::StepFunctions::StateMachine", workflow)


def state_machine_definition(
    template: dict[str, Any], workflow: str = UPLOAD_WORKFLOW
) -> dict[str, Any]:
    machine = template["Resources"][state_machine_id(template, workflow)]
    definition: dict[str, Any] = json.loads(render(machine["Properties"]["DefinitionString"]))
    return definition


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to the role, plus the role's own."""
    statements: list[dict[str, Any]] = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    role = template["Resources"][role_logical_id]["Properties"]
    for policy in role.get("Policies", []):
        statements.extend(policy["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def permissions(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource as text, condition as JSON) for every allowed pair."""
    granted: set[tuple[str, str, str]] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        condition = json.dumps(statement.get("Condition"), sort_keys=True)
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                granted.add((action, render(resource), condition))
    return granted


def asset_dir(stack: Any, code: dict[str, Any]) -> Path:
    """Where the synth staged an asset (the manifest's path, relative to the outdir or not)."""
    manifest = json.loads((stack.outdir / "UploadService.assets.json").read_text())
    source = manifest["files"][code["S3Key"].removesuffix(".zip")]["source"]
    return Path(stack.outdir / source["path"])


def layer_properties(stack: Any) -> dict[str, Any]:
    [layer] = resources_of_type(stack.template_json, "AWS::Lambda::LayerVersion").values()
    return dict(layer["Properties"])


def resource_paths(template: dict[str, Any]) -> dict[str, str]:
    """Every API resource's path ("/upload", "/uploads/{uploadId}"...) by its logical id."""
    resources = resources_of_type(template, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        properties = resources[logical_id]["Properties"]
        parent = properties["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def api_methods(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every API method's properties by (HTTP method, resource path)."""
    paths = resource_paths(template)
    methods: dict[tuple[str, str], dict[str, Any]] = {}
    for method in resources_of_type(template, "AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        route = (properties["HttpMethod"], paths[properties["ResourceId"]["Ref"]])
        assert route not in methods, route
        methods[route] = properties
    return methods


def offline_session_context(env: dict[str, str]) -> Any:
    """The Session task's context with the function's environment and no AWS client: for
    requests its rules refuse before any call."""
    from tasks.session import Context

    unused: Any = None
    return Context(
        request_id="req-1",
        caller="caller",
        dynamodb=unused,
        s3=unused,
        table="sessions",
        bucket="bucket",
        env=env,
        now=0,
    )
