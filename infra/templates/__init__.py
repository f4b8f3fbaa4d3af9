"""The API's mapping templates for the StartSyncExecution integration (request.vtl, response.vtl).

Pure Python (no CDK import): the API construct and local mode both load the templates from here,
so the deployed API and the local one render the same text. The response template gets
:data:`tasks.contract.errors.OUTCOMES` rendered into it, so the status and code of every outcome
live in that one table.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from tasks.contract.errors import OUTCOMES

__all__ = ["request_template", "response_template", "session_request_template"]

_DIRECTORY = Path(__file__).resolve().parent

# Distinctive placeholders, replaced by plain string substitution (the ARN may be a CDK token).
STATE_MACHINE_ARN_PLACEHOLDER = "@@STATE_MACHINE_ARN@@"
OUTCOMES_PLACEHOLDER = "@@OUTCOMES@@"
SUCCESS_STATUS_PLACEHOLDER = "@@SUCCESS_STATUS@@"
SELECTED_BY_413_PLACEHOLDER = "@@SELECTED_BY_413@@"
OPERATION_PLACEHOLDER = "@@OPERATION@@"
# The sessions workflow's operations (tasks.core.models.SessionEvent).
SESSION_OPERATIONS = frozenset({"open", "parts", "describe", "abort"})

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_ARN_FORBIDDEN = re.compile(r"[\"\\\s]")


def _velocity_json_text(text: str) -> str:
    """A Velocity single-quoted literal whose value is ``text`` escaped for a JSON string.

    Single-quoted literals are not interpolated ($ and # stay text); the one character they cannot
    hold, ', is written as its JSON escape.
    """
    escaped = json.dumps(text, ensure_ascii=True)[1:-1].replace("'", "\\u0027")
    return f"'{escaped}'"


def _velocity_map(entries: dict[str, str]) -> str:
    return "{" + ", ".join(f'"{key}": {value}' for key, value in entries.items()) + "}"


def _outcome_table() -> str:
    entries: dict[str, str] = {}
    for name, outcome in OUTCOMES.items():
        if not (_NAME.match(name) and _NAME.match(outcome.code)):
            raise ValueError(f"outcome name/code not usable in a template: {name!r}")
        entries[name] = _velocity_map(
            {
                "status": str(int(outcome.status)),
                "code": f'"{outcome.code}"',
                "fromTask": "true" if outcome.from_task else "false",
                "message": _velocity_json_text(outcome.message),
            }
        )
    return _velocity_map(entries)


@cache
def _read(name: str) -> str:
    return (_DIRECTORY / name).read_text(encoding="utf-8")


def _filled(name: str, values: dict[str, str]) -> str:
    template = _read(name)
    for placeholder, value in values.items():
        if placeholder not in template:
            raise RuntimeError(f"{name} lost its placeholder {placeholder}")
        template = template.replace(placeholder, value)
    return template


def _checked_arn(state_machine_arn: str) -> str:
    if not state_machine_arn or _ARN_FORBIDDEN.search(state_machine_arn):
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    return state_machine_arn


def request_template(state_machine_arn: str) -> str:
    """The integration request template of /upload, starting ``state_machine_arn`` (an ARN or a
    CDK token)."""
    return _filled("request.vtl", {STATE_MACHINE_ARN_PLACEHOLDER: _checked_arn(state_machine_arn)})


def session_request_template(state_machine_arn: str, operation: str) -> str:
    """The integration request template of a /uploads route: ``operation`` of the sessions
    workflow ``state_machine_arn``."""
    if operation not in SESSION_OPERATIONS:
        raise ValueError(f"not a session operation: {operation!r}")
    return _filled(
        "session_request.vtl",
        {
            STATE_MACHINE_ARN_PLACEHOLDER: _checked_arn(state_machine_arn),
            OPERATION_PLACEHOLDER: operation,
        },
    )


def response_template(success_status: int = 200, *, selected_by_413: bool = False) -> str:
    """An integration response template, with the outcome table; a succeeded execution answers
    ``success_status`` (201 for a new session). ``selected_by_413``: the template of the integration
    response selected by Step Functions' HTTP 413, which answers 413 without reading the body."""
    return _filled(
        "response.vtl",
        {
            OUTCOMES_PLACEHOLDER: _outcome_table(),
            SUCCESS_STATUS_PLACEHOLDER: str(success_status),
            SELECTED_BY_413_PLACEHOLDER: "true" if selected_by_413 else "false",
        },
    )
