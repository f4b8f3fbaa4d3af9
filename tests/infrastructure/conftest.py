"""Variants of the stack only the infrastructure tests synthesize (tests/conftest.py has the
shared ``synth`` factory and the other variants)."""

from __future__ import annotations

import pytest

from tests.conftest import Synthesized, SynthFactory

SWEEP_DELETES_GRACE_SECONDS = 15 * 60
SWEEP_DELETES_MAX_UPLOAD_BYTES = 1024**3
SWEEP_DELETES_MAX_OPEN_SESSIONS = 5
# As the CLI passes `-c sweepDeletesOrphans=true -c orphanGraceMinutes=15`: strings. The same
# variant sets the session limits (`-c maxUploadBytes=... -c maxOpenSessions=5`): flags that,
# like the sweep's, change one function's environment and nothing else (one synth for both).
SWEEP_DELETES_CONTEXT = {
    "sweepDeletesOrphans": "true",
    "orphanGraceMinutes": "15",
    "maxUploadBytes": str(SWEEP_DELETES_MAX_UPLOAD_BYTES),
    "maxOpenSessions": str(SWEEP_DELETES_MAX_OPEN_SESSIONS),
}


@pytest.fixture(scope="session")
def sweep_deletes_stack(synth: SynthFactory) -> Synthesized:
    """The sweep deletes the orphans it finds, after a 15-minute grace period; upload sessions
    are limited to 1 GiB and 5 open per caller."""
    return synth("sweep-deletes", SWEEP_DELETES_CONTEXT)


@pytest.fixture(scope="session")
def no_cloudwatch_role_stack(synth: SynthFactory) -> Synthesized:
    """The stack leaves the account's API Gateway CloudWatch role setting alone (as the CLI
    passes `-c apiGatewayCloudWatchRole=false`: a string)."""
    return synth("no-cloudwatch-role", {"apiGatewayCloudWatchRole": "false"})


# Every flag on that the others allow (snapStart excludes provisionedConcurrency): between them,
# this variant and snap_start hold every resource type and property of every variant
# (test_compliance.py lints the two in every region, and checks they cover the others).
ALL_FEATURES_CONTEXT = {
    "auth": "apiKey",
    "dailyQuota": "5000",
    "destroyOnDelete": "true",
    "logExecutionData": "true",
    "corsOrigins": "https://app.example.com,https://admin.example.com",
    "alarmEmail": "ops@example.com",
    "allowedContentTypes": "image/png,application/pdf",
    "provisionedConcurrency": "2",
    **SWEEP_DELETES_CONTEXT,
}


@pytest.fixture(scope="session")
def all_features_stack(synth: SynthFactory) -> Synthesized:
    return synth("all-features", ALL_FEATURES_CONTEXT)
