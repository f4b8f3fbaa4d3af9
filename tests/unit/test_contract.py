"""The contract layer (tasks/contract) is standard library only, and the CDK app, which reads its
shared facts from there, loads nothing of the Lambda runtime's libraries."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tasks.contract
from tasks.contract.errors import OUTCOMES, WORKFLOW_ERRORS, codes_by_status, outcome_of_execution

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_MODULES = sorted(
    f"tasks.contract.{info.name}" for info in pkgutil.iter_modules(tasks.contract.__path__)
)
PROBE = """
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def modules_loaded_by(*names: str) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *names],  # "-c": the project root is on sys.path
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(completed.stdout))


def test_the_contract_has_the_modules_the_project_reads() -> None:
    assert CONTRACT_MODULES == [
        "tasks.contract.content_types",
        "tasks.contract.errors",
        "tasks.contract.idempotency",
        "tasks.contract.keys",
        "tasks.contract.ledger",
        "tasks.contract.limits",
        "tasks.contract.names",
        "tasks.contract.sessions",
        "tasks.contract.timing",
    ]


@pytest.mark.parametrize("module", CONTRACT_MODULES)
def test_a_contract_module_imports_only_the_standard_library(module: str) -> None:
    loaded = modules_loaded_by(module)
    foreign = {
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != "tasks"
    }
    project = {name for name in loaded if name.split(".")[0] == "tasks"}
    assert foreign == set()
    assert {name for name in project if not name.startswith("tasks.contract")} <= {"tasks"}


def test_the_cdk_app_loads_no_lambda_runtime_library() -> None:
    loaded = modules_loaded_by("main", "infra.app")
    assert "aws_cdk" in loaded  # the probe did import the app
    assert {name for name in loaded if name.startswith("aws_lambda_powertools")} == set()
    assert {name for name in loaded if name.startswith(("msgspec", "puremagic"))} == set()
    assert {name for name in loaded if name.startswith("tasks.core")} == set()


def test_the_codes_of_every_error_status() -> None:
    assert codes_by_status() == {
        400: {"ValidationError"},
        403: {"Forbidden"},
        404: {"NotFound"},
        409: {"IdempotencyConflict", "UploadInProgress", "SessionNotOpen"},
        413: {"PayloadTooLarge"},
        415: {"UnsupportedMediaType"},
        429: {"TooManyRequests", "TooManySessions"},
        500: {"InternalError"},
        503: {"ServiceUnavailable"},
        504: {"Timeout"},
    }


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("SUCCEEDED", None, None),
        ("TIMED_OUT", "States.Timeout", 504),
        ("FAILED", "ValidationError", 400),
        ("FAILED", "CompensationFailed", 500),
        ("FAILED", "States.Runtime", 500),
        ("FAILED", None, 500),
        ("ABORTED", "ValidationError", 500),
    ],
)
def test_the_outcome_of_an_execution(status: str, error: str | None, expected: int | None) -> None:
    outcome = outcome_of_execution(status, error)
    assert (outcome.status if outcome is not None else None) == expected


def test_workflow_errors_are_the_unprefixed_outcomes() -> None:
    assert set(WORKFLOW_ERRORS) < set(OUTCOMES)
    assert all("." not in name or name.startswith("States.") for name in WORKFLOW_ERRORS)
