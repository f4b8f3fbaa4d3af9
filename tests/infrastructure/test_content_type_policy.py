"""Context ``allowedContentTypes`` -> Settings -> ALLOWED_CONTENT_TYPES of the functions that check
a file's content type: validate (an inline file), store (a session's stored file) and session
(the declared type when a session opens)."""

from __future__ import annotations

import json

import pytest

from infra.settings import Settings, SettingsError
from tasks.contract.content_types import policy_from_env
from tasks.contract.errors import ValidationError
from tasks.contract.names import ALLOWED_CONTENT_TYPES as ALLOWED_CONTENT_TYPES_ENV
from tasks.validate import run

from ..conftest import ALLOWED_CONTENT_TYPES
from .infra_helpers import offline_session_context, resources_of_type


def settings(**context):
    return Settings.from_context(context.get)


def environments(stack):
    functions = resources_of_type(stack.template_json, "AWS::Lambda::Function")
    return {
        logical_id.split("Function", 1)[0].removeprefix("Tasks"): function["Properties"][
            "Environment"
        ]["Variables"]
        for logical_id, function in functions.items()
    }


CHECKERS = {"Validate", "Store", "Session"}


def test_the_allowlist_reaches_the_content_type_checkers_only(content_types_stack):
    env = environments(content_types_stack)
    assert set(env) == {"Validate", "Store", "Record", "Compensate", "Report", "Sweep", "Session"}
    for task in CHECKERS:
        assert env[task][ALLOWED_CONTENT_TYPES_ENV] == ",".join(ALLOWED_CONTENT_TYPES), task
    assert all(ALLOWED_CONTENT_TYPES_ENV not in env[t] for t in set(env) - CHECKERS)


def test_without_the_flag_the_variable_is_absent(default_stack):
    assert all(ALLOWED_CONTENT_TYPES_ENV not in e for e in environments(default_stack).values())


def test_the_synthesized_value_is_what_the_task_applies(content_types_stack):
    value = environments(content_types_stack)["Validate"][ALLOWED_CONTENT_TYPES_ENV]
    assert policy_from_env(value).allowed == ALLOWED_CONTENT_TYPES
    event = {
        "requestId": "req-1",
        # The client's JSON text, as the request template passes it.
        "body": json.dumps(
            {
                "productId": "P",
                "productName": "N",
                "price": 1,
                "fileContent": "aGVsbG8K",  # "hello\n": text/plain, not allowed
            }
        ),
    }
    with pytest.raises(ValidationError, match="contentType"):
        run(event, env={ALLOWED_CONTENT_TYPES_ENV: value})


def test_a_session_is_refused_a_content_type_the_synthesized_value_does_not_allow(
    content_types_stack,
):
    """The Session task checks a session's declared type when it opens, before any AWS call."""
    from tasks.session import open_session

    ctx = offline_session_context(environments(content_types_stack)["Session"])
    body = {"productId": "P", "fileName": "notes.txt", "size": 6, "contentType": "text/plain"}
    with pytest.raises(ValidationError, match="contentType"):
        open_session(ctx, json.dumps(body))


@pytest.mark.parametrize(
    "raw",
    [
        "image/png,application/pdf",
        " image/png , application/pdf ,",
        '["image/png", "application/pdf"]',
        ["image/png", "application/pdf"],
        ["Image/PNG", "application/pdf", "image/png"],
    ],
)
def test_allowed_content_types_spellings(raw):
    assert settings(allowedContentTypes=raw).allowed_content_types == (
        "image/png",
        "application/pdf",
    )


@pytest.mark.parametrize("raw", [None, "", [], " , "])
def test_absent_or_empty_allows_any(raw):
    assert settings(allowedContentTypes=raw).allowed_content_types is None


def test_wildcards():
    assert settings(allowedContentTypes="image/*").allowed_content_types == ("image/*",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("image", "'image' is not a MIME type"),
        ("*/*", "'\\*/\\*' is not a MIME type"),
        ("image/png;q=1", "is not a MIME type"),
        ('["image/png",', "expected a list of MIME types"),
        ([1], "expected a list of MIME types"),
        (True, "expected a list of MIME types"),
    ],
)
def test_invalid_values_are_refused(raw, message):
    with pytest.raises(SettingsError, match=f"context allowedContentTypes.*{message}"):
        settings(allowedContentTypes=raw)
