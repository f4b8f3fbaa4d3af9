"""The task functions, each with its own role, log group and least-privilege policy."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import (
    Acknowledgment,
    Aws,
    CfnElement,
    CfnRule,
    CfnRuleAssertion,
    Duration,
    Fn,
    Stack,
    Validations,
)
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from infra import bundling
from infra.compliance import acknowledge, skip_checkov
from infra.log_groups import encrypted_log_group
from infra.settings import Settings
from infra.storage import Storage
from tasks.contract import ledger, names, sessions
from tasks.contract.keys import UPLOAD_PREFIX
from tasks.contract.timing import TIMINGS

# Memory (and with it CPU: one full vCPU at 1,769 MB) per task, from `python -m bench`'s warm
# split (README "Performance"). Lambda bills GB-seconds, so for CPU-bound work more memory costs
# about the same up to 1,769 MB and only shortens it; for work that waits on AWS it only costs.
# - validate is pure CPU (base64, SHA-256 and the field rules over a MAX_FILE_BYTES body: ~2 ms
#   on a full core) and its init (Powertools, msgspec) is CPU too: one full vCPU, the same cost per
#   call.
# - store decodes, hashes and sends up to MAX_FILE_BYTES over TLS (~1 ms of Python per call), the
#   rest is the S3 PUT: 1,024 MB keeps its Python part and init short without paying for idle CPU.
# - record, compensate, report and the sweep spend <1 ms in Python per call (the rest is
#   DynamoDB / S3): 512 MB.
# Cold starts are CPU-bound at any size; the snapStart / provisionedConcurrency context flags
# address them where they matter, not a larger memory size. No reserved concurrency.
VALIDATE_MEMORY_MB = 1769
STORE_MEMORY_MB = 1024
SMALL_MEMORY_MB = 512
ALIAS_NAME = "live"  # what the state machine invokes when versions are published
# The regions without Lambda SnapStart, where a snapStart=true deploy would fail at the first
# function (refused up front by refuse_snap_start_regions). Where it comes from: cfn-lint's rule
# E2530 (SnapStartSupported, cfn-lint 1.51) reports exactly these for this stack's SnapStart
# functions when it lints every region it knows (cfnlint.helpers.REGIONS).
# tests/infrastructure/test_compliance.py holds this tuple equal to that set: when a cfn-lint
# upgrade changes it, the test fails and names the regions to add or remove.
SNAP_START_UNSUPPORTED_REGIONS: tuple[str, ...] = (
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-2",
    "eu-isoe-west-1",
    "eu-south-2",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "mx-central-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
)
SNAP_START_REGIONS_RULE = "SnapStartRegions"

# Every task's environment (bench/cold.py measures cold init with this same mapping).
COMMON_ENVIRONMENT: dict[str, str] = {
    names.POWERTOOLS_SERVICE_NAME: names.SERVICE,
    names.POWERTOOLS_METRICS_NAMESPACE: names.NAMESPACE,
    names.POWERTOOLS_LOG_LEVEL: "INFO",
}


@dataclass(frozen=True)
class TaskSpec:
    name: str  # module name under tasks/ (tasks.contract.names)
    memory_mb: int
    scheduled: bool = False  # run by a schedule, not by the workflow

    @property
    def title(self) -> str:
        return names.task_title(self.name)

    @property
    def handler(self) -> str:
        return f"tasks.{self.name}.handler"

    @property
    def timeout_seconds(self) -> int:
        """The Lambda timeout (tasks.contract.timing, where the whole time budget is)."""
        return TIMINGS[self.name].lambda_timeout_seconds


VALIDATE = TaskSpec(names.VALIDATE, VALIDATE_MEMORY_MB)
STORE = TaskSpec(names.STORE, STORE_MEMORY_MB)
RECORD = TaskSpec(names.RECORD, SMALL_MEMORY_MB)
COMPENSATE = TaskSpec(names.COMPENSATE, SMALL_MEMORY_MB)
REPORT = TaskSpec(names.REPORT, SMALL_MEMORY_MB)
SWEEP = TaskSpec(names.SWEEP, SMALL_MEMORY_MB, scheduled=True)
SESSION = TaskSpec(names.SESSION, SMALL_MEMORY_MB)
TASKS: tuple[TaskSpec, ...] = (VALIDATE, STORE, RECORD, COMPENSATE, REPORT, SWEEP, SESSION)

# What every task function's acknowledgements of the runtime findings say.
_RUNTIME_REASON = (
    "python3.13 is the runtime the project targets and tests; "
    "a runtime upgrade is a deliberate, tested change."
)


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
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = encrypted_log_group(
            self, "LogGroup", key=logs_key, removal_policy=settings.removal_policy
        )
        self.role = self._build_role()
        self.function = self._build_function(code, layer, environment, settings)
        # What the state machine invokes: the function itself by default; with SnapStart or
        # provisioned concurrency (both act on published versions only) an alias on the current
        # version, which carries the provisioned concurrency.
        self.alias = self._build_alias(settings)
        self.invocable: lambda_.IFunction = self.function if self.alias is None else self.alias
        self._add_acknowledgements()
        self._add_checkov_skips()

    def _build_role(self) -> iam.Role:
        """A role of this task's own: the grants name this task's log group, nothing shared."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Upload service {self.spec.name} task",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        return role

    def _build_function(
        self,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        settings: Settings,
    ) -> lambda_.Function:
        return lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=self.spec.handler,
            code=code,
            layers=[layer],
            role=self.role,
            timeout=Duration.seconds(self.spec.timeout_seconds),
            memory_size=self.spec.memory_mb,
            snap_start=(
                lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
                if settings.snap_start and not self.spec.scheduled
                else None
            ),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**COMMON_ENVIRONMENT, **environment},
            description=f"Upload service: {self.spec.name} task",
            # A scheduled run that fails is not repeated (Lambda would retry an asynchronous
            # invocation twice): the next run, minutes later, does the same work.
            retry_attempts=0 if self.spec.scheduled else None,
        )

    def _build_alias(self, settings: Settings) -> lambda_.Alias | None:
        """The alias ``live`` on the current version, when a cold-start option is on (for the
        workflow's tasks: a scheduled run every few minutes gains nothing from either)."""
        if self.spec.scheduled or not (settings.snap_start or settings.provisioned_concurrency):
            return None
        alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=ALIAS_NAME,
            version=self.function.current_version,
            provisioned_concurrent_executions=settings.provisioned_concurrency or None,
        )
        if settings.snap_start:
            # CDK warns at the function that SnapStart needs a published version: this alias
            # publishes it (and the state machine invokes only this alias).
            Validations.of(self.function).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-lambda:snapStartRequirePublish",
                    reason="the current version is published behind the alias the state "
                    "machine invokes",
                )
            )
        return alias

    def _add_acknowledgements(self) -> None:
        """cdk-nag findings that do not apply to a task function, each with its reason."""
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), "
            "which support no resource-level permissions.",
        )
        acknowledge(self.function, "AwsSolutions-L1", _RUNTIME_REASON)
        acknowledge(self.function, "Serverless-LambdaLatestVersion", _RUNTIME_REASON)
        acknowledge(self.function, "Serverless-LambdaDLQ", self._no_dlq_reason())
        if self.spec.scheduled:
            # The same reason covers the asynchronous invoke config that turns Lambda's own
            # retries off (there is nothing to send to a failure destination either).
            acknowledge(
                self.function, "Serverless-LambdaAsyncFailureDestination", self._no_dlq_reason()
            )

    def _no_dlq_reason(self) -> str:
        if self.spec.scheduled:
            return (
                "a scheduled sweep: a run that fails is done again by the next run a few minutes "
                "later, which finds the same open intents; its errors alarm."
            )
        return (
            "invoked synchronously by Step Functions only (a DLQ applies to asynchronous "
            "invocations); every failure returns to the state machine, which compensates, "
            "reports or fails."
        )

    def _add_checkov_skips(self) -> None:
        """checkov checks that do not apply to a task function, each with its reason."""
        skip_checkov(self.function, "CKV_AWS_116", f"No DLQ: {self._no_dlq_reason()}")
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


def refuse_snap_start_regions(stack: Stack) -> CfnRule:
    """A template rule refusing the regions without SnapStart: CloudFormation checks a template's
    rules before it creates anything, so a deploy there stops at once, saying what to do, instead
    of failing at the first function and rolling back."""
    return CfnRule(
        stack,
        SNAP_START_REGIONS_RULE,
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_not(Fn.condition_equals(Aws.REGION, region)),
                assert_description=(
                    f"Lambda SnapStart (-c snapStart=true) is not available in {region}: "
                    f"deploy to {region} without -c snapStart=true, or deploy with it to a "
                    "region that supports SnapStart."
                ),
            )
            for region in SNAP_START_UNSUPPORTED_REGIONS
        ],
    )


class TaskFunctions(Construct):
    """The task functions, sharing one code asset and one dependencies layer."""

    def __init__(
        self, scope: Construct, construct_id: str, *, storage: Storage, settings: Settings
    ) -> None:
        super().__init__(scope, construct_id)
        self._storage = storage
        self._settings = settings
        self._acknowledged: set[iam.Role] = set()
        # One code asset for all: each handler imports from the same tasks/ package.
        self._code = bundling.tasks_code()
        self.layer = self._build_layer()
        self.validate = self._build_task(VALIDATE)
        self.store = self._build_task(STORE)
        self.record = self._build_task(RECORD)
        self.compensate = self._build_task(COMPENSATE)
        self.report = self._build_task(REPORT)
        self.sweep = self._build_task(SWEEP)
        self.session = self._build_task(SESSION)
        # What the state machine invokes, and every function of the stack.
        self.workflow: tuple[TaskFunction, ...] = (
            self.validate,
            self.store,
            self.record,
            self.compensate,
            self.report,
        )
        self.all: tuple[TaskFunction, ...] = (*self.workflow, self.sweep, self.session)
        self._grant_validate()
        self._grant_store()
        self._grant_record()
        self._grant_compensate()
        self._grant_report()
        self._grant_sweep()
        self._grant_session()

    def _build_layer(self) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            "Dependencies",
            code=bundling.dependencies_code(),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_13],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="Upload task dependencies (tasks/requirements.txt)",
        )

    def _build_task(self, spec: TaskSpec) -> TaskFunction:
        return TaskFunction(
            self,
            spec.title,
            spec=spec,
            code=self._code,
            layer=self.layer,
            logs_key=self._storage.logs_key,
            environment=self._environment(spec),
            settings=self._settings,
        )

    def _environment(self, spec: TaskSpec) -> dict[str, str]:
        """The names of the resources a task reads (tasks.contract.names), and its settings."""
        storage = self._storage
        bucket = {names.UPLOAD_BUCKET_NAME: storage.bucket.bucket_name}
        bucket_key = {names.UPLOAD_KEY_ARN: storage.bucket_key.key_arn}
        metadata = {names.METADATA_TABLE_NAME: storage.table.table_name}
        claims = {names.IDEMPOTENCY_TABLE_NAME: storage.idempotency_table.table_name}
        intents = {names.LEDGER_TABLE_NAME: storage.ledger_table.table_name}
        # Without an allowlist the variable is absent: validate accepts any content type.
        allowed = self._settings.allowed_content_types
        allowlist = {names.ALLOWED_CONTENT_TYPES: ",".join(allowed)} if allowed else {}
        sweep = {
            names.ORPHAN_GRACE_SECONDS: str(self._settings.orphan_grace_seconds),
            names.SWEEP_DELETES_ORPHANS: str(self._settings.sweep_deletes_orphans).lower(),
        }
        sessions_table = {names.SESSIONS_TABLE_NAME: storage.sessions_table.table_name}
        session = {
            **sessions_table,
            names.MAX_UPLOAD_BYTES: str(self._settings.max_upload_bytes),
            names.MAX_OPEN_SESSIONS: str(self._settings.max_open_sessions),
        }
        environments = {
            VALIDATE: {**allowlist, **bucket, **sessions_table},
            STORE: {**bucket, **bucket_key, **claims, **intents, **sessions_table, **allowlist},
            RECORD: {**metadata, **claims, **intents, **sessions_table},
            COMPENSATE: {**bucket, **metadata, **claims, **intents, **sessions_table},
            REPORT: {**bucket, **metadata, **intents},
            SWEEP: {**metadata, **intents, **sweep},
            SESSION: {**bucket, **bucket_key, **session, **allowlist},
        }
        return environments[spec]

    def _grant_validate(self) -> None:
        """An inline file is checked in memory; a session's commit reads the session and lists
        the parts S3 holds (tasks.core.commits)."""
        storage = self._storage
        role = self.validate.role
        self._grant_table(role, storage.sessions_table, "dynamodb:GetItem")
        self._grant_table_key(role)
        self._grant_parts(role, "s3:ListMultipartUploadParts")

    def _grant_parts(self, role: iam.Role, *actions: str) -> None:
        """Multipart actions on the sessions' objects under uploads/."""
        role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=[self._storage.uploads_arn()])
        )
        self._acknowledge_uploads(role)

    def _acknowledge_uploads(self, role: iam.Role) -> None:
        """The uploads/* wildcard of a role's object actions, acknowledged once per role."""
        if role in self._acknowledged:
            return
        self._acknowledged.add(role)
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id(self._storage.bucket)}.Arn>/"
            f"{UPLOAD_PREFIX}*]",
            "object actions are limited to the uploads/ prefix, where every key is "
            "uploads/<productId>/<fileName>.",
        )

    def _grant_store(self) -> None:
        storage = self._storage
        role = self.store.role
        # A session's commit: the session moves to COMMITTING in the begin transaction (after
        # a read of its multipart upload id); its parts are listed and completed
        # (s3:PutObject authorizes CompleteMultipartUpload) and the first bytes read back
        # (s3:GetObjectVersion, below).
        self._grant_table(role, storage.sessions_table, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._grant_parts(role, "s3:ListMultipartUploadParts")
        # Claim the Idempotency-Key before the PUT (a conditional PutItem returning the held
        # claim; GetItem only if a service does not return it); give it back (DeleteItem) when
        # another upload of the item holds its lease.
        self._grant_table(
            role,
            storage.idempotency_table,
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        )
        # Open the intent (UpdateItem) and take the item's lease (PutItem), one transaction.
        self._grant_table(role, storage.ledger_table, "dynamodb:UpdateItem", "dynamodb:PutItem")
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[storage.uploads_arn()])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[storage.bucket_key.key_arn],
            )
        )
        self._grant_table_key(role)
        # A retried Store deletes the versions its earlier attempt left.
        self._grant_finding_uploads(role, delete=True)

    def _grant_record(self) -> None:
        storage = self._storage
        role = self.record.role
        # One TransactWriteItems, which IAM authorizes item by item: the reversible metadata
        # write (tasks.core.rollback), the claim's completion, the commit record (UpdateItem),
        # and the release of the lease (DeleteItem).
        self._grant_table(role, storage.table, "dynamodb:UpdateItem")
        self._grant_table(role, storage.idempotency_table, "dynamodb:UpdateItem")
        self._grant_table(role, storage.ledger_table, "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        # A session's commit: the session COMMITTING -> COMMITTED, in the same transaction.
        self._grant_table(role, storage.sessions_table, "dynamodb:UpdateItem")
        self._grant_table_key(role)

    def _grant_compensate(self) -> None:
        storage = self._storage
        role = self.compensate.role
        # Undo Record's write if it landed: read the item, then restore the attributes it
        # replaced (UpdateItem) or delete a first-time item (DeleteItem), both conditional.
        self._grant_table(
            role, storage.table, "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"
        )
        # Release this request's claim (conditional DeleteItem).
        self._grant_table(role, storage.idempotency_table, "dynamodb:DeleteItem")
        # Fence the intent (UpdateItem) and release the item's lease (DeleteItem).
        self._grant_table(role, storage.ledger_table, "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        self._grant_table_key(role)
        # Delete the versions the failed request stored.
        self._grant_finding_uploads(role, delete=True)
        # A failed commit: read the session, see whether its multipart upload still exists, and
        # put the session back to OPEN or make it ABORTED.
        self._grant_table(role, storage.sessions_table, "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._grant_parts(role, "s3:ListMultipartUploadParts")

    def _grant_report(self) -> None:
        storage = self._storage
        role = self.report.role
        # Fence the intent; read the metadata item; find the request's versions. It deletes
        # nothing: it reports.
        self._grant_table(role, storage.ledger_table, "dynamodb:UpdateItem")
        self._grant_table(role, storage.table, "dynamodb:GetItem")
        self._grant_table_key(role)
        self._grant_finding_uploads(role, delete=False)

    def _grant_sweep(self) -> None:
        storage = self._storage
        role = self.sweep.role
        deletes = self._settings.sweep_deletes_orphans
        # Read the open intents through their index; fence and close them.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{storage.ledger_table.table_arn}/index/{ledger.OPEN_INDEX}"],
            )
        )
        self._grant_table(role, storage.ledger_table, "dynamodb:UpdateItem")
        # Read the metadata item of an uncommitted request; undo it only when deleting orphans.
        undo = ("dynamodb:UpdateItem", "dynamodb:DeleteItem") if deletes else ()
        self._grant_table(role, storage.table, "dynamodb:GetItem", *undo)
        self._grant_table_key(role)
        self._grant_finding_uploads(role, delete=deletes)

    def _grant_session(self) -> None:
        storage = self._storage
        role = self.session.role
        table = storage.sessions_table
        # Write a session, read it, abort it; count a caller's open ones through the index.
        self._grant_table(
            role, table, "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{table.table_arn}/index/{sessions.OPEN_INDEX}"],
            )
        )
        self._grant_table_key(role)
        # Start, list and abort multipart uploads under uploads/; s3:PutObject is what the
        # presigned part URLs are signed with (UploadPart), and the parts are encrypted with the
        # bucket key under this role's identity.
        self._grant_parts(
            role, "s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[storage.bucket_key.key_arn],
            )
        )

    @staticmethod
    def _grant_table(role: iam.Role, table: dynamodb.ITable, *actions: str) -> None:
        role.add_to_policy(iam.PolicyStatement(actions=list(actions), resources=[table.table_arn]))

    def _grant_table_key(self, role: iam.Role) -> None:
        """Every table shares the table key."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self._storage.table_key.key_arn],
            )
        )

    def _grant_finding_uploads(self, role: iam.Role, *, delete: bool) -> None:
        """Find one request's versions of its key under uploads/ (tasks.core.versions) and, with
        ``delete``, delete them by VersionId."""
        bucket = self._storage.bucket
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObjectVersion", "s3:GetObjectVersion"]
                if delete
                else ["s3:GetObjectVersion"],
                resources=[self._storage.uploads_arn()],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucketVersions"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": f"{UPLOAD_PREFIX}*"}},
            )
        )
        self._acknowledge_uploads(role)


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id cdk-nag names a resource by in its findings."""
    element = construct.node.default_child
    assert isinstance(element, CfnElement)
    return Stack.of(construct).get_logical_id(element)
