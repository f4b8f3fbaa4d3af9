"""Names shared by the tasks, the CDK app, local mode and the operators' CLI."""

from __future__ import annotations

from typing import Final

# -- the tasks' environment (set by infra/functions.py, read by the tasks) ----------------------
UPLOAD_BUCKET_NAME: Final = "UPLOAD_BUCKET_NAME"
UPLOAD_KEY_ARN: Final = "UPLOAD_KEY_ARN"  # the bucket's KMS key (SSE-KMS with this key)
METADATA_TABLE_NAME: Final = "METADATA_TABLE_NAME"
IDEMPOTENCY_TABLE_NAME: Final = "IDEMPOTENCY_TABLE_NAME"
LEDGER_TABLE_NAME: Final = "LEDGER_TABLE_NAME"  # intents, commit records, item leases
SESSIONS_TABLE_NAME: Final = "SESSIONS_TABLE_NAME"  # upload sessions (tasks.contract.sessions)
MAX_UPLOAD_BYTES: Final = "MAX_UPLOAD_BYTES"  # the largest file a session may declare
MAX_OPEN_SESSIONS: Final = "MAX_OPEN_SESSIONS"  # open sessions per caller
ORPHAN_GRACE_SECONDS: Final = "ORPHAN_GRACE_SECONDS"  # the sweep's grace period
SWEEP_DELETES_ORPHANS: Final = "SWEEP_DELETES_ORPHANS"  # "true": the sweep deletes what it finds
# Local mode only: how many times slower than AWS its emulator is right now; the tasks stretch
# their SDK timeouts and deadline by it (never set on AWS, where it is 1).
SDK_TIMEOUT_SCALE: Final = "SDK_TIMEOUT_SCALE"
ALLOWED_CONTENT_TYPES: Final = "ALLOWED_CONTENT_TYPES"  # validate's allowlist; absent: any
# Powertools' own settings.
POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"

# -- logs and metrics --------------------------------------------------------------------------
SERVICE: Final = "upload"  # POWERTOOLS_SERVICE_NAME, the metrics' "service" dimension
NAMESPACE: Final = "UploadService"  # POWERTOOLS_METRICS_NAMESPACE
UPLOADS_STORED: Final = "UploadsStored"  # Count, by record when an upload completed
BYTES_STORED: Final = "BytesStored"  # Bytes, by record when an upload completed
REJECTIONS: Final = "Rejections"  # Count, by validate and store, extra dimension reason=<error>
COMPENSATIONS: Final = "Compensations"  # Count, by compensate when it completed
# Count, by compensate or report: a failed compensation left something behind.
COMPENSATION_FAILURES: Final = "CompensationFailures"
# Count, by a metric filter on the workflow's log group: executions that ended in
# CompensationFailed, whatever reported them (the backstop of the alarm on CompensationFailures).
COMPENSATION_FAILED_EXECUTIONS: Final = "CompensationFailedExecutions"
# Count, from the sessions workflow's log: executions that failed or timed out, not rejected.
SESSION_FAILED_EXECUTIONS: Final = "SessionFailedExecutions"
ORPHAN_VERSIONS: Final = "OrphanVersions"  # Count, by the sweep: uncommitted versions it found
ORPHANS_DELETED: Final = "OrphansDeleted"  # Count, by the sweep: those it deleted
SERVICE_DIMENSION: Final = "service"
REASON_DIMENSION: Final = "reason"

# -- the tasks: module names under tasks/ ------------------------------------------------------
VALIDATE: Final = "validate"
STORE: Final = "store"
RECORD: Final = "record"
COMPENSATE: Final = "compensate"
REPORT: Final = "report"  # reports what a compensation that crashed or timed out left behind
SWEEP: Final = "sweep"  # scheduled, outside the workflow: finds uncommitted versions
SESSION: Final = "session"  # the upload sessions' routes (their own Express workflow)
# The workflow's Lambda tasks, and every function of the stack.
WORKFLOW_TASKS: Final = (VALIDATE, STORE, RECORD, COMPENSATE, REPORT)
TASKS: Final = (*WORKFLOW_TASKS, SWEEP, SESSION)


def task_title(task: str) -> str:
    """A task's name as its state id, construct id and stack outputs spell it (``Store``)."""
    return task.capitalize()


# -- the workflow's state ids (infra/state_machine.py) ---------------------------------------
VALIDATE_STATE: Final = task_title(VALIDATE)
STORE_STATE: Final = task_title(STORE)
RECORD_STATE: Final = task_title(RECORD)
COMPENSATE_STATE: Final = task_title(COMPENSATE)
REPORT_ORPHAN_STATE: Final = "ReportOrphan"
STORE_FAILED_STATE: Final = "StoreFailed"
RECORD_FAILED_STATE: Final = "RecordFailed"
DISCARD_FILE_CONTENT_STATE: Final = "DiscardFileContent"
ALREADY_UPLOADED_STATE: Final = "AlreadyUploaded"
UPLOADED_STATE: Final = "Uploaded"
REPLAYED_STATE: Final = "Replayed"
REJECTED_STATE: Final = "Rejected"
UPLOAD_FAILED_STATE: Final = "UploadFailed"
COMPENSATION_FAILED_STATE: Final = "CompensationFailed"
# A session's commit whose stored bytes contradict its content type: compensated, then refused.
CONTENT_MISMATCH_STATE: Final = "ContentMismatchFound"
COMPENSATED_STATE: Final = "Compensated"
CONTENT_REJECTED_STATE: Final = "ContentRejected"

# -- the sessions workflow's state ids (infra/sessions.py) ------------------------------------
SESSION_STATE: Final = task_title(SESSION)
SESSION_DONE_STATE: Final = "Answered"

# The workflows' log groups: /aws/vendedlogs/states/<stack>-<stack id's UUID>/<workflow> (the
# prefix Step Functions recommends; infra.log_groups builds the names, ops finds them by them).
STATES_LOG_GROUP_PREFIX: Final = "/aws/vendedlogs/states/"
UPLOAD_WORKFLOW_LOG_NAME: Final = "upload-workflow"
SESSIONS_WORKFLOW_LOG_NAME: Final = "sessions-workflow"
