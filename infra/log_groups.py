"""The one kind of log group this stack creates: KMS-encrypted, retained for a year; and the
names of the state machines' log groups."""

from __future__ import annotations

from aws_cdk import Aws, Fn, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from tasks.contract.names import STATES_LOG_GROUP_PREFIX

LOG_RETENTION = logs.RetentionDays.ONE_YEAR


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    removal_policy: RemovalPolicy,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        encryption_key=key,
        retention=LOG_RETENTION,
        removal_policy=removal_policy,
    )


def states_log_group_name(workflow: str) -> str:
    """``/aws/vendedlogs/states/<stack name>-<stack id's UUID>/<workflow>``.

    The prefix Step Functions recommends for the log groups it delivers to: CloudWatch Logs covers
    it with one entry of its resource policy instead of one per log group, which in an account
    with many log destinations overflows the policy's 5,120 characters (and the deploy fails).

    A name of this stack's own: two stacks in one account do not collide, and neither does a
    stack re-created under the same name with a log group its predecessor retained (the stack
    id's last part, a UUID, is new with every stack)."""
    stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
    return Fn.join("", [STATES_LOG_GROUP_PREFIX, Aws.STACK_NAME, "-", stack_uuid, f"/{workflow}"])
