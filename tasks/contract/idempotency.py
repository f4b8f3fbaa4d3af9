"""The Idempotency-Key guarantee (docs/api.md, "Guarantees"): names, numbers and pure functions.

Design. A request with an ``Idempotency-Key`` header claims the key in the idempotency table
before anything is stored, and the claim lives from Store to Record:

- validate derives two hashes (this module, no AWS call): ``idempotencyId`` =
  sha256(caller + "\\n" + key), the table's partition key, so two callers' keys never collide
  and no client-chosen text is stored; ``fingerprint`` = sha256 of the canonical JSON body, so a
  replay is recognised by content, not by spelling.
- store (``tasks.core.claims.claim``), before its PutObject, writes the claim
  ``IN_PROGRESS`` with a short lease (:data:`CLAIM_SECONDS`) in one conditional PutItem: only
  if the key is free, its previous claim expired, or this very request holds it (a retried
  Store). If the claim is held: another body -> ``IdempotencyConflict``; the same body,
  ``COMPLETED`` -> the first request's success body is replayed and nothing is stored; the same
  body still ``IN_PROGRESS`` -> ``IdempotencyConflict`` (retry shortly).
- record writes the metadata item and marks the claim ``COMPLETED`` (with the success body and a
  24 h expiry) in one TransactWriteItems, conditional on this request still holding the claim:
  a 200 and a completed claim can never disagree.
- compensate deletes the versions and releases the claim (conditional on holding it), so a client
  may retry after a 500.

Why not Powertools' ``@idempotent``: it wraps one function call and keeps its record for the
duration of that call. Here the unit of work spans three Lambda tasks orchestrated by Step
Functions (the claim must be taken before the S3 PUT in Store, completed atomically with the
metadata write in Record, and released by Compensate); decorating one task would either not cover
the S3 write or not cover the metadata write. The conditional-write protocol above is the same
idea (DynamoDB record, IN_PROGRESS/COMPLETED, expiry) spread across the workflow.

Expiry is checked in every condition (``expiresAt < :now``), never left to DynamoDB's TTL, which
deletes expired items only eventually; TTL just keeps the table small.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Final

# The table's attributes.
KEY_ATTRIBUTE: Final = "idempotencyKey"  # partition key: the idempotencyId
EXPIRES_ATTRIBUTE: Final = "expiresAt"  # epoch seconds; the table's TTL attribute
STATUS_IN_PROGRESS: Final = "IN_PROGRESS"
STATUS_COMPLETED: Final = "COMPLETED"

# A claim's lease while the workflow runs: longer than the state machine's timeout (25 s) plus
# clock skew, so a live execution never loses its claim; an execution that died without
# releasing it (e.g. timed out) blocks its key for at most this long.
CLAIM_SECONDS: Final = 60
# How long a completed request is replayed (docs/api.md: 24 hours).
REPLAY_SECONDS: Final = 24 * 60 * 60

DIFFERENT_BODY_MESSAGE: Final = "The Idempotency-Key was used before with a different body."
IN_PROGRESS_MESSAGE: Final = (
    "A request with this Idempotency-Key is still in progress; retry in a few seconds."
)


def idempotency_id(caller: str, key: str) -> str:
    """The stored key: sha256 hex of ``caller`` + newline + ``key`` (keys are scoped per caller;
    the newline cannot occur in either part, so no two pairs give the same text)."""
    return hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()


def fingerprint(body: object) -> str:
    """sha256 hex of the body's canonical JSON: sorted keys, no insignificant whitespace, and
    every number in one spelling, so that equal JSON values are the same body (``1.0``, ``1`` and
    ``1e0`` alike, as a client that re-serializes a body may write them)."""
    return hashlib.sha256(canonical_json(body).encode("utf-8", "surrogatepass")).hexdigest()


def canonical_json(value: object) -> str:
    """``value`` (parsed JSON: numbers as int, float or Decimal) in its canonical spelling."""
    if isinstance(value, dict):
        members = (
            f"{json.dumps(str(name), ensure_ascii=False)}:{canonical_json(item)}"
            for name, item in sorted(value.items())
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _canonical_number(value)
    return json.dumps(value, ensure_ascii=False)


def _canonical_number(value: int | float | Decimal) -> str:
    """The number's digits without trailing zeros and its exponent: ``1.50`` -> ``15E-1``."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        return json.dumps(str(number))
    if number.is_zero():
        return "0"
    sign, digits, exponent = number.as_tuple()
    text = "".join(map(str, digits))
    significant = text.rstrip("0")  # exact, unlike normalize(), which rounds to 28 digits
    exponent = int(exponent) + len(text) - len(significant)
    return f"{'-' if sign else ''}{significant}E{exponent}"
