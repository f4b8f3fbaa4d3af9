"""Sizes and shapes: the limits of a request, shared by the edge, the tasks and the tests.

(Time limits and retries are in :mod:`tasks.contract.timing`.)"""

from __future__ import annotations

# Step Functions' hard limit on an execution's input and on every state's payload.
STATE_PAYLOAD_LIMIT_BYTES = 262_144
# API Gateway's limit on a REST request's payload.
API_GATEWAY_PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
PRODUCT_NAME_MAX_CHARS = 256
FILE_NAME_MAX_CHARS = 255
# RFC 6838: type and subtype names are at most 127 characters each.
CONTENT_TYPE_MAX_CHARS = 255
PRICE_UPPER_BOUND = 10**12  # exclusive
# DynamoDB numbers: at most 38 significant digits, a non-zero magnitude from 1E-130 up (the upper
# end, 9.99...E+125, is far above PRICE_UPPER_BOUND).
PRICE_MAX_DIGITS = 38
PRICE_SMALLEST_NONZERO = "1E-130"
# boto3's serializer context (boto3.dynamodb.types.DYNAMODB_CONTEXT) refuses any number it would
# round or clamp: its smallest exponent is Emin - prec + 1 = -165, so the last digit of a stored
# price is at most 165 places after the point.
PRICE_MAX_FRACTION_DIGITS = 165
IDEMPOTENCY_KEY_MAX_CHARS = 128
# The API caller's id in the execution input ($context.identity.caller, an IAM principal id such
# as "AROA...:session" of at most ~90 characters, or the API key id): a bound for the state size.
CALLER_MAX_CHARS = 256
# S3 documents version ids as up to 1,024 bytes.
S3_VERSION_ID_MAX_BYTES = 1_024
# S3: "the user-defined metadata is limited to 2 KB in size", measured as the sum of the bytes of
# the UTF-8 encoding of each key and value (store keeps its object metadata well under it).
S3_USER_METADATA_MAX_BYTES = 2_048


# The largest decoded file whose request still fits the workflow: its largest state (Validate's
# output: the execution input, with an Idempotency-Key and a caller id at their longest, plus the
# validated metadata; Store's result then takes the body's place, so the file never sits beside
# a store receipt or a replayed success body) stays within STATE_PAYLOAD_LIMIT_BYTES when every
# other field is at its maximum length in its longest JSON spelling (each character written as a
# \\uXXXX escape, astral characters as surrogate pairs; the state serialized with every non-ASCII
# character escaped). The body travels as JSON text inside the input, so each of those escapes
# costs one byte more (its backslash escaped again). The worst case is a one-character productId,
# which leaves the file name (held three times: body, upload.fileName, upload.s3Key) the most of
# the S3 key's 1,024 bytes; the longest price is one just above DynamoDB's smallest number,
# 1E-130, with its last digit 165 places after the point (167 characters, in the body and as
# stored). tests/unit/test_limits.py derives this number from the real models, the real validate
# logic and the real request template; change it only together with that test.
MAX_FILE_BYTES = 181_320
