"""The public Python API: :func:`upload_file` uploads one file and returns the service's success
body as an :class:`~upload_client.models.UploadResult`, or raises an
:class:`~upload_client.errors.UploadClientError`.

A file of at most ``MAX_FILE_BYTES`` travels inline (base64 in ``POST /upload``, the one request
the service had before sessions); a larger one, or any resumed upload, through a session
(:mod:`upload_client.session`). Either way one ``Idempotency-Key`` stands for the logical upload:
every retry of its ``POST /upload`` sends it unchanged, so the service stores the file once.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

from tasks.contract.limits import MAX_FILE_BYTES
from upload_client import session
from upload_client.auth import Signer, resolve
from upload_client.errors import ConfigurationError
from upload_client.http import UPLOAD_ROUTE, ApiClient, base_url, new_session
from upload_client.models import UploadRequest, UploadResult
from upload_client.retry import RetryPolicy


def parse_price(price: Decimal | str | int) -> Decimal:
    """The price as an exact decimal: it is sent as a JSON number with every digit kept."""
    try:
        value = Decimal(str(price))
    except InvalidOperation:
        raise ConfigurationError(f"price {price!r} is not a decimal number") from None
    if not value.is_finite():
        raise ConfigurationError(f"price {price!r} is not a finite number")
    return value


def _ignore_progress(_nbytes: int) -> None:
    """The default progress callback: no display."""


def upload_file(
    path: str | os.PathLike[str],
    *,
    product_id: str,
    product_name: str,
    price: Decimal | str | int,
    api_url: str,
    file_name: str | None = None,
    content_type: str | None = None,
    api_key: str | None = None,
    auth: Signer | None = None,
    parallel: int = 8,
    resume: str | None = None,
    progress: Callable[[int], None] | None = None,
    retry: RetryPolicy | None = None,
) -> UploadResult:
    """Upload the file at ``path`` as the product's file and return the service's answer.

    ``api_url`` is the stack's ``ApiUrl`` (``.../prod/upload``) or the stage's base URL.
    ``file_name`` defaults to the file's own name. ``auth`` overrides the signer
    :func:`upload_client.auth.resolve` picks (an ``x-api-key`` with ``api_key``, else SigV4 with
    the standard credential chain). ``parallel`` parts are sent at once, and held in memory at
    most. ``resume`` continues the open session of that id. ``progress`` is called, on the
    calling thread, with the number of bytes each time more of the file is stored. ``retry`` sets
    the bounds (and the clock) of the retries.
    """
    if parallel < 1:
        raise ConfigurationError("parallel must be at least 1")
    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"{file} is not a file")
    size = file.stat().st_size
    base = base_url(api_url)
    signer = auth or resolve(base, api_key)
    request = UploadRequest(
        product_id=product_id,
        product_name=product_name,
        price=parse_price(price),
        file_name=file_name or file.name,
        content_type=content_type,
    )
    idempotency_key = str(uuid.uuid4())
    report = progress or _ignore_progress
    with new_session(parallel) as http:
        api = ApiClient(base, signer, retry or RetryPolicy(), http)
        if resume is None and size <= MAX_FILE_BYTES:
            data = file.read_bytes()  # small by definition: at most MAX_FILE_BYTES
            body = msgspec.structs.replace(
                request, file_content=base64.b64encode(data).decode("ascii")
            )
            result = api.call(
                "POST", UPLOAD_ROUTE, UploadResult, body, idempotency_key=idempotency_key
            )
            report(len(data))
            return result
        upload = session.Upload(file, size, request, idempotency_key, parallel, report)
        return session.run(api, upload, resume)
