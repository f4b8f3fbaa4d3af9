"""Size and shape limits of a request, shared by the edge model, the tasks and the tests."""

from __future__ import annotations

# Step Functions' hard limit on an execution's input and on every state's payload.
STATE_PAYLOAD_LIMIT_BYTES = 262_144

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
PRODUCT_NAME_MAX_CHARS = 256
FILE_NAME_MAX_CHARS = 255
# RFC 6838: type and subtype names are at most 127 characters each.
CONTENT_TYPE_MAX_CHARS = 255
PRICE_UPPER_BOUND = 10**12  # exclusive
IDEMPOTENCY_KEY_MAX_CHARS = 128
# The API caller's id in the execution input ($context.identity.caller, an IAM principal id such
# as "AROA...:session" of at most ~90 characters, or the API key id): a bound for the state size.
CALLER_MAX_CHARS = 256
# S3 documents version ids as up to 1,024 bytes.
S3_VERSION_ID_MAX_BYTES = 1_024
# S3: "the user-defined metadata is limited to 2 KB in size", measured as the sum of the bytes of
# the UTF-8 encoding of each key and value (store keeps its object metadata well under it).
S3_USER_METADATA_MAX_BYTES = 2_048

# The Retry every task state has (MaxAttempts; workflow/state_machine.py builds its retriers from
# this number and writes down the time budget it implies). Compensate reads it too: an attempt
# below it still has a retry coming, so a transient failure is left to that retry, unreported.
RETRY_MAX_ATTEMPTS = 1

# The largest decoded file whose request still fits the workflow: its largest state (Validate's
# output: the execution input, with an Idempotency-Key and a caller id at their longest, plus the
# validated metadata; Store's result then takes the body's place, so the file never sits beside
# a store receipt or a replayed success body) stays within STATE_PAYLOAD_LIMIT_BYTES when every
# other field is at its maximum length in its longest JSON spelling (each character written as a
# \\uXXXX escape, astral characters as surrogate pairs; the state serialized with every non-ASCII
# character escaped). The worst case is a one-character productId, which leaves the file name
# (held three times: body, upload.fileName, upload.s3Key) the most of the S3 key's 1,024 bytes;
# the longest price is a 17-digit one just above DynamoDB's smallest number, 1E-130 (148
# characters as stored). tests/unit/test_limits.py derives this number from the real models, the
# real validate logic and the real request template; change it only together with that test.
MAX_FILE_BYTES = 183_630
