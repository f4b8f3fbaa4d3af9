"""The Express workflow: Validate -> Store -> DiscardFileContent -> AlreadyUploaded -> Record ->
Uploaded (or, for an idempotent replay, AlreadyUploaded -> Replayed). A failure after the file
may have landed goes StoreFailed / RecordFailed -> Compensate -> UploadFailed; a compensation
that fails reports its orphan itself (CompensationFailed), and one that crashed or timed out is
reported by ReportOrphan on its way to CompensationFailed.

Time budget (API Gateway gives up at 29 s), from tasks.contract.timing, where every number lives
and why. Each task state's TimeoutSeconds is its function's timeout plus the start margin (1 s:
the invoke and a cold start run on Step Functions' clock, not on the function's), and the
function's SDK calls end before its own timeout. A retried task takes at most
``timeout + interval + timeout``::

    Validate    2 + 1 + 2 =  5 s   (function 1 s)
    Store       3 + 1 + 3 =  7 s   (function 2 s)
    Record      2 + 1 + 2 =  5 s   (function 1 s)
    Compensate  3 + 1 + 3 =  7 s   (function 2 s)
    ReportOrphan         3 s       (function 2 s, no retry: if it fails, the sweep reports)
    worst path (Validate, Store, Record fails, Compensate crashes, ReportOrphan)  = 27 s
    state machine TimeoutSeconds (backstop)                                       = 28 s < 29 s

A Store failure goes to Compensate directly (5 + 7 + 7 + 3 = 22 s), so the longest path is the
one through Record. tests/infrastructure recomputes this from the synthesized definition.

Idempotency-Key (tasks.contract.idempotency): Store claims the key before its PUT; the claim's
lease (60 s) outlives the state machine's timeout. A replay of a completed request
(``$.stored.replay``) skips Record. A conflict (IdempotencyConflict), like another upload of the
same item holding its lease (UploadInProgress), comes from Store before any PUT and ends in
Rejected (409) without Compensate: nothing was stored.
A retried Store (``attempt`` = ``$$.State.RetryCount`` > 0) also deletes the versions its earlier
attempt left (one whose PUT returned before the attempt failed). Compensate gets ``attempt`` too:
a transient failure on its first attempt raises TransientStorageError (its Retry runs it again:
every step is idempotent); only the last attempt reports and fails with CompensationFailed. It
also gets the state that failed and its error, which say whether a write of the request may still
be in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.compliance import acknowledge
from infra.functions import TaskFunction, TaskFunctions, logical_id
from infra.log_groups import encrypted_log_group, states_log_group_name
from infra.settings import Settings
from tasks.contract.errors import (
    CLIENT_ERROR_NAMES,
    INTERNAL_ERROR,
    INTERNAL_ERROR_MESSAGE,
    ORPHAN_REPORTED_MESSAGE,
    CompensationFailed,
    ContentMismatch,
    TransientStorageError,
)
from tasks.contract.names import (
    ALREADY_UPLOADED_STATE,
    COMPENSATE_STATE,
    COMPENSATED_STATE,
    COMPENSATION_FAILED_STATE,
    CONTENT_MISMATCH_STATE,
    CONTENT_REJECTED_STATE,
    DISCARD_FILE_CONTENT_STATE,
    RECORD_FAILED_STATE,
    RECORD_STATE,
    REJECTED_STATE,
    REPLAYED_STATE,
    REPORT_ORPHAN_STATE,
    STORE_FAILED_STATE,
    STORE_STATE,
    UPLOAD_FAILED_STATE,
    UPLOAD_WORKFLOW_LOG_NAME,
    UPLOADED_STATE,
    VALIDATE_STATE,
)
from tasks.contract.timing import STATE_MACHINE_TIMEOUT_SECONDS, TIMINGS

LAMBDA_SERVICE_ERRORS: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)


@dataclass(frozen=True)
class _FailStates:
    """Where a failed upload ends: the states several tasks' catches lead to."""

    rejected: sfn.Fail  # a client error (4xx); nothing was stored
    # A session's stored file contradicts its content type: compensated, then a 400.
    content_rejected: sfn.Fail
    upload_failed: sfn.Fail  # any other failure; anything stored has been compensated
    compensation_failed: sfn.Fail  # compensation failed too; the orphan has been reported


class UploadWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: TaskFunctions,
        logs_key: kms.IKey,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        fail = self._build_fail_states()
        # Built before the happy path: Store's and Record's catches lead to it.
        report = self._build_report_orphan(functions.report, fail)
        compensate = self._build_compensate(functions.compensate, fail, report)
        definition = (
            self._build_validate(functions.validate, fail)
            .next(self._build_store(functions.store, fail, compensate))
            .next(self._build_discard_file_content())
            .next(self._build_already_uploaded(self._build_record(functions.record, compensate)))
        )
        self.log_group = encrypted_log_group(
            self,
            "LogGroup",
            key=logs_key,
            removal_policy=settings.removal_policy,
            log_group_name=states_log_group_name(UPLOAD_WORKFLOW_LOG_NAME),
        )
        self.state_machine = express_state_machine(
            self,
            definition,
            log_group=self.log_group,
            settings=settings,
            comment="Upload: validate, store, record; compensate a stored file on failure, "
            "report what a compensation could not undo",
        )
        self._add_acknowledgements(functions)

    def _build_fail_states(self) -> _FailStates:
        return _FailStates(
            # A client error replaces the request body (``ResultPath: $.body``): nothing more is
            # done with the body, and an error cause beside a large file could exceed the 256 KiB
            # state.
            rejected=sfn.Fail(
                self, REJECTED_STATE, error_path="$.body.Error", cause_path="$.body.Cause"
            ),
            content_rejected=sfn.Fail(
                self,
                CONTENT_REJECTED_STATE,
                error_path="$.failure.error",
                cause_path="$.failure.cause",
            ),
            upload_failed=sfn.Fail(
                self, UPLOAD_FAILED_STATE, error=INTERNAL_ERROR, cause=INTERNAL_ERROR_MESSAGE
            ),
            compensation_failed=sfn.Fail(
                self,
                COMPENSATION_FAILED_STATE,
                error=CompensationFailed.__name__,
                cause=ORPHAN_REPORTED_MESSAGE,
            ),
        )

    def _build_validate(self, task: TaskFunction, fail: _FailStates) -> tasks.LambdaInvoke:
        validate = invoke(
            self,
            VALIDATE_STATE,
            task,
            payload={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "idempotencyKey": sfn.JsonPath.string_at("$.idempotencyKey"),
                "caller": sfn.JsonPath.string_at("$.caller"),
                "body": sfn.JsonPath.string_at("$.body"),
            },
            result_path="$.upload",
            transient_errors=(),
        )
        validate.add_catch(fail.rejected, errors=list(CLIENT_ERROR_NAMES), result_path="$.body")
        validate.add_catch(fail.upload_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        return validate

    def _build_store(
        self, task: TaskFunction, fail: _FailStates, compensate: tasks.LambdaInvoke
    ) -> tasks.LambdaInvoke:
        store = invoke(
            self,
            STORE_STATE,
            task,
            payload={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "upload": sfn.JsonPath.object_at("$.upload"),
                # The client's JSON text, whose fileContent validate checked.
                "body": sfn.JsonPath.string_at("$.body"),
                # A retry deletes the versions an earlier attempt of this request left behind
                # (a PUT that returned before the attempt timed out), searching from the start.
                "attempt": sfn.JsonPath.number_at("$$.State.RetryCount"),
                "startedAt": sfn.JsonPath.string_at("$$.Execution.StartTime"),
            },
            # Store's result (like its error, below) takes the request body's place: the file's
            # bytes leave the state with Store's output. Its largest result, the first success
            # body replayed for an idempotent repeat, never sits beside the file.
            result_path="$.body",
            # Not WriteOutcomeUnknown (a PUT sent and never answered, which may still land): that
            # upload is compensated, the item's lease kept and the request left to the sweep, so
            # a retried Store never has a PUT of its own still in flight.
            transient_errors=(TransientStorageError.__name__,),
        )
        # A failed Store's error replaces the request body: the file is no longer needed, and a
        # long error cause beside it could push the state over 256 KiB, which no Catch handles
        # (States.DataLimitExceeded) — Compensate would never run.
        # An IdempotencyConflict or UploadInProgress comes before the PUT: nothing to undo, so it
        # ends in Rejected (409) without Compensate.
        store.add_catch(fail.rejected, errors=list(CLIENT_ERROR_NAMES), result_path="$.body")
        # A session's file whose first bytes contradict its content type landed before Store
        # could tell: compensated like any failure, then answered 400 with the task's message
        # (its cause, which a Lambda error always has).
        mismatch = self._build_failed(
            CONTENT_MISMATCH_STATE,
            failed_task=STORE_STATE,
            error_path="$.body.Error",
            cause_path="$.body.Cause",
        )
        store.add_catch(mismatch, errors=[ContentMismatch.__name__], result_path="$.body")
        mismatch.next(compensate)
        store_failed = self._build_failed(
            STORE_FAILED_STATE, failed_task=STORE_STATE, error_path="$.body.Error"
        )
        store.add_catch(store_failed, errors=[sfn.Errors.ALL], result_path="$.body")
        store_failed.next(compensate)
        return store

    def _build_discard_file_content(self) -> sfn.Pass:
        """From here on the file's bytes are gone from the state: Record and Compensate never
        carry them (two copies of a large file would break the 256 KiB state limit). Store's
        result moves to $.stored; the raw Idempotency-Key and caller stay behind (the upload
        carries their hash)."""
        return sfn.Pass(
            self,
            DISCARD_FILE_CONTENT_STATE,
            parameters={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "upload": sfn.JsonPath.object_at("$.upload"),
                "stored": sfn.JsonPath.object_at("$.body"),
            },
        )

    def _build_already_uploaded(self, record: tasks.LambdaInvoke) -> sfn.Choice:
        """Record, unless Store found this Idempotency-Key completed with the same body: then
        Store's result is the first request's success body (Replayed), and nothing was stored."""
        already_uploaded = sfn.Choice(self, ALREADY_UPLOADED_STATE)
        replay = sfn.Condition.and_(
            sfn.Condition.is_present("$.stored.replay"),
            sfn.Condition.boolean_equals("$.stored.replay", True),
        )
        replayed = sfn.Succeed(self, REPLAYED_STATE, output_path="$.stored.receipt")
        return already_uploaded.when(replay, replayed).otherwise(record)

    def _build_record(
        self, task: TaskFunction, compensate: tasks.LambdaInvoke
    ) -> tasks.LambdaInvoke:
        record = invoke(
            self,
            RECORD_STATE,
            task,
            payload={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "upload": sfn.JsonPath.object_at("$.upload"),
                "stored": sfn.JsonPath.object_at("$.stored"),
            },
            result_path="$.receipt",
        )
        record_failed = self._build_failed(
            RECORD_FAILED_STATE, failed_task=RECORD_STATE, error_path="$.error.Error"
        )
        record.add_catch(record_failed, errors=[sfn.Errors.ALL], result_path="$.error")
        record_failed.next(compensate)
        record.next(sfn.Succeed(self, UPLOADED_STATE, output_path="$.receipt"))
        return record

    def _build_failed(
        self, state_id: str, *, failed_task: str, error_path: str, cause_path: str | None = None
    ) -> sfn.Pass:
        """What Compensate needs after a task failed: the request, the upload, and which state
        failed with which error (whether a write of the request may still be in flight,
        tasks/compensate.py); with ``cause_path``, the error's cause for the client too."""
        failure: dict[str, object] = {
            "state": failed_task,
            "error": sfn.JsonPath.string_at(error_path),
        }
        if cause_path is not None:
            failure["cause"] = sfn.JsonPath.string_at(cause_path)
        return sfn.Pass(
            self,
            state_id,
            parameters={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "upload": sfn.JsonPath.object_at("$.upload"),
                "failure": failure,
            },
        )

    def _build_compensate(
        self, task: TaskFunction, fail: _FailStates, report: tasks.LambdaInvoke
    ) -> tasks.LambdaInvoke:
        compensate = invoke(
            self,
            COMPENSATE_STATE,
            task,
            payload={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                # A transient failure with a retry still to come is left to that retry; the
                # last attempt reports what it could not undo (tasks/compensate.py).
                "attempt": sfn.JsonPath.number_at("$$.State.RetryCount"),
                # The metadata item Record may have written (restored or deleted if it did).
                "productId": sfn.JsonPath.string_at("$.upload.productId"),
                "productName": sfn.JsonPath.string_at("$.upload.productName"),
                "s3Key": sfn.JsonPath.string_at("$.upload.s3Key"),
                "startedAt": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                # The claim to release (null without an Idempotency-Key).
                "idempotencyId": sfn.JsonPath.string_at("$.upload.idempotencyId"),
                "failedState": sfn.JsonPath.string_at("$.failure.state"),
                "error": sfn.JsonPath.string_at("$.failure.error"),
                # The upload session whose commit failed (null for an inline file).
                "sessionId": sfn.JsonPath.string_at("$.upload.sessionId"),
            },
            result_path="$.compensation",
        )
        # CompensationFailed: it reported what it could not undo. Anything else (a timeout, a
        # crash, a malformed input): it could not report, so ReportOrphan does.
        compensate.add_catch(
            fail.compensation_failed,
            errors=[CompensationFailed.__name__],
            result_path="$.compensationError",
        )
        compensate.add_catch(report, errors=[sfn.Errors.ALL], result_path="$.compensationError")
        # Compensated: a content mismatch (its cause kept) is the client's 400, anything else
        # an internal error.
        compensated = sfn.Choice(self, COMPENSATED_STATE)
        compensated.when(sfn.Condition.is_present("$.failure.cause"), fail.content_rejected)
        compensate.next(compensated.otherwise(fail.upload_failed))
        return compensate

    def _build_report_orphan(self, task: TaskFunction, fail: _FailStates) -> tasks.LambdaInvoke:
        """Report what a compensation that crashed or timed out left (tasks/report.py). It ends
        in CompensationFailed whatever happens: if it fails too, the sweep still reports."""
        report = invoke(
            self,
            REPORT_ORPHAN_STATE,
            task,
            payload={
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "productId": sfn.JsonPath.string_at("$.upload.productId"),
                "productName": sfn.JsonPath.string_at("$.upload.productName"),
                "s3Key": sfn.JsonPath.string_at("$.upload.s3Key"),
                "startedAt": sfn.JsonPath.string_at("$$.Execution.StartTime"),
                "error": sfn.JsonPath.string_at("$.compensationError.Error"),
                "sessionId": sfn.JsonPath.string_at("$.upload.sessionId"),
            },
            result_path="$.report",
        )
        report.add_catch(
            fail.compensation_failed, errors=[sfn.Errors.ALL], result_path="$.reportError"
        )
        report.next(fail.compensation_failed)
        return report

    def _add_acknowledgements(self, functions: TaskFunctions) -> None:
        acknowledge_workflow_role(self.state_machine.role, functions.workflow)


def express_state_machine(
    scope: Construct,
    definition: sfn.IChainable,
    *,
    log_group: logs.ILogGroup,
    settings: Settings,
    comment: str,
) -> sfn.StateMachine:
    """An Express state machine run synchronously by the API: its own log group (level ALL),
    X-Ray, and the backstop timeout below API Gateway's 29 s."""
    return sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_type=sfn.StateMachineType.EXPRESS,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        timeout=Duration.seconds(STATE_MACHINE_TIMEOUT_SECONDS),
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group,
            level=sfn.LogLevel.ALL,
            # Copies execution input (an inline file!) into every log event: debugging only.
            include_execution_data=settings.log_execution_data,
        ),
        comment=comment,
    )


def acknowledge_workflow_role(role: iam.IRole, invoked: Iterable[TaskFunction]) -> None:
    """cdk-nag's wildcard findings on a state machine's role, each with its reason."""
    for task in invoked:
        if task.alias is not None:
            continue  # an alias is granted by its own ARN only: no wildcard to acknowledge
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(task.function)}.Arn>:*]",
            f"versions and aliases of the {task.spec.name} function (CDK's grant for "
            "lambda:InvokeFunction); no other function is invocable.",
        )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, "
        "DescribeResourcePolicies, PutResourcePolicy) and X-Ray actions support no "
        "resource-level permissions.",
    )


def invoke(
    scope: Construct,
    state_id: str,
    task: TaskFunction,
    *,
    payload: dict[str, object],
    result_path: str,
    transient_errors: tuple[str, ...] = (TransientStorageError.__name__,),
) -> tasks.LambdaInvoke:
    """A Lambda task whose result is the function's payload, with our timeout and retry
    (tasks.contract.timing), not CDK's."""
    timing = TIMINGS[task.spec.name]
    invoke = tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=task.invocable,  # the alias when versions are published
        payload=sfn.TaskInput.from_object(payload),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_path=result_path,
        task_timeout=sfn.Timeout.duration(Duration.seconds(timing.task_timeout_seconds)),
    )
    if timing.retry is not None:
        invoke.add_retry(
            errors=[*LAMBDA_SERVICE_ERRORS, *transient_errors],
            max_attempts=timing.retry.max_attempts,
            interval=Duration.seconds(timing.retry.interval_seconds),
            backoff_rate=timing.retry.backoff_rate,
        )
    return invoke
