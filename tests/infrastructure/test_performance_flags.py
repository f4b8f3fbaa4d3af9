"""Context flags snapStart and provisionedConcurrency: published versions behind an alias the
state machines invoke, SnapStart on the functions or provisioned concurrency on the alias, each
state machine's role still limited to its own tasks; the scheduled sweep gets neither; the
defaults add none of it."""

from __future__ import annotations

import pytest

from infra.functions import ALIAS_NAME, SNAP_START_UNSUPPORTED_REGIONS
from infra.settings import Settings, SettingsError
from tests.conftest import PROVISIONED_CONCURRENCY

from .infra_helpers import (
    SESSIONS_WORKFLOW,
    UPLOAD_WORKFLOW,
    WORKFLOWS,
    logical_id_with_prefix,
    permissions,
    render,
    resources_of_type,
    role_statements,
    state_machine_definition,
)

# Each workflow's tasks (its state machine invokes them) and their task states; the sweep runs
# on a schedule.
STATES_BY_WORKFLOW = {
    UPLOAD_WORKFLOW: {
        "Validate": "Validate",
        "Store": "Store",
        "Record": "Record",
        "Compensate": "Compensate",
        "Report": "ReportOrphan",
    },
    SESSIONS_WORKFLOW: {"Session": "Session"},
}
TITLES = tuple(title for states in STATES_BY_WORKFLOW.values() for title in states)


def function_id(template, title):
    return logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{title}Func")


def alias_id(template, title):
    return logical_id_with_prefix(template, "AWS::Lambda::Alias", f"Tasks{title}Alias")


def version_id(template, title):
    return logical_id_with_prefix(template, "AWS::Lambda::Version", f"Tasks{title}Func")


def invoke_permissions(template, workflow):
    role = logical_id_with_prefix(template, "AWS::IAM::Role", workflow + "Role")
    granted = permissions(role_statements(template, role))
    return {(a, r) for a, r, _ in granted if a.startswith("lambda:")}


def test_defaults_publish_no_version_alias_snap_start_or_provisioned_concurrency(default_stack):
    template = default_stack.template_json
    assert resources_of_type(template, "AWS::Lambda::Version") == {}
    assert resources_of_type(template, "AWS::Lambda::Alias") == {}
    for function in resources_of_type(template, "AWS::Lambda::Function").values():
        assert "SnapStart" not in function["Properties"]
    for workflow, state_of in STATES_BY_WORKFLOW.items():
        states = state_machine_definition(template, workflow)["States"]
        for title, state in state_of.items():
            arn = "${" + function_id(template, title) + ".Arn}"
            assert render(states[state]["Resource"]) == arn


@pytest.mark.parametrize("variant", ["snap_start_stack", "provisioned_stack"])
def test_each_task_gets_one_version_and_an_alias_on_it(request, variant):
    template = request.getfixturevalue(variant).template_json
    assert len(resources_of_type(template, "AWS::Lambda::Version")) == len(TITLES)
    assert len(resources_of_type(template, "AWS::Lambda::Alias")) == len(TITLES)
    for title in TITLES:
        version = template["Resources"][version_id(template, title)]["Properties"]
        assert version["FunctionName"] == {"Ref": function_id(template, title)}
        alias = template["Resources"][alias_id(template, title)]["Properties"]
        assert alias["Name"] == ALIAS_NAME
        assert alias["FunctionName"] == {"Ref": function_id(template, title)}
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id(template, title), "Version"]}


def test_snap_start_is_on_published_versions_without_provisioned_concurrency(snap_start_stack):
    template = snap_start_stack.template_json
    for title in TITLES:
        function = template["Resources"][function_id(template, title)]["Properties"]
        assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        alias = template["Resources"][alias_id(template, title)]["Properties"]
        assert "ProvisionedConcurrencyConfig" not in alias


def test_snap_start_refuses_each_region_without_it_before_anything_is_created(snap_start_stack):
    """A template rule: CloudFormation evaluates it before creating anything, so a deploy to a
    region without SnapStart stops at once and says which region and what to do. (Which regions:
    test_compliance.py holds the constant to cfn-lint's.)"""
    rules = snap_start_stack.template_json["Rules"]
    assert set(rules) == {"CheckBootstrapVersion", "SnapStartRegions"}
    assert rules["SnapStartRegions"] == {
        "Assertions": [
            {
                "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"}, region]}]},
                "AssertDescription": (
                    f"Lambda SnapStart (-c snapStart=true) is not available in {region}: deploy "
                    f"to {region} without -c snapStart=true, or deploy with it to a region that "
                    "supports SnapStart."
                ),
            }
            for region in SNAP_START_UNSUPPORTED_REGIONS
        ]
    }
    assert len(set(SNAP_START_UNSUPPORTED_REGIONS)) == len(SNAP_START_UNSUPPORTED_REGIONS)
    assert {"ap-east-2", "ap-southeast-6", "cn-north-1", "us-gov-west-1"} <= set(
        SNAP_START_UNSUPPORTED_REGIONS
    )


@pytest.mark.parametrize("variant", ["default_stack", "provisioned_stack"])
def test_without_snap_start_no_region_is_refused(request, variant):
    # CDK's own rule (the bootstrap version) only.
    assert set(request.getfixturevalue(variant).template_json["Rules"]) == {"CheckBootstrapVersion"}


def test_provisioned_concurrency_sits_on_the_alias_without_snap_start(provisioned_stack):
    template = provisioned_stack.template_json
    for title in TITLES:
        function = template["Resources"][function_id(template, title)]["Properties"]
        assert "SnapStart" not in function
        alias = template["Resources"][alias_id(template, title)]["Properties"]
        assert alias["ProvisionedConcurrencyConfig"] == {
            "ProvisionedConcurrentExecutions": PROVISIONED_CONCURRENCY
        }


@pytest.mark.parametrize("variant", ["snap_start_stack", "provisioned_stack"])
@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_each_state_machine_invokes_its_aliases_and_may_invoke_nothing_else(
    request, variant, workflow
):
    template = request.getfixturevalue(variant).template_json
    states = state_machine_definition(template, workflow)["States"]
    state_of = STATES_BY_WORKFLOW[workflow]
    aliases = {title: "${" + alias_id(template, title) + "}" for title in state_of}
    for title, state in state_of.items():
        assert render(states[state]["Resource"]) == aliases[title]
    # The alias ARN itself: no version wildcard, no unqualified function, no other workflow's.
    assert invoke_permissions(template, workflow) == {
        ("lambda:InvokeFunction", arn) for arn in aliases.values()
    }


@pytest.mark.parametrize("variant", ["snap_start_stack", "provisioned_stack"])
def test_the_sweep_gets_no_version_alias_or_snap_start(request, default_stack, variant):
    """A run every few minutes gains nothing from either; the schedule invokes the function."""
    template = request.getfixturevalue(variant).template_json
    sweep = function_id(template, "Sweep")
    for resource_type in ("AWS::Lambda::Version", "AWS::Lambda::Alias"):
        assert not any(
            r["Properties"]["FunctionName"] == {"Ref": sweep}
            for r in resources_of_type(template, resource_type).values()
        ), resource_type
    assert (
        template["Resources"][sweep]["Properties"]
        == default_stack.template_json["Resources"][
            function_id(default_stack.template_json, "Sweep")
        ]["Properties"]
    )
    [schedule] = resources_of_type(template, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [sweep, "Arn"]}


@pytest.mark.parametrize("variant", ["snap_start_stack", "provisioned_stack"])
def test_task_roles_are_unchanged_by_the_flags(request, default_stack, variant):
    flagged = request.getfixturevalue(variant).template_json
    base = default_stack.template_json
    for title in (*TITLES, "Sweep"):
        role = f"Tasks{title}Role"
        assert permissions(
            role_statements(flagged, logical_id_with_prefix(flagged, "AWS::IAM::Role", role))
        ) == permissions(
            role_statements(base, logical_id_with_prefix(base, "AWS::IAM::Role", role))
        )


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, (False, 0)),
        ({"snapStart": True}, (True, 0)),
        ({"snapStart": "false"}, (False, 0)),
        ({"provisionedConcurrency": 3}, (False, 3)),
        ({"provisionedConcurrency": "0"}, (False, 0)),
    ],
)
def test_flag_parsing(context, expected):
    settings = Settings.from_context(context.get)
    assert (settings.snap_start, settings.provisioned_concurrency) == expected


@pytest.mark.parametrize(
    "context",
    [
        {"snapStart": "yes"},
        {"provisionedConcurrency": "-1"},
        {"provisionedConcurrency": "two"},
        {"provisionedConcurrency": True},
        {"snapStart": "true", "provisionedConcurrency": "2"},
    ],
)
def test_invalid_flags_are_refused(context):
    with pytest.raises(SettingsError):
        Settings.from_context(context.get)
