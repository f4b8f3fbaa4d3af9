"""Shared fixtures. Each CDK variant is synthesized at most once per test session, through
``infra.app.build_app`` (cdk.json's context + overrides, as ``cdk deploy`` does)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.emulator import Emulator

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
PROJECT_ROOT = Path(__file__).resolve().parent.parent

STACK_NAME = "UploadService"
# Tests that install local mode's moto patches themselves and compare with moto as it is: never
# in the process where the emulator (and its patches) runs.
UNPATCHED_MOTO_TESTS = frozenset({"test_moto_patches.py", "test_s3_checks.py"})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite runs on two pytest-xdist workers (pyproject: ``-n 2 --dist loadgroup``), each a
    process with its own session fixtures: the tests of local mode (``tests/e2e``, ``tests/ops``:
    one emulator, and the ``cdk.out`` that ``python -m local`` reuses) share one worker; the
    tests of synthesized templates share the other (each variant synthesized once), with the
    tests that compare moto patched and unpatched (:data:`UNPATCHED_MOTO_TESTS`: local mode's
    patches hold for its whole process); the rest go wherever there is room."""
    local_mode = {PROJECT_ROOT / "tests" / "e2e", PROJECT_ROOT / "tests" / "ops"}
    for item in items:
        if local_mode & set(item.path.parents):
            item.add_marker(pytest.mark.xdist_group("local"))
        elif item.path.name in UNPATCHED_MOTO_TESTS or "synth" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("synth"))


@dataclass(frozen=True)
class Synthesized:
    """One synthesized variant: the template as JSON and as an assertions ``Template``."""

    context: Mapping[str, Any]
    outdir: Path
    template_json: dict[str, Any]
    synth_error: str | None  # e.g. cdk-nag's "Validation failed"; the template is still written

    @property
    def template(self) -> Any:
        from aws_cdk.assertions import Template

        return Template.from_json(self.template_json)

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template_json["Resources"])

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{STACK_NAME}.template.json"

    def validation_report(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / "validation-report.json").read_text()))


def _synthesize(outdir: Path, context: Mapping[str, Any]) -> Synthesized:
    """Synthesize with cdk-nag's AwsSolutions and Serverless packs attached (their findings go
    to validation-report.json; a finding makes ``synth`` raise after writing the template)."""
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks

    from infra.app import build_app

    app = build_app(dict(context), outdir=str(outdir))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    error: str | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # validation failures are reported, the template is written
        error = str(exc)
    template_file = outdir / f"{STACK_NAME}.template.json"
    return Synthesized(
        context=context,
        outdir=outdir,
        template_json=json.loads(template_file.read_text()),
        synth_error=error,
    )


SynthFactory = Callable[..., Synthesized]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthFactory:
    cache: dict[str, Synthesized] = {}

    def get(name: str, context: Mapping[str, Any]) -> Synthesized:
        if name not in cache:
            cache[name] = _synthesize(tmp_path_factory.mktemp(f"cdk-{name}"), context)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def default_stack(synth: SynthFactory) -> Synthesized:
    """The stack with cdk.json's context only."""
    return synth("default", {})


@pytest.fixture(scope="session")
def api_key_stack(synth: SynthFactory) -> Synthesized:
    return synth("api-key", {"auth": "apiKey"})


@pytest.fixture(scope="session")
def daily_quota_stack(synth: SynthFactory) -> Synthesized:
    # As the CLI passes `-c auth=apiKey -c dailyQuota=5000`: strings.
    return synth("daily-quota", {"auth": "apiKey", "dailyQuota": "5000"})


@pytest.fixture(scope="session")
def destroy_stack(synth: SynthFactory) -> Synthesized:
    return synth("destroy", {"destroyOnDelete": "true"})


@pytest.fixture(scope="session")
def log_data_stack(synth: SynthFactory) -> Synthesized:
    return synth("log-data", {"logExecutionData": True})


CORS_ORIGINS = ("https://app.example.com", "https://admin.example.com")


@pytest.fixture(scope="session")
def cors_stack(synth: SynthFactory) -> Synthesized:
    return synth("cors", {"corsOrigins": list(CORS_ORIGINS)})


ALARM_EMAIL = "ops@example.com"


@pytest.fixture(scope="session")
def alarm_email_stack(synth: SynthFactory) -> Synthesized:
    return synth("alarm-email", {"alarmEmail": ALARM_EMAIL})


# As the CLI passes `-c allowedContentTypes=...`: one string (spaces and case are cleaned).
ALLOWED_CONTENT_TYPES_CONTEXT = "image/png, IMAGE/*,application/pdf"
ALLOWED_CONTENT_TYPES = ("image/png", "image/*", "application/pdf")


@pytest.fixture(scope="session")
def content_types_stack(synth: SynthFactory) -> Synthesized:
    return synth("content-types", {"allowedContentTypes": ALLOWED_CONTENT_TYPES_CONTEXT})


@pytest.fixture(scope="session")
def snap_start_stack(synth: SynthFactory) -> Synthesized:
    return synth("snap-start", {"snapStart": "true"})


PROVISIONED_CONCURRENCY = 2


@pytest.fixture(scope="session")
def provisioned_stack(synth: SynthFactory) -> Synthesized:
    # As the CLI passes `-c provisionedConcurrency=2`: a string.
    return synth("provisioned", {"provisionedConcurrency": str(PROVISIONED_CONCURRENCY)})


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """Local mode, started once per session in-process on free ports (one moto per process)."""
    with Emulator(port=0, aws_port=0) as running:
        yield running
