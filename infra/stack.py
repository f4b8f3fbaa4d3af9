"""The one stack: composes storage, task functions, the upload and sessions workflows, the API,
monitoring, the saved log queries and the orphan sweep's schedule; declares outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.api import UploadApi
from infra.functions import TaskFunctions, refuse_snap_start_regions
from infra.monitoring import Monitoring
from infra.saved_queries import SavedQueries
from infra.sessions import SessionWorkflow
from infra.settings import Settings
from infra.state_machine import UploadWorkflow
from infra.storage import Storage
from infra.sweep import SweepSchedule

STACK_ID = "UploadService"


class UploadServiceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        storage = Storage(self, "Storage", settings=settings)
        functions = TaskFunctions(self, "Tasks", storage=storage, settings=settings)
        if settings.snap_start:
            refuse_snap_start_regions(self)
        workflow = UploadWorkflow(
            self, "Workflow", functions=functions, logs_key=storage.logs_key, settings=settings
        )
        sessions = SessionWorkflow(
            self,
            "Sessions",
            task=functions.session,
            logs_key=storage.logs_key,
            settings=settings,
        )
        api = UploadApi(
            self,
            "Edge",
            state_machine=workflow.state_machine,
            sessions_machine=sessions.state_machine,
            logs_key=storage.logs_key,
            settings=settings,
        )
        monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=workflow.state_machine,
            stage=api.stage,
            functions=functions,
            workflow_log_group=workflow.log_group,
            sessions_log_group=sessions.log_group,
            settings=settings,
        )
        SavedQueries(
            self,
            "Queries",
            functions=functions,
            workflow_log_group=workflow.log_group,
            sessions_log_group=sessions.log_group,
            access_log_group=api.access_log_group,
        )
        SweepSchedule(self, "Sweep", sweep=functions.sweep)
        self._add_outputs(storage, functions, workflow, sessions, api, monitoring)

    def _add_outputs(
        self,
        storage: Storage,
        functions: TaskFunctions,
        workflow: UploadWorkflow,
        sessions: SessionWorkflow,
        api: UploadApi,
        monitoring: Monitoring,
    ) -> None:
        """What operators and the CLI look up after a deploy: endpoints, names, ARNs."""
        outputs: dict[str, str] = {
            "ApiUrl": api.url,
            "StateMachineArn": workflow.state_machine.state_machine_arn,
            "BucketName": storage.bucket.bucket_name,
            "TableName": storage.table.table_name,
            "IdempotencyTableName": storage.idempotency_table.table_name,
            "LedgerTableName": storage.ledger_table.table_name,
            "SessionsTableName": storage.sessions_table.table_name,
            "SessionsStateMachineArn": sessions.state_machine.state_machine_arn,
            "SessionsLogGroupName": sessions.log_group.log_group_name,
            "ApiAccessLogGroupName": api.access_log_group.log_group_name,
            "StateMachineLogGroupName": workflow.log_group.log_group_name,
            "DashboardName": monitoring.dashboard.dashboard_name,
        }
        for task in functions.all:
            outputs[f"{task.spec.title}FunctionArn"] = task.function.function_arn
            outputs[f"{task.spec.title}LogGroupName"] = task.log_group.log_group_name
        if monitoring.topic is not None:
            outputs["AlarmTopicArn"] = monitoring.topic.topic_arn
        if api.api_key is not None:
            outputs["ApiKeyId"] = api.api_key.key_id
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
