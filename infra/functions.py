"""The four task functions, each with its own role, log group and least-privilege policy."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnElement, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from infra import bundling
from infra.compliance import acknowledge, skip_checkov
from infra.log_groups import encrypted_log_group
from infra.storage import Storage
from tasks.contract import names
from tasks.contract.keys import UPLOAD_PREFIX

# Memory (and with it CPU: one full vCPU at 1,769 MB) per task, from `python -m bench`'s warm
# split (README "Performance"). Lambda bills GB-seconds, so for CPU-bound work more memory costs
# about the same up to 1,769 MB and only shortens it; for work that waits on AWS it only costs.
# - validate is pure CPU (base64, SHA-256 and the field rules over a MAX_FILE_BYTES body: ~2 ms
#   on a full core) and its init (Powertools, msgspec) is CPU too: one full vCPU, the same cost per
#   call.
# - store decodes, hashes and sends up to MAX_FILE_BYTES over TLS (~1 ms of Python per call), the
#   rest is the S3 PUT: 1,024 MB keeps its Python part and init short without paying for idle CPU.
# - record and compensate spend <1 ms in Python per call (the rest is DynamoDB / S3): 512 MB.
# Cold starts are CPU-bound at any size; the snapStart / provisionedConcurrency context flags
# address them where they matter, not a larger memory size. No reserved concurrency.
VALIDATE_MEMORY_MB = 1769
STORE_MEMORY_MB = 1024
RECORD_MEMORY_MB = 512
COMPENSATE_MEMORY_MB = 512
ALIAS_NAME = "live"  # what the state machine invokes when versions are published

# Every task's environment (bench/cold.py measures cold init with this same mapping).
COMMON_ENVIRONMENT: dict[str, str] = {
    names.POWERTOOLS_SERVICE_NAME: names.SERVICE,
    names.POWERTOOLS_METRICS_NAMESPACE: names.NAMESPACE,
    names.POWERTOOLS_LOG_LEVEL: "INFO",
}


@dataclass(frozen=True)
class TaskSpec:
    name: str  # module name under tasks/
    timeout_seconds: int  # the Lambda timeout, also the state's TimeoutSeconds
    memory_mb: int

    @property
    def title(self) -> str:
        return self.name.capitalize()

    @property
    def handler(self) -> str:
        return f"tasks.{self.name}.handler"


# The time budget these numbers belong to is written out in infra/state_machine.py.
VALIDATE = TaskSpec("validate", 2, VALIDATE_MEMORY_MB)
STORE = TaskSpec("store", 3, STORE_MEMORY_MB)
RECORD = TaskSpec("record", 2, RECORD_MEMORY_MB)
COMPENSATE = TaskSpec("compensate", 3, COMPENSATE_MEMORY_MB)
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
        snap_start: bool = False,
        provisioned_concurrency: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = encrypted_log_group(
            self, "LogGroup", key=logs_key, removal_policy=removal_policy
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
            memory_size=spec.memory_mb,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**COMMON_ENVIRONMENT, **environment},
            description=f"Upload service: {spec.name} task",
        )
        # What the state machine invokes: the function itself by default; with SnapStart or
        # provisioned concurrency (both act on published versions only) an alias on the current
        # version, which carries the provisioned concurrency.
        self.alias: lambda_.Alias | None = None
        self.invocable: lambda_.IFunction = self.function
        if snap_start or provisioned_concurrency:
            self.alias = lambda_.Alias(
                self,
                "Alias",
                alias_name=ALIAS_NAME,
                version=self.function.current_version,
                provisioned_concurrent_executions=provisioned_concurrency or None,
            )
            self.invocable = self.alias
        if snap_start:
            # CDK warns at the function that SnapStart needs a published version: the alias
            # above publishes it (and the state machine invokes only that alias).
            Validations.of(self.function).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
                    reason="the current version is published behind the alias the state "
                    "machine invokes",
                )
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
        skip_checkov(
            self.function,
            "CKV_AWS_116",
            "No DLQ: invoked synchronously by Step Functions only (a DLQ applies to asynchronous "
            "invocations); every failure returns to the state machine, which compensates or fails.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_117",
            "No VPC: the task reaches only S3, DynamoDB, KMS and CloudWatch through their public "
            "endpoints with IAM; there is no private resource, and a VPC would add NAT or "
            "endpoint costs and cold-start latency.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_115",
            "No reserved concurrency: the API stage throttle (1000 rps, burst 2000) bounds "
            "concurrency upstream; reserving it would take from the account pool (1000 by "
            "default) and throttle legitimate uploads.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "The environment holds no secrets (resource names, a key ARN, Powertools and policy "
            "settings); Lambda encrypts it at rest with its AWS managed key.",
        )
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
        allowed_content_types: tuple[str, ...] | None = None,
        snap_start: bool = False,
        provisioned_concurrency: int = 0,
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
                snap_start=snap_start,
                provisioned_concurrency=provisioned_concurrency,
            )

        bucket = storage.bucket
        claims = storage.idempotency_table
        # validate: no AWS permission beyond its own logs and X-Ray. Without an allowlist the
        # variable is absent (any content type).
        validate_env: dict[str, str] = {}
        if allowed_content_types:
            validate_env[names.ALLOWED_CONTENT_TYPES] = ",".join(allowed_content_types)
        self.validate = task(VALIDATE, validate_env)
        self.store = task(
            STORE,
            {
                names.UPLOAD_BUCKET_NAME: bucket.bucket_name,
                names.UPLOAD_KEY_ARN: storage.bucket_key.key_arn,
                names.IDEMPOTENCY_TABLE_NAME: claims.table_name,
            },
        )
        # Claim the Idempotency-Key before the PUT (a conditional PutItem returning the held
        # claim; GetItem only if a service does not return it).
        self.store.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:GetItem"], resources=[claims.table_arn]
            )
        )
        self.store.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[storage.uploads_arn()])
        )
        self.store.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[storage.bucket_key.key_arn],
            )
        )
        self.record = task(
            RECORD,
            {
                names.METADATA_TABLE_NAME: storage.table.table_name,
                names.IDEMPOTENCY_TABLE_NAME: claims.table_name,
            },
        )
        # The metadata item is written with a reversible UpdateItem (tasks.core.rollback).
        self.record.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"], resources=[storage.table.table_arn]
            )
        )
        # The metadata item and the claim's completion are one TransactWriteItems, which IAM
        # authorizes item by item (UpdateItem on each table).
        self.record.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[claims.table_arn])
        )
        self.compensate = task(
            COMPENSATE,
            {
                names.UPLOAD_BUCKET_NAME: bucket.bucket_name,
                names.METADATA_TABLE_NAME: storage.table.table_name,
                names.IDEMPOTENCY_TABLE_NAME: claims.table_name,
            },
        )
        # Undo Record's write if it landed: read the item, then restore the attributes it
        # replaced (UpdateItem) or delete a first-time item (DeleteItem), both conditional.
        self.compensate.role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[storage.table.table_arn],
            )
        )
        # Release this request's claim (conditional DeleteItem).
        self.compensate.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:DeleteItem"], resources=[claims.table_arn])
        )
        # Both tables share the table key (store and compensate use it for the claims only).
        for writer in (self.store, self.record, self.compensate):
            writer.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[storage.table_key.key_arn],
                )
            )
        # Compensate, and a retried Store, find this request's versions of the key and delete
        # them by VersionId (tasks.core.versions).
        uploads_finding = (
            f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/{UPLOAD_PREFIX}*]"
        )
        for role in (self.store.role, self.compensate.role):
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:DeleteObjectVersion", "s3:GetObjectVersion"],
                    resources=[storage.uploads_arn()],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucketVersions"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": f"{UPLOAD_PREFIX}*"}},
                )
            )
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
