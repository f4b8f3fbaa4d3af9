"""The one kind of log group this stack creates: KMS-encrypted, retained for a year."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

LOG_RETENTION = logs.RetentionDays.ONE_YEAR


def encrypted_log_group(
    scope: Construct, construct_id: str, *, key: kms.IKey, removal_policy: RemovalPolicy
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        encryption_key=key,
        retention=LOG_RETENTION,
        removal_policy=removal_policy,
    )
