"""Context flags -> one typed, validated settings object.

The CDK CLI passes context values from ``cdk.json`` as JSON values and values from ``-c key=value``
as strings, so every parser here accepts both spellings (``true`` / ``"true"``, ``1000`` /
``"1000"``, a list or a comma-separated string).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_cdk import RemovalPolicy
from constructs import Node

from tasks.contract import ledger, sessions
from tasks.contract.content_types import parse_allowlist
from tasks.contract.timing import STATE_MACHINE_TIMEOUT_SECONDS

T = TypeVar("T")

AUTH_CONTEXT_KEY = "auth"
DESTROY_ON_DELETE_CONTEXT_KEY = "destroyOnDelete"
LOG_EXECUTION_DATA_CONTEXT_KEY = "logExecutionData"
DAILY_QUOTA_CONTEXT_KEY = "dailyQuota"
CORS_ORIGINS_CONTEXT_KEY = "corsOrigins"
ALARM_EMAIL_CONTEXT_KEY = "alarmEmail"
SNAP_START_CONTEXT_KEY = "snapStart"
PROVISIONED_CONCURRENCY_CONTEXT_KEY = "provisionedConcurrency"
ALLOWED_CONTENT_TYPES_CONTEXT_KEY = "allowedContentTypes"
SWEEP_DELETES_ORPHANS_CONTEXT_KEY = "sweepDeletesOrphans"
ORPHAN_GRACE_MINUTES_CONTEXT_KEY = "orphanGraceMinutes"
MAX_UPLOAD_BYTES_CONTEXT_KEY = "maxUploadBytes"
MAX_OPEN_SESSIONS_CONTEXT_KEY = "maxOpenSessions"
API_GATEWAY_CLOUDWATCH_ROLE_CONTEXT_KEY = "apiGatewayCloudWatchRole"

DEFAULT_DAILY_QUOTA = 1_000_000
DEFAULT_ORPHAN_GRACE_MINUTES = ledger.DEFAULT_GRACE_SECONDS // 60
# The shortest grace period: longer than the workflow's worst case plus an item lease, rounded up.
MIN_ORPHAN_GRACE_MINUTES = math.ceil((STATE_MACHINE_TIMEOUT_SECONDS + ledger.LEASE_SECONDS) / 60)
_ORIGIN = re.compile(r"^(\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?)$")
# A plain addr-spec as SNS email subscriptions take it: local@domain.tld, no display name.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class SettingsError(ValueError):
    """A context flag has a value the stack cannot be built from."""


class AuthMode(enum.Enum):
    IAM = "iam"
    API_KEY = "apiKey"


@dataclass(frozen=True, kw_only=True)
class Settings:
    auth: AuthMode = AuthMode.IAM
    # Data resources (bucket, table, keys, log groups) are retained on stack deletion unless set.
    destroy_on_delete: bool = False
    # Copies execution input (the file!) into every state machine log event: debugging only.
    log_execution_data: bool = False
    daily_quota: int = DEFAULT_DAILY_QUOTA
    # None: no CORS. Otherwise the allowed origins (preflight + Access-Control-Allow-Origin).
    cors_origins: tuple[str, ...] | None = None
    # None: alarms without actions. Otherwise every alarm notifies an SNS topic emailing this.
    alarm_email: str | None = None
    # None: any content type. Otherwise the MIME types (``type/subtype`` or ``type/*``, lower
    # case) the validate task accepts, declared and detected (tasks.contract.content_types).
    allowed_content_types: tuple[str, ...] | None = None
    # Cold-start options (README "Performance"); both off by default. Either one publishes a
    # version of every task function behind an alias "live", which the state machine invokes.
    # snapStart: Lambda SnapStart (ON_PUBLISHED_VERSIONS): init runs once per published version
    # and sandboxes resume from its snapshot. provisionedConcurrency = N: N initialized sandboxes
    # per task on the alias, billed while idle. Lambda does not combine the two.
    snap_start: bool = False
    provisioned_concurrency: int = 0
    # The sweep (tasks/sweep.py) reports what no compensation accounted for; with this set it
    # also deletes it (versions by VersionId, metadata writes undone).
    sweep_deletes_orphans: bool = False
    # What the sweep leaves alone because it may still be in flight: longer than the workflow's
    # worst case and an item lease (tasks.contract.timing, tasks.contract.ledger).
    orphan_grace_minutes: int = DEFAULT_ORPHAN_GRACE_MINUTES
    # Upload sessions (tasks.contract.sessions): the largest file a session may declare, and how
    # many sessions one caller may hold open at once.
    max_upload_bytes: int = sessions.DEFAULT_MAX_UPLOAD_BYTES
    max_open_sessions: int = sessions.DEFAULT_MAX_OPEN_SESSIONS
    # API Gateway logs to CloudWatch through one role per account and region (its "account"
    # settings). True: the stack creates that role and sets it, region-wide, and both are kept
    # after the stack is deleted. False: it leaves the account's existing setting alone (which
    # must then name a role: the stage's execution and access logs need one).
    api_gateway_cloudwatch_role: bool = True

    @property
    def orphan_grace_seconds(self) -> int:
        return self.orphan_grace_minutes * 60

    @property
    def removal_policy(self) -> RemovalPolicy:
        """What stack deletion does to the data resources (bucket, table, keys, log groups)."""
        return RemovalPolicy.DESTROY if self.destroy_on_delete else RemovalPolicy.RETAIN

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Settings:
        """Build from a context getter such as ``node.try_get_context``."""
        return cls(
            auth=_optional(get(AUTH_CONTEXT_KEY), _auth, AuthMode.IAM),
            destroy_on_delete=_optional(
                get(DESTROY_ON_DELETE_CONTEXT_KEY), _bool(DESTROY_ON_DELETE_CONTEXT_KEY), False
            ),
            log_execution_data=_optional(
                get(LOG_EXECUTION_DATA_CONTEXT_KEY), _bool(LOG_EXECUTION_DATA_CONTEXT_KEY), False
            ),
            daily_quota=_optional(
                get(DAILY_QUOTA_CONTEXT_KEY),
                _whole_number(DAILY_QUOTA_CONTEXT_KEY, 1),
                DEFAULT_DAILY_QUOTA,
            ),
            cors_origins=_optional(get(CORS_ORIGINS_CONTEXT_KEY), _origins, None),
            alarm_email=_optional(get(ALARM_EMAIL_CONTEXT_KEY), _email, None),
            allowed_content_types=_optional(
                get(ALLOWED_CONTENT_TYPES_CONTEXT_KEY), _content_types, None
            ),
            **_cold_start_options(get),
            sweep_deletes_orphans=_optional(
                get(SWEEP_DELETES_ORPHANS_CONTEXT_KEY),
                _bool(SWEEP_DELETES_ORPHANS_CONTEXT_KEY),
                False,
            ),
            orphan_grace_minutes=_optional(
                get(ORPHAN_GRACE_MINUTES_CONTEXT_KEY),
                _whole_number(ORPHAN_GRACE_MINUTES_CONTEXT_KEY, MIN_ORPHAN_GRACE_MINUTES),
                DEFAULT_ORPHAN_GRACE_MINUTES,
            ),
            max_upload_bytes=_max_upload_bytes(get(MAX_UPLOAD_BYTES_CONTEXT_KEY)),
            max_open_sessions=_optional(
                get(MAX_OPEN_SESSIONS_CONTEXT_KEY),
                _whole_number(MAX_OPEN_SESSIONS_CONTEXT_KEY, 1),
                sessions.DEFAULT_MAX_OPEN_SESSIONS,
            ),
            api_gateway_cloudwatch_role=_optional(
                get(API_GATEWAY_CLOUDWATCH_ROLE_CONTEXT_KEY),
                _bool(API_GATEWAY_CLOUDWATCH_ROLE_CONTEXT_KEY),
                True,
            ),
        )

    @classmethod
    def of(cls, node: Node) -> Settings:
        return cls.from_context(node.try_get_context)


def _cold_start_options(get: Callable[[str], Any]) -> dict[str, Any]:
    snap_start = _optional(get(SNAP_START_CONTEXT_KEY), _bool(SNAP_START_CONTEXT_KEY), False)
    provisioned = _optional(
        get(PROVISIONED_CONCURRENCY_CONTEXT_KEY),
        _whole_number(PROVISIONED_CONCURRENCY_CONTEXT_KEY, 0, "(0 = off)"),
        0,
    )
    if snap_start and provisioned:
        raise SettingsError(
            f"context {SNAP_START_CONTEXT_KEY} and {PROVISIONED_CONCURRENCY_CONTEXT_KEY}: Lambda "
            "does not support SnapStart together with provisioned concurrency; choose one"
        )
    return {"snap_start": snap_start, "provisioned_concurrency": provisioned}


def _max_upload_bytes(raw: Any) -> int:
    value = _optional(
        raw, _whole_number(MAX_UPLOAD_BYTES_CONTEXT_KEY, 1), sessions.DEFAULT_MAX_UPLOAD_BYTES
    )
    if value > sessions.MAX_OBJECT_BYTES:
        raise SettingsError(
            f"context {MAX_UPLOAD_BYTES_CONTEXT_KEY}={value}: at most "
            f"{sessions.MAX_OBJECT_BYTES} (5 TiB, S3's largest object)"
        )
    return value


def _whole_number(key: str, minimum: int, hint: str = "") -> Callable[[Any], int]:
    """A parser of a whole number of at least ``minimum``, given as a number or as text."""

    def parse(raw: Any) -> int:
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str) and raw.strip().isdigit():
            value = int(raw.strip())
        if value is None or value < minimum:
            expected = f"expected a whole number of at least {minimum} {hint}".rstrip()
            raise SettingsError(f"context {key}={raw!r}: {expected}")
        return value

    return parse


def _optional(raw: Any, parse: Callable[[Any], T], default: T) -> T:
    if raw is None or raw == "":
        return default
    return parse(raw)


def _auth(raw: Any) -> AuthMode:
    for mode in AuthMode:
        if raw == mode.value:
            return mode
    allowed = " | ".join(m.value for m in AuthMode)
    raise SettingsError(f"context {AUTH_CONTEXT_KEY}={raw!r}: expected {allowed}")


def _bool(key: str) -> Callable[[Any], bool]:
    def parse(raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise SettingsError(f"context {key}={raw!r}: expected true or false")

    return parse


def _origins(raw: Any) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        items = [item.strip() for item in raw.split(",") if item.strip()]
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        items = [item.strip() for item in raw]
    else:
        raise SettingsError(
            f"context {CORS_ORIGINS_CONTEXT_KEY}={raw!r}: expected a list of origins "
            "or a comma-separated string"
        )
    if not items:
        return None
    for origin in items:
        if not _ORIGIN.match(origin):
            raise SettingsError(
                f"context {CORS_ORIGINS_CONTEXT_KEY}: {origin!r} is not an origin "
                "(scheme://host[:port] without a path, or *)"
            )
    if "*" in items and len(items) > 1:
        raise SettingsError(f"context {CORS_ORIGINS_CONTEXT_KEY}: '*' cannot be combined")
    return tuple(dict.fromkeys(items))


def _email(raw: Any) -> str:
    value = raw.strip() if isinstance(raw, str) else None
    if not value or not _EMAIL.match(value) or ".." in value or value.startswith("."):
        raise SettingsError(
            f"context {ALARM_EMAIL_CONTEXT_KEY}={raw!r}: expected an email address "
            "such as ops@example.com"
        )
    return value


def _content_types(raw: Any) -> tuple[str, ...] | None:
    """A list, a JSON list in a string (``-c 'allowedContentTypes=["image/png"]'``) or a
    comma-separated string (``-c allowedContentTypes=image/png,application/pdf``)."""
    value = raw
    if isinstance(raw, str) and raw.strip().startswith("["):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
    elif isinstance(raw, str):
        value = raw.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(
            f"context {ALLOWED_CONTENT_TYPES_CONTEXT_KEY}={raw!r}: expected a list of MIME types "
            "or a comma-separated string, e.g. image/png,image/*"
        )
    try:
        return parse_allowlist(value)
    except ValueError as exc:
        raise SettingsError(f"context {ALLOWED_CONTENT_TYPES_CONTEXT_KEY}: {exc}") from None
