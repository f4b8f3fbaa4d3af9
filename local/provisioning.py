"""The template's resources, created on the emulated services (moto in server mode)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local.template import ACCOUNT_ID, REGION, FunctionSpec, Resolver, StateMachineSpec


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for the emulated services, with dummy credentials."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - dummy credentials for the emulator
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )


@dataclass
class Provisioned:
    """Physical names of what was created, by logical id."""

    buckets: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # logical id -> key ARN
    log_groups: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "local mode runs the handler in-process\n")
    return buffer.getvalue()


def create_keys(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    """KMS keys first: their ids are only known once created, and other resources refer to them."""
    kms = client("kms", endpoint)
    for logical_id, resource in resolver.resources_of("AWS::KMS::Key").items():
        props = resource.get("Properties", {})
        created = kms.create_key(
            Description=str(props.get("Description", f"{resolver.stack_name}/{logical_id}")),
            KeyUsage=str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
            KeySpec=str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
        )["KeyMetadata"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=created["KeyId"])
        resolver.register(logical_id, created["KeyId"], Arn=created["Arn"], KeyId=created["KeyId"])
        provisioned.keys[logical_id] = created["Arn"]
    for logical_id in resolver.resources_of("AWS::KMS::Alias"):
        props = resolver.resolve(resolver.properties(logical_id))
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])


def create_storage(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    _create_buckets(resolver, endpoint, provisioned)
    _create_tables(resolver, endpoint, provisioned)


def _create_buckets(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    s3 = client("s3", endpoint)
    for logical_id in resolver.resources_of("AWS::S3::Bucket"):
        props = resolver.resolve(resolver.properties(logical_id))
        name = resolver.physical_id(logical_id)
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            rules = [
                {
                    (
                        "ApplyServerSideEncryptionByDefault"
                        if k == "ServerSideEncryptionByDefault"
                        else k
                    ): v
                    for k, v in rule.items()
                    if k in ("ServerSideEncryptionByDefault", "BucketKeyEnabled")
                }
                for rule in encryption
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        provisioned.buckets[logical_id] = name


def _create_tables(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    dynamodb = client("dynamodb", endpoint)
    for table_type in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
        for logical_id in resolver.resources_of(table_type):
            props = resolver.resolve(resolver.properties(logical_id))
            name = resolver.physical_id(logical_id)
            arguments: dict[str, Any] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            indexes = [
                {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
                for index in props.get("GlobalSecondaryIndexes", [])
            ]
            if indexes:
                arguments["GlobalSecondaryIndexes"] = indexes
            dynamodb.create_table(**arguments)
            ttl = props.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                specification = {"Enabled": True, "AttributeName": ttl["AttributeName"]}
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=specification)
            provisioned.tables[logical_id] = name


def create_log_groups(resolver: Resolver, endpoint: str, provisioned: Provisioned) -> None:
    logs = client("logs", endpoint)
    for logical_id in resolver.resources_of("AWS::Logs::LogGroup"):
        props = resolver.resolve(resolver.properties(logical_id))
        name = resolver.physical_id(logical_id)
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=int(props["RetentionInDays"])
            )
        provisioned.log_groups[logical_id] = name


def create_functions(
    functions: list[FunctionSpec], endpoint: str, provisioned: Provisioned
) -> None:
    lambda_client = client("lambda", endpoint)
    iam = client("iam", endpoint)
    role_arn = iam.create_role(
        RoleName=f"local-lambda-{uuid.uuid4().hex[:8]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = _dummy_zip()
    for spec in functions:
        lambda_client.create_function(
            FunctionName=spec.name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": code},
            Timeout=spec.timeout_seconds,
            Environment={"Variables": spec.environment},
        )
        provisioned.functions[spec.logical_id] = spec.name


def create_state_machines(
    machines: list[StateMachineSpec], endpoint: str, provisioned: Provisioned
) -> None:
    sfn = client("stepfunctions", endpoint)
    for spec in machines:
        arguments: dict[str, Any] = {
            "name": spec.name,
            "definition": spec.definition,
            "roleArn": spec.role_arn,
            "type": spec.machine_type,
        }
        if spec.logging:
            arguments["loggingConfiguration"] = _lower_keys(spec.logging)
        created = sfn.create_state_machine(**arguments)
        if created["stateMachineArn"] != spec.arn:
            raise RuntimeError(f"state machine ARN {created['stateMachineArn']} != {spec.arn}")
        # moto records every machine as STANDARD; the template's type is what StartSync checks.
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        machine = stepfunctions_parser_backends[ACCOUNT_ID][REGION].describe_state_machine(spec.arn)
        machine.type = machine.sm_type = spec.machine_type
        provisioned.state_machines[spec.logical_id] = spec.arn


def _lower_keys(value: Any) -> Any:
    """CloudFormation's PascalCase logging configuration -> the API's camelCase."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value
