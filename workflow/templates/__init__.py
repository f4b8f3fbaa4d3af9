"""The API's mapping templates for the StartSyncExecution integration (request.vtl, response.vtl).

Pure Python (no CDK import): the API construct and local mode both load the templates from here,
so the deployed API and the local one render the same text.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from tasks.core.errors import INTERNAL_ERROR_MESSAGE, WORKFLOW_ERRORS
from tasks.core.limits import MAX_FILE_BYTES

__all__ = [
    "CLIENT_ERROR_FALLBACK_MESSAGES",
    "INVALID_JSON_MESSAGE",
    "PAYLOAD_TOO_LARGE_MESSAGE",
    "TIMEOUT_MESSAGE",
    "UNAVAILABLE_MESSAGE",
    "request_template",
    "response_template",
]

_DIRECTORY = Path(__file__).resolve().parent

# Distinctive placeholders, replaced by plain string substitution (the ARN may be a CDK token).
STATE_MACHINE_ARN_PLACEHOLDER = "@@STATE_MACHINE_ARN@@"
WORKFLOW_ERRORS_PLACEHOLDER = "@@WORKFLOW_ERRORS@@"
MESSAGES_PLACEHOLDER = "@@MESSAGES@@"

PAYLOAD_TOO_LARGE_MESSAGE = (
    f"The request is too large. The file may be at most {MAX_FILE_BYTES} bytes"
    " (after base64 decoding)."
)
INVALID_JSON_MESSAGE = "The request body is not valid JSON."
UNAVAILABLE_MESSAGE = "The service is busy. Retry the request later."
TIMEOUT_MESSAGE = "The upload did not finish in time."
# Used only if a client error's cause cannot be read (it normally carries the task's message).
CLIENT_ERROR_FALLBACK_MESSAGES: dict[str, str] = {
    "ValidationError": "The request is not valid.",
    "PayloadTooLarge": PAYLOAD_TOO_LARGE_MESSAGE,
    "IdempotencyConflict": "The Idempotency-Key was used before with a different request body.",
}
_DEFAULT_CLIENT_ERROR_MESSAGE = "The request was rejected."

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


def _error_table() -> str:
    entries: dict[str, str] = {}
    for name, facing in WORKFLOW_ERRORS.items():
        if not (_NAME.match(name) and _NAME.match(facing.code)):
            raise ValueError(f"error name/code not usable in a template: {name!r}")
        from_cause = facing.message is None
        message = (
            CLIENT_ERROR_FALLBACK_MESSAGES.get(facing.code, _DEFAULT_CLIENT_ERROR_MESSAGE)
            if facing.message is None
            else facing.message
        )
        entries[name] = _velocity_map(
            {
                "status": str(int(facing.status)),
                "code": f'"{facing.code}"',
                "fromCause": "true" if from_cause else "false",
                "message": _velocity_json_text(message),
            }
        )
    return _velocity_map(entries)


def _messages() -> str:
    return _velocity_map(
        {
            "internal": _velocity_json_text(INTERNAL_ERROR_MESSAGE),
            "timeout": _velocity_json_text(TIMEOUT_MESSAGE),
            "tooLarge": _velocity_json_text(PAYLOAD_TOO_LARGE_MESSAGE),
            "notJson": _velocity_json_text(INVALID_JSON_MESSAGE),
            "unavailable": _velocity_json_text(UNAVAILABLE_MESSAGE),
        }
    )


@cache
def _read(name: str) -> str:
    return (_DIRECTORY / name).read_text(encoding="utf-8")


def request_template(state_machine_arn: str) -> str:
    """The integration request template, starting ``state_machine_arn`` (an ARN or a CDK token)."""
    if not state_machine_arn or _ARN_FORBIDDEN.search(state_machine_arn):
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    template = _read("request.vtl")
    if STATE_MACHINE_ARN_PLACEHOLDER not in template:
        raise RuntimeError("request.vtl lost its state machine placeholder")
    return template.replace(STATE_MACHINE_ARN_PLACEHOLDER, state_machine_arn)


def response_template() -> str:
    """The integration response template (all of default, 4xx and 5xx), with the error table."""
    template = _read("response.vtl")
    for placeholder in (WORKFLOW_ERRORS_PLACEHOLDER, MESSAGES_PLACEHOLDER):
        if placeholder not in template:
            raise RuntimeError(f"response.vtl lost its placeholder {placeholder}")
    return template.replace(WORKFLOW_ERRORS_PLACEHOLDER, _error_table()).replace(
        MESSAGES_PLACEHOLDER, _messages()
    )
