"""The upload sessions' Express workflow: one Session task per request (tasks/session.py), run
synchronously by the API's /uploads routes like /upload runs the upload workflow.

    Session -> Answered        (the task's result is the client's body)
    Session -> Rejected        (a client error: its name and message reach the client)
    Session -> SessionFailed   (anything else: InternalError)

The task writes nothing the client cannot see or retry: a failure leaves at most a multipart
upload without a session item, whose parts the bucket's lifecycle rule removes.
Worst case: 3 + 1 + 3 = 7 s (tasks.contract.timing), well inside API Gateway's 29 s.
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.functions import TaskFunction
from infra.log_groups import encrypted_log_group, states_log_group_name
from infra.settings import Settings
from infra.state_machine import acknowledge_workflow_role, express_state_machine, invoke
from tasks.contract.errors import CLIENT_ERROR_NAMES, INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE
from tasks.contract.names import (
    REJECTED_STATE,
    SESSION_DONE_STATE,
    SESSION_STATE,
    SESSIONS_WORKFLOW_LOG_NAME,
)

SESSION_FAILED_STATE = "SessionFailed"


class SessionWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task: TaskFunction,
        logs_key: kms.IKey,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        session = invoke(
            self,
            SESSION_STATE,
            task,
            payload={
                "operation": sfn.JsonPath.string_at("$.operation"),
                "requestId": sfn.JsonPath.string_at("$.requestId"),
                "caller": sfn.JsonPath.string_at("$.caller"),
                "uploadId": sfn.JsonPath.string_at("$.uploadId"),
                "body": sfn.JsonPath.string_at("$.body"),
            },
            result_path="$.answer",
        )
        rejected = sfn.Fail(
            self, REJECTED_STATE, error_path="$.error.Error", cause_path="$.error.Cause"
        )
        failed = sfn.Fail(
            self, SESSION_FAILED_STATE, error=INTERNAL_ERROR, cause=INTERNAL_ERROR_MESSAGE
        )
        session.add_catch(rejected, errors=list(CLIENT_ERROR_NAMES), result_path="$.error")
        session.add_catch(failed, errors=[sfn.Errors.ALL], result_path="$.error")
        session.next(sfn.Succeed(self, SESSION_DONE_STATE, output_path="$.answer"))
        self.log_group = encrypted_log_group(
            self,
            "LogGroup",
            key=logs_key,
            removal_policy=settings.removal_policy,
            log_group_name=states_log_group_name(SESSIONS_WORKFLOW_LOG_NAME),
        )
        self.state_machine = express_state_machine(
            self,
            session,
            log_group=self.log_group,
            settings=settings,
            comment="Upload sessions: open, sign parts, describe, abort",
        )
        acknowledge_workflow_role(self.state_machine.role, [task])
