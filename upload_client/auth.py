"""How a request to the API is authenticated: an API key, a SigV4 signature, or nothing.

The stack is deployed with one of two modes (docs/api.md): ``iam``, where every request is signed
with SigV4 for the service ``execute-api``, or ``apiKey``, where the header ``x-api-key`` carries
the key. :func:`resolve` picks one: the API key when one is given; otherwise a signature with the
standard credential chain, in the region of the ``execute-api`` host (else ``AWS_REGION``, else
the chain's region). Local mode (``http://127.0.0.1:3000``) checks nothing, so a host outside AWS
with no credentials at hand gets unsigned requests. Only API requests go through a signer: part
PUTs go to presigned URLs, which carry their own authorization.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError

from upload_client.errors import ConfigurationError

SERVICE: Final = "execute-api"
# <api-id>.execute-api.<region>.amazonaws.com (.com.cn in the China regions).
_EXECUTE_API_HOST: Final = re.compile(
    r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE
)
_AWS_DOMAINS: Final = (".amazonaws.com", ".amazonaws.com.cn")


class Signer(Protocol):
    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus what authenticates this request."""


@dataclass(frozen=True)
class ApiKey:
    key: str = field(repr=False)  # a secret: kept out of reprs and tracebacks

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return {**headers, "x-api-key": self.key}


@dataclass(frozen=True)
class SigV4:
    """Signs with ``credentials`` (botocore credentials, refreshed as they expire)."""

    credentials: Any = field(repr=False)
    region: str

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        # One frozen snapshot per signature: a refresh cannot change the key half-way through.
        frozen = self.credentials.get_frozen_credentials()
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return {str(name): str(value) for name, value in request.headers.items()}


class Unsigned:
    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return dict(headers)


def region_of(host: str) -> str | None:
    """The region of an ``execute-api`` host name, or None for any other host."""
    match = _EXECUTE_API_HOST.match(host)
    return match.group(1).lower() if match else None


def resolve(
    api_url: str, api_key: str | None, session: botocore.session.Session | None = None
) -> Signer:
    """The signer for ``api_url``: see the module's docstring for the rule."""
    if api_key is not None:
        return ApiKey(api_key)
    host = urlsplit(api_url).hostname or ""
    session = session or botocore.session.Session()
    try:
        credentials = session.get_credentials()
        region = (
            region_of(host) or os.environ.get("AWS_REGION") or session.get_config_variable("region")
        )
    except BotoCoreError as exc:
        raise ConfigurationError(f"cannot read the AWS configuration: {exc}") from None
    if credentials is not None and region:
        return SigV4(credentials, str(region))
    if host.lower().endswith(_AWS_DOMAINS):
        missing = "credentials" if credentials is None else "region"
        raise ConfigurationError(
            f"no AWS {missing} found to sign requests to {host} "
            "(configure them, or pass an API key with --api-key)"
        )
    return Unsigned()
