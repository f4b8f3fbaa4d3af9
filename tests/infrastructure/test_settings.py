"""Context flags -> Settings, and the CLI's context precedence (no synth needed)."""

from __future__ import annotations

import json

import pytest

from infra.app import cdk_json_context, make_app
from infra.settings import MIN_ORPHAN_GRACE_MINUTES, AuthMode, Settings, SettingsError
from tasks.contract import ledger, sessions
from tasks.contract.timing import STATE_MACHINE_TIMEOUT_SECONDS


def settings(**context):
    return Settings.from_context(context.get)


def test_defaults():
    assert settings() == Settings(
        auth=AuthMode.IAM,
        destroy_on_delete=False,
        log_execution_data=False,
        daily_quota=1_000_000,
        cors_origins=None,
        alarm_email=None,
        max_upload_bytes=5 * 1024**3,
        max_open_sessions=100,
    )


def test_cli_string_values_parse_like_json_values():
    # `cdk deploy -c destroyOnDelete=true -c dailyQuota=500` passes strings.
    parsed = settings(
        auth="apiKey",
        destroyOnDelete="true",
        logExecutionData="False",
        dailyQuota="500",
        corsOrigins="https://a.example.com, https://b.example.com:8443",
    )
    assert parsed == Settings(
        auth=AuthMode.API_KEY,
        destroy_on_delete=True,
        log_execution_data=False,
        daily_quota=500,
        cors_origins=("https://a.example.com", "https://b.example.com:8443"),
    )
    assert settings(corsOrigins=["*"]).cors_origins == ("*",)
    assert settings(dailyQuota=42, destroyOnDelete=True).daily_quota == 42


@pytest.mark.parametrize(
    "context",
    [
        {"auth": "cognito"},
        {"auth": "IAM"},
        {"destroyOnDelete": "yes"},
        {"logExecutionData": 1},
        {"dailyQuota": 0},
        {"dailyQuota": "-5"},
        {"dailyQuota": True},
        {"dailyQuota": 1.5},
        {"corsOrigins": "https://a.example.com/path"},
        {"corsOrigins": ["*", "https://a.example.com"]},
        {"corsOrigins": {"origin": "x"}},
        {"alarmEmail": "ops"},
        {"alarmEmail": "ops@localhost"},
        {"alarmEmail": "Ops <ops@example.com>"},
        {"alarmEmail": "ops@example..com"},
        {"alarmEmail": "a@b.com,c@d.com"},
        {"alarmEmail": ["ops@example.com"]},
        {"apiGatewayCloudWatchRole": "yes"},
    ],
)
def test_invalid_values_are_rejected_with_the_flag_named(context):
    [key] = context
    with pytest.raises(SettingsError, match=key):
        settings(**context)


def test_alarm_email_is_optional_and_trimmed():
    assert settings(alarmEmail="").alarm_email is None
    assert settings(alarmEmail=" ops+alarms@example.co.uk ").alarm_email == (
        "ops+alarms@example.co.uk"
    )


def test_cdk_json_holds_current_feature_flags_and_no_v1_era_ones():
    context = cdk_json_context()
    assert context["@aws-cdk/aws-iam:minimizePolicies"] is True
    assert context["@aws-cdk/aws-lambda:recognizeLayerVersion"] is True
    assert context["@aws-cdk/aws-apigateway:disableCloudWatchRole"] is True
    # v1-era flags are defaults in v2 and rejected/meaningless there.
    for v1_flag in (
        "@aws-cdk/core:enableStackNameDuplicates",
        "@aws-cdk/core:newStyleStackSynthesis",
        "@aws-cdk/core:stackRelativeExports",
        "aws-cdk:enableDiffNoFail",
        "@aws-cdk/aws-secretsmanager:parseOwnedSecretName",
    ):
        assert v1_flag not in context


def test_context_precedence_is_cdk_json_then_cli_then_overrides(monkeypatch):
    monkeypatch.setenv(
        "CDK_CONTEXT_JSON",
        json.dumps({"auth": "apiKey", "dailyQuota": 7, "@aws-cdk/aws-iam:minimizePolicies": False}),
    )
    app = make_app({"dailyQuota": 9})
    assert app.node.try_get_context("@aws-cdk/aws-lambda:recognizeLayerVersion") is True
    assert app.node.try_get_context("@aws-cdk/aws-iam:minimizePolicies") is False  # CLI wins
    assert Settings.of(app.node).auth is AuthMode.API_KEY  # from the CLI
    assert Settings.of(app.node).daily_quota == 9  # override wins


def test_build_app_applies_cdk_json_without_the_cli(monkeypatch):
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    app = make_app()
    assert app.node.try_get_context("@aws-cdk/aws-iam:minimizePolicies") is True
    assert Settings.of(app.node) == Settings()


# --- the orphan sweep: sweepDeletesOrphans, orphanGraceMinutes --------------------------------


def test_sweep_defaults_report_orphans_after_ten_minutes():
    parsed = settings()
    assert parsed.sweep_deletes_orphans is False
    assert parsed.orphan_grace_minutes == 10
    assert parsed.orphan_grace_seconds == 600 == ledger.DEFAULT_GRACE_SECONDS
    assert settings(sweepDeletesOrphans="", orphanGraceMinutes="") == settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), ("TRUE", True), ("False", False)],
)
def test_sweep_deletes_orphans_as_json_or_cli_value(raw, expected):
    assert settings(sweepDeletesOrphans=raw).sweep_deletes_orphans is expected


@pytest.mark.parametrize(
    ("raw", "minutes"), [(15, 15), ("15", 15), (" 15 ", 15), (2, 2), ("2", 2), (1440, 1440)]
)
def test_orphan_grace_minutes_as_json_or_cli_value(raw, minutes):
    parsed = settings(orphanGraceMinutes=raw)
    assert parsed.orphan_grace_minutes == minutes
    assert parsed.orphan_grace_seconds == minutes * 60


def test_the_shortest_grace_outlasts_an_execution_and_an_item_lease():
    # A version younger than that may belong to an upload still running (or to a request its
    # dead execution sent): the sweep must never take it for an orphan.
    assert MIN_ORPHAN_GRACE_MINUTES == 2
    assert MIN_ORPHAN_GRACE_MINUTES * 60 >= STATE_MACHINE_TIMEOUT_SECONDS + ledger.LEASE_SECONDS
    assert (
        MIN_ORPHAN_GRACE_MINUTES - 1
    ) * 60 < STATE_MACHINE_TIMEOUT_SECONDS + ledger.LEASE_SECONDS


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"sweepDeletesOrphans": "yes"},
            "context sweepDeletesOrphans='yes': expected true or false",
        ),
        ({"sweepDeletesOrphans": 1}, "context sweepDeletesOrphans=1: expected true or false"),
        (
            {"orphanGraceMinutes": 1},
            "context orphanGraceMinutes=1: expected a whole number of at least 2",
        ),
        (
            {"orphanGraceMinutes": "1"},
            "context orphanGraceMinutes='1': expected a whole number of at least 2",
        ),
        ({"orphanGraceMinutes": 0}, "context orphanGraceMinutes=0: "),
        ({"orphanGraceMinutes": "-5"}, "context orphanGraceMinutes='-5': "),
        ({"orphanGraceMinutes": True}, "context orphanGraceMinutes=True: "),
        ({"orphanGraceMinutes": 2.5}, "context orphanGraceMinutes=2.5: "),
        ({"orphanGraceMinutes": "ten"}, "context orphanGraceMinutes='ten': "),
    ],
)
def test_invalid_sweep_settings_are_refused_naming_the_flag(context, message):
    with pytest.raises(SettingsError) as raised:
        settings(**context)
    assert str(raised.value).startswith(message)


# --- upload sessions: maxUploadBytes, maxOpenSessions -----------------------------------------

TIB = 1024**4


def test_session_limits_default_to_5_gib_and_100_open_sessions():
    parsed = settings()
    assert parsed.max_upload_bytes == 5_368_709_120 == sessions.DEFAULT_MAX_UPLOAD_BYTES
    assert parsed.max_open_sessions == 100 == sessions.DEFAULT_MAX_OPEN_SESSIONS
    assert settings(maxUploadBytes="", maxOpenSessions="") == settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1),
        ("1", 1),
        (" 104857600 ", 104_857_600),
        (10 * 1024**3, 10 * 1024**3),
        # S3's largest object, the most a session can hold.
        (5 * TIB, 5 * TIB),
        (str(5 * TIB), 5 * TIB),
    ],
)
def test_max_upload_bytes_as_json_or_cli_value(raw, expected):
    assert settings(maxUploadBytes=raw).max_upload_bytes == expected


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("5", 5), (" 1000 ", 1000)])
def test_max_open_sessions_as_json_or_cli_value(raw, expected):
    assert settings(maxOpenSessions=raw).max_open_sessions == expected


def test_the_largest_upload_is_s3s_largest_object():
    assert sessions.MAX_OBJECT_BYTES == 5 * TIB


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"maxUploadBytes": 5 * TIB + 1},
            f"context maxUploadBytes={5 * TIB + 1}: at most {5 * TIB} (5 TiB, S3's largest object)",
        ),
        ({"maxUploadBytes": str(6 * TIB)}, f"context maxUploadBytes={6 * TIB}: at most "),
        ({"maxUploadBytes": 0}, "context maxUploadBytes=0: expected a whole number of at least 1"),
        ({"maxUploadBytes": "-1"}, "context maxUploadBytes='-1': expected a whole number"),
        ({"maxUploadBytes": "5GiB"}, "context maxUploadBytes='5GiB': expected a whole number"),
        ({"maxUploadBytes": 1.5}, "context maxUploadBytes=1.5: expected a whole number"),
        ({"maxUploadBytes": True}, "context maxUploadBytes=True: expected a whole number"),
        (
            {"maxOpenSessions": 0},
            "context maxOpenSessions=0: expected a whole number of at least 1",
        ),
        ({"maxOpenSessions": "0"}, "context maxOpenSessions='0': expected a whole number"),
        ({"maxOpenSessions": "ten"}, "context maxOpenSessions='ten': expected a whole number"),
        ({"maxOpenSessions": False}, "context maxOpenSessions=False: expected a whole number"),
        ({"maxOpenSessions": [5]}, "context maxOpenSessions=[5]: expected a whole number"),
    ],
)
def test_invalid_session_limits_are_refused_naming_the_flag(context, message):
    with pytest.raises(SettingsError) as raised:
        settings(**context)
    assert str(raised.value).startswith(message)
