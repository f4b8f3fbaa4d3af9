"""The four task functions, each with its own role, log group and least-privilege policy."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from workflow import bundling
from workflow.compliance import acknowledge
from workflow.storage import UPLOAD_PREFIX, Storage

LOG_RETENTION = logs.RetentionDays.ONE_YEAR
MEMORY_MB = 1024  # short cold starts; no reserved concurrency

COMMON_ENVIRONMENT: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "upload",
    "POWERTOOLS_METRICS_NAMESPACE": "UploadService",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class TaskSpec:
    name: str  # module name under tasks/
    timeout_seconds: int  # the Lambda timeout, also the state's TimeoutSeconds

    @property
    def title(self) -> str:
        return self.name.capitalize()

    @property
    def handler(self) -> str:
        return f"tasks.{self.name}.handler"


# The time budget these numbers belong to is written out in workflow/state_machine.py.
VALIDATE = TaskSpec("validate", 2)
STORE = TaskSpec("store", 3)
RECORD = TaskSpec("record", 2)
COMPENSATE = TaskSpec("compensate", 3)
TASKS: tuple[TaskSpec, ...] = (VALIDATE, STORE, RECORD, COMPENSATE)


class TaskFunction(Construct):
    """One task: function, role (logs + X-Ray only until granted more) and retained log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: TaskSpec,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        logs_key: kms.IKey,
        environment: dict[str, str],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            encryption_key=logs_key,
            retention=LOG_RETENTION,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Upload service {spec.name} task",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=code,
            layers=[layer],
            role=self.role,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=MEMORY_MB,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**COMMON_ENVIRONMENT, **environment},
            description=f"Upload service: {spec.name} task",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), "
            "which support no resource-level permissions.",
        )
        runtime_reason = (
            "python3.13 is the runtime the project targets and tests (INTERFACES.md); "
            "a runtime upgrade is a deliberate, tested change."
        )
        acknowledge(self.function, "AwsSolutions-L1", runtime_reason)
        acknowledge(self.function, "Serverless-LambdaLatestVersion", runtime_reason)
        acknowledge(
            self.function,
            "Serverless-LambdaDLQ",
            "invoked synchronously by Step Functions only; every failure is caught by the "
            "state machine (compensated or reported), never queued for a retry.",
        )


class TaskFunctions(Construct):
    """The four task functions sharing one code asset and one dependencies layer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        destroy_on_delete: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN
        code = bundling.tasks_code()
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=bundling.dependencies_code(),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_13],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="Upload task dependencies (tasks/requirements.txt)",
        )

        def task(spec: TaskSpec, environment: dict[str, str]) -> TaskFunction:
            return TaskFunction(
                self,
                spec.title,
                spec=spec,
                code=code,
                layer=self.layer,
                logs_key=storage.logs_key,
                environment=environment,
                removal_policy=removal,
            )

        bucket = storage.bucket
        # validate: no AWS permission beyond its own logs and X-Ray.
        self.validate = task(VALIDATE, {})
        self.store = task(
            STORE,
            {
                "UPLOAD_BUCKET_NAME": bucket.bucket_name,
                "UPLOAD_KEY_ARN": storage.bucket_key.key_arn,
            },
        )
        self.store.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[storage.uploads_arn()])
        )
        # A retried Store finds and deletes (by VersionId) the versions an earlier attempt of
        # the same request left behind: the same lookup compensate makes.
        self.store.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObjectVersion", "s3:GetObjectVersion"],
                resources=[storage.uploads_arn()],
            )
        )
        self.store.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucketVersions"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{UPLOAD_PREFIX}*"}},
            )
        )
        self.store.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[storage.bucket_key.key_arn],
            )
        )
        self.record = task(RECORD, {"METADATA_TABLE_NAME": storage.table.table_name})
        self.record.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[storage.table.table_arn])
        )
        self.record.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[storage.table_key.key_arn],
            )
        )
        self.compensate = task(COMPENSATE, {"UPLOAD_BUCKET_NAME": bucket.bucket_name})
        self.compensate.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObjectVersion", "s3:GetObjectVersion"],
                resources=[storage.uploads_arn()],
            )
        )
        self.compensate.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucketVersions"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{UPLOAD_PREFIX}*"}},
            )
        )
        uploads_finding = f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/uploads/*]"
        for role in (self.store.role, self.compensate.role):
            acknowledge(
                role,
                uploads_finding,
                "object actions are limited to the uploads/ prefix, where every key is "
                "uploads/<productId>/<fileName>.",
            )
        self.all: tuple[TaskFunction, ...] = (
            self.validate,
            self.store,
            self.record,
            self.compensate,
        )


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id cdk-nag names a resource by in its findings."""
    element = construct.node.default_child
    assert isinstance(element, CfnElement)
    return Stack.of(construct).get_logical_id(element)
