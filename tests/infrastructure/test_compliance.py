"""cdk-nag (AwsSolutions + Serverless) and cfn-lint on every synthesized variant."""

from __future__ import annotations

import ast
import json
import re

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.helpers import REGIONS

from infra.functions import SNAP_START_UNSUPPORTED_REGIONS

from .infra_helpers import logical_id_with_prefix

VARIANTS = (
    "default",
    "api_key",
    "daily_quota",
    "destroy",
    "log_data",
    "cors",
    "alarm_email",
    "content_types",
    "snap_start",
    "provisioned",
    "sweep_deletes",
    "no_cloudwatch_role",
)
# cfn-lint over every region it knows (cfnlint.helpers.REGIONS, 46) takes about three times as
# long as over one (some 13 s a template against 4 s: every variant would add over 100 s), so two
# variants get it: snap_start and all_features (every other flag on), which between them hold
# every resource type and property of every variant (checked below); the others are linted in
# cfn-lint's default region, us-east-1.
ALL_REGION_VARIANTS = ("snap_start", "all_features")
# E2530's message: "'SnapStart' enabled functions are not supported in ['ap-east-2', ...]".
_SNAP_START_REGIONS_MESSAGE = re.compile(
    r"^'SnapStart' enabled functions are not supported in (\[[^\]]*\])$"
)
TASKS = ("Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session")
# The API's methods (construct paths under the API's root), each acknowledged for COG4.
METHODS = (
    "upload/POST",
    "uploads/POST",
    "uploads/{uploadId}/GET",
    "uploads/{uploadId}/DELETE",
    "uploads/{uploadId}/parts/POST",
)


@pytest.fixture(params=VARIANTS)
def variant(request):
    return request.getfixturevalue(f"{request.param}_stack")


def test_cdk_nag_reports_no_unacknowledged_findings(variant):
    report = variant.validation_report()
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert set(plugins) == {"AwsSolutions", "Serverless"}  # both packs really ran
    findings = [
        (p["pluginName"], v["ruleName"], v["severity"], c["constructPath"])
        for p in report["pluginReports"]
        for v in p["violations"]
        for c in v["violatingConstructs"]
    ]
    assert findings == []
    assert all(p["conclusion"] == "success" for p in plugins.values())
    assert variant.synth_error is None


def acknowledgement_entries(stack):
    """Every acknowledgement recorded, as (construct path, rule id, reason), repeats included."""
    metadata = json.loads((stack.outdir / "UploadService.metadata.json").read_text())
    return [
        (path, rule_id, reason)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule_id, reason in entry["data"].items()
    ]


def acknowledgements(stack):
    return {(path, rule_id): reason for path, rule_id, reason in acknowledgement_entries(stack)}


def test_each_finding_is_acknowledged_once_per_construct(default_stack):
    """A role granted several actions under uploads/ (a task's versions and a session's parts)
    records the uploads/* acknowledgement once."""
    recorded = [(path, rule_id) for path, rule_id, _ in acknowledgement_entries(default_stack)]
    assert len(recorded) == len(set(recorded))


def test_every_acknowledgement_names_its_pack_rule_and_reason(default_stack):
    found = acknowledgements(default_stack)
    assert found
    for (path, rule_id), reason in found.items():
        pack, finding = rule_id.split("::", 1)
        rule = finding.split("[", 1)[0]
        assert pack in ("AwsSolutions", "Serverless"), path
        assert rule.startswith(f"{pack}-"), path
        assert reason.startswith(f"{rule}: "), path
        assert len(reason) > len(rule) + 20, path


def test_acknowledgements_sit_on_the_resources_concerned(default_stack):
    rules_by_path: dict[str, set[str]] = {}
    for path, rule_id in acknowledgements(default_stack):
        rules_by_path.setdefault(path, set()).add(rule_id.split("::", 1)[1].split("[", 1)[0])
    assert rules_by_path == {
        "/UploadService/Storage/AccessLogBucket": {"AwsSolutions-S1"},
        **{
            f"/UploadService/Tasks/{task}/Function": {
                "AwsSolutions-L1",
                "Serverless-LambdaLatestVersion",
                "Serverless-LambdaDLQ",
            }
            # The sweep alone is invoked asynchronously (by its schedule).
            | ({"Serverless-LambdaAsyncFailureDestination"} if task == "Sweep" else set())
            for task in TASKS
        },
        **{f"/UploadService/Tasks/{task}/Role": {"AwsSolutions-IAM5"} for task in TASKS},
        "/UploadService/Workflow/StateMachine/Role": {"AwsSolutions-IAM5"},
        "/UploadService/Sessions/StateMachine/Role": {"AwsSolutions-IAM5"},
        # The scheduler's role: invoke (versions of) the sweep function.
        "/UploadService/Sweep/Role": {"AwsSolutions-IAM5"},
        "/UploadService/Edge/Api/CloudWatchRole": {"AwsSolutions-IAM4"},
        **{
            f"/UploadService/Edge/Api/Default/{method}": {"AwsSolutions-COG4"} for method in METHODS
        },
        "/UploadService/Edge/Api/DeploymentStage.prod": {"AwsSolutions-APIG3"},
    }


def test_with_api_keys_every_method_acknowledges_apig4_and_cog4(default_stack, api_key_stack):
    """auth=apiKey: each method requires a key (no IAM authorization, APIG4) and no Cognito user
    pool (COG4), the reason saying so; nothing else changes."""
    found = acknowledgements(api_key_stack)
    extra = set(found) - set(acknowledgements(default_stack))
    assert extra == {
        (f"/UploadService/Edge/Api/Default/{method}", "AwsSolutions::AwsSolutions-APIG4")
        for method in METHODS
    }
    for method in METHODS:
        path = f"/UploadService/Edge/Api/Default/{method}"
        assert "API key" in found[(path, "AwsSolutions::AwsSolutions-APIG4")], path
        assert "auth=apiKey" in found[(path, "AwsSolutions::AwsSolutions-COG4")], path


def test_wildcard_acknowledgements_name_exactly_the_wildcards_granted(default_stack):
    """Each IAM5 acknowledgement names the one wildcard resource it accepts."""
    template = default_stack.template_json
    functions = {
        task: logical_id_with_prefix(template, "AWS::Lambda::Function", f"Tasks{task}Func")
        for task in TASKS
    }
    bucket = logical_id_with_prefix(template, "AWS::S3::Bucket", "StorageUploadBucket")
    uploads = f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/uploads/*]"
    # Who finds (or deletes) a request's versions, or lists or aborts a session's parts, under
    # uploads/: every task but record (one acknowledgement per role).
    finders = {"Validate", "Store", "Compensate", "Report", "Sweep", "Session"}
    expected = {
        *(
            (f"/UploadService/Tasks/{task}/Role", "AwsSolutions-IAM5[Resource::*]")
            for task in TASKS
        ),
        *((f"/UploadService/Tasks/{task}/Role", uploads) for task in finders),
        ("/UploadService/Workflow/StateMachine/Role", "AwsSolutions-IAM5[Resource::*]"),
        *(
            (
                "/UploadService/Workflow/StateMachine/Role",
                f"AwsSolutions-IAM5[Resource::<{functions[task]}.Arn>:*]",
            )
            for task in TASKS
            if task not in ("Sweep", "Session")
        ),
        ("/UploadService/Sessions/StateMachine/Role", "AwsSolutions-IAM5[Resource::*]"),
        (
            "/UploadService/Sessions/StateMachine/Role",
            f"AwsSolutions-IAM5[Resource::<{functions['Session']}.Arn>:*]",
        ),
        (
            "/UploadService/Sweep/Role",
            f"AwsSolutions-IAM5[Resource::<{functions['Sweep']}.Arn>:*]",
        ),
    }
    found = {
        (path, rule_id.split("::", 1)[1])
        for path, rule_id in acknowledgements(default_stack)
        if "IAM5" in rule_id
    }
    assert found == expected


def test_alarm_topic_adds_only_the_email_subscription_acknowledgement(
    default_stack, alarm_email_stack
):
    extra = set(acknowledgements(alarm_email_stack)) - set(acknowledgements(default_stack))
    assert extra == {
        (
            "/UploadService/Monitoring/AlarmTopic/ops@example.com",
            "Serverless::Serverless-SNSRedrivePolicy",
        )
    }


@pytest.mark.parametrize("name", [v for v in VARIANTS if v not in ALL_REGION_VARIANTS])
def test_cfn_lint_finds_no_errors(request, name):
    matches = lint_file(request.getfixturevalue(f"{name}_stack").template_path)
    errors = [str(m) for m in matches if m.rule.severity == "error"]
    assert errors == []
    # The only warning: CDK's DependsOn on a role that a GetAtt already implies (W3005).
    assert {m.rule.id for m in matches} <= {"W3005"}


def snap_start_refused_regions(matches):
    """The regions cfn-lint's E2530 says SnapStart functions cannot be deployed to."""
    regions: set[str] = set()
    for match in matches:
        found = _SNAP_START_REGIONS_MESSAGE.match(match.message)
        assert found, f"E2530 said something else: {match.message}"
        regions.update(ast.literal_eval(found.group(1)))
    return regions


@pytest.mark.parametrize("name", ALL_REGION_VARIANTS)
def test_cfn_lint_in_every_region_finds_only_the_regions_snap_start_refuses(request, name):
    """No errors in any region cfn-lint knows, but for SnapStart (E2530) in exactly the regions
    the snapStart template's rule refuses (infra.functions.SNAP_START_UNSUPPORTED_REGIONS): when
    a cfn-lint upgrade changes its list, this fails and names the regions that differ."""
    stack = request.getfixturevalue(f"{name}_stack")
    matches = lint_file(stack.template_path, config=ManualArgs(regions=list(REGIONS)))
    snap_start = [m for m in matches if m.rule.id == "E2530"]
    errors = [str(m) for m in matches if m.rule.severity == "error" and m.rule.id != "E2530"]
    assert errors == []
    assert {m.rule.id for m in matches} <= {"W3005", "E2530"}
    refused = set(SNAP_START_UNSUPPORTED_REGIONS) if name == "snap_start" else set()
    assert snap_start_refused_regions(snap_start) == refused


def template_features(template):
    """What cfn-lint checks per region: each section, resource type and resource property."""
    features = {(section, "") for section in template}
    for resource in template["Resources"].values():
        features.add((resource["Type"], ""))
        features.update((resource["Type"], prop) for prop in resource.get("Properties", {}))
    return features


def test_the_variants_linted_in_every_region_cover_every_variant(request):
    covered = set().union(
        *(
            template_features(request.getfixturevalue(f"{name}_stack").template_json)
            for name in ALL_REGION_VARIANTS
        )
    )
    for name in VARIANTS:
        features = template_features(request.getfixturevalue(f"{name}_stack").template_json)
        assert features - covered == set(), name
