"""``build_app``: the CDK app exactly as ``cdk synth`` / ``cdk deploy`` builds it.

The CDK CLI reads ``cdk.json``'s ``context`` (plus ``-c`` flags) and hands it to the app in the
``CDK_CONTEXT_JSON`` environment variable; a bare ``python main.py`` would ignore ``cdk.json``. So
the app loads ``cdk.json``'s context itself (the CLI's values win when present, since ``App``
applies ``CDK_CONTEXT_JSON`` over ``context``) and applies explicit overrides last, the way
``-c key=value`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App

from infra.settings import Settings
from infra.stack import STACK_ID, UploadServiceStack

CDK_CONTEXT_ENV = "CDK_CONTEXT_JSON"
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise TypeError(f"{path}: 'context' must be an object")
    return context


def cli_context() -> dict[str, Any]:
    """The context the CDK CLI passed (``CDK_CONTEXT_JSON``), as this Python process sees it.

    ``App`` reads the variable too, but in its Node process, whose environment is fixed when
    jsii starts; reading it here keeps the precedence right when it is set later (tests)."""
    raw = os.environ.get(CDK_CONTEXT_ENV)
    context = json.loads(raw) if raw else {}
    if not isinstance(context, dict):
        raise TypeError(f"{CDK_CONTEXT_ENV} must hold a JSON object")
    return context


def make_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """An empty app with the CLI's context precedence: cdk.json < CDK_CONTEXT_JSON < ``context``."""
    return App(
        context={**cdk_json_context(), **cli_context()},
        post_cli_context=dict(context or {}),
        outdir=outdir,
        # Same template with or without the CLI (which would otherwise add AWS::CDK::Metadata).
        analytics_reporting=False,
    )


def build_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with the UploadService stack, not yet synthesized (call ``.synth()``)."""
    app = make_app(context, outdir)
    UploadServiceStack(
        app,
        STACK_ID,
        settings=Settings.of(app.node),
        description="Serverless file upload: API Gateway -> Express Step Functions -> Lambda",
    )
    return app
