"""checkov on the default synthesized template: zero failed checks, every skip explained.

checkov runs from its own virtualenv (``.venv-checkov``, ``make test`` builds it from
``requirements-checkov.txt``): its dependency pins (boto3/botocore 1.35, packaging 23) conflict
with this project's. ``CHECKOV`` overrides the binary's path. Without the binary the test fails,
saying how to get it: it is never skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..conftest import PROJECT_ROOT

CHECKOV_REQUIREMENTS = PROJECT_ROOT / "requirements-checkov.txt"
DEFAULT_CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_TIMEOUT_SECONDS = 300

LAMBDA_SKIPS = {"CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"}
# Every skip, by resource (logical id without CDK's hash suffix). A new skip is a reviewed change.
EXPECTED_SKIPS: dict[str, set[str]] = {
    "AWS::S3::Bucket.StorageAccessLogBucket": {"CKV_AWS_18", "CKV_AWS_21"},
    "AWS::ApiGateway::Stage.EdgeApiDeploymentStageprod": {"CKV_AWS_120"},
    **{
        f"AWS::Lambda::Function.Tasks{task}Function": LAMBDA_SKIPS
        for task in ("Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session")
    },
}
_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")


def _pinned_version() -> str:
    for line in CHECKOV_REQUIREMENTS.read_text().splitlines():
        if line.startswith("checkov=="):
            return line.removeprefix("checkov==").strip()
    raise AssertionError(f"{CHECKOV_REQUIREMENTS}: no checkov== pin")


def _checkov_binary() -> Path:
    binary = Path(os.environ.get("CHECKOV") or DEFAULT_CHECKOV)
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    pytest.fail(
        f"checkov not found at {binary}: run `make test` (it builds .venv-checkov from "
        f"{CHECKOV_REQUIREMENTS.name}) or set CHECKOV to its path"
    )


@pytest.fixture(scope="module")
def checkov() -> Path:
    binary = _checkov_binary()
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert version == _pinned_version(), f"{binary} is checkov {version}"
    return binary


@pytest.fixture(scope="module")
def report(checkov: Path, default_stack: Any) -> dict[str, Any]:
    command = [
        str(checkov),
        "--file",
        str(default_stack.template_path),
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--skip-download",  # offline: no policy or guideline download from the platform
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_SECONDS, check=False
    )
    # checkov exits 1 when a check failed; anything else but 0 is a crash.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    parsed = json.loads(done.stdout)
    # One framework gives one report object (several would give a list).
    assert isinstance(parsed, dict), f"unexpected checkov output: {done.stdout[:500]}"
    assert parsed["check_type"] == "cloudformation"
    return parsed


def _describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} on {check['resource']}: {check['check_name']}"


def test_checkov_finds_no_failed_checks(report):
    failed = [_describe(check) for check in report["results"]["failed_checks"]]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    summary = report["summary"]
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100  # it really checked the stack's resources


def test_every_skip_is_expected_and_says_why(report):
    skips: dict[str, set[str]] = {}
    for check in report["results"]["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment") or ""
        assert len(comment) > 40, f"{_describe(check)}: skipped without a reason"
        resource = _HASH_SUFFIX.sub("", check["resource"])
        skips.setdefault(resource, set()).add(check["check_id"])
    assert skips == EXPECTED_SKIPS
