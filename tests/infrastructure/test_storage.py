"""Upload bucket, access-log bucket, metadata, idempotency, ledger and sessions tables, keys:
encryption, access, retention."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.conftest import CORS_ORIGINS

from .infra_helpers import logical_id_with_prefix, render, resources_of_type


def upload_bucket(stack):
    template = stack.template_json
    bucket_id = logical_id_with_prefix(template, "AWS::S3::Bucket", "StorageUploadBucket")
    return template["Resources"][bucket_id]["Properties"]


def managed_table(key_id: str) -> dict[str, object]:
    """What every table of the stack has: on demand, the table key, point-in-time recovery."""
    return {
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {
            "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
            "SSEEnabled": True,
            "SSEType": "KMS",
        },
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }


def test_every_key_rotates(default_stack):
    keys = resources_of_type(default_stack.template_json, "AWS::KMS::Key")
    assert len(keys) == 3  # bucket, table, logs
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())


def test_upload_bucket_is_versioned_kms_encrypted_with_bucket_key_and_private(default_stack):
    template = default_stack.template_json
    bucket_id = logical_id_with_prefix(template, "AWS::S3::Bucket", "StorageUploadBucket")
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageUploadBucketKey")
    log_bucket_id = logical_id_with_prefix(template, "AWS::S3::Bucket", "StorageAccessLogBucket")
    props = template["Resources"][bucket_id]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket_id}
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def test_abandoned_multipart_uploads_are_aborted_after_a_day(default_stack):
    """An upload session's parts are billed until its multipart upload is aborted: the lifecycle
    rule aborts one a day after it began, when its session (24 h) has expired."""
    from tasks.contract import sessions

    [rule] = upload_bucket(default_stack)["LifecycleConfiguration"]["Rules"]
    assert rule == {
        "Id": "ExpireNoncurrentVersions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    assert sessions.ABORT_INCOMPLETE_DAYS * 24 * 60 * 60 >= sessions.SESSION_SECONDS


def test_no_bucket_cors_without_cors_origins(default_stack):
    assert "CorsConfiguration" not in upload_bucket(default_stack)


def test_cors_origins_let_browsers_put_session_parts_and_read_the_etag(cors_stack):
    """A browser on an allowed origin PUTs each part to its presigned URL (with the signed
    checksum header) and reads the ETag S3 answers: nothing else, from nowhere else."""
    assert upload_bucket(cors_stack)["CorsConfiguration"] == {
        "CorsRules": [
            {
                "AllowedMethods": ["PUT"],
                "AllowedOrigins": list(CORS_ORIGINS),
                "AllowedHeaders": ["content-type", "content-length", "x-amz-checksum-sha256"],
                "ExposedHeaders": ["ETag"],
                "MaxAge": 3600,
            }
        ]
    }


def test_cors_origins_change_nothing_else_about_the_bucket(default_stack, cors_stack):
    with_cors = dict(upload_bucket(cors_stack))
    del with_cors["CorsConfiguration"]
    assert with_cors == upload_bucket(default_stack)


def test_both_buckets_deny_requests_without_tls(default_stack):
    policies = resources_of_type(default_stack.template_json, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        bucket = policy["Properties"]["Bucket"]["Ref"]
        [deny] = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
        ]
        assert deny["Action"] == "s3:*"
        assert deny["Principal"] == {"AWS": "*"}
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert {render(r) for r in deny["Resource"]} == {
            "${" + bucket + ".Arn}",
            "${" + bucket + ".Arn}/*",
        }


def test_access_log_bucket_is_private_encrypted_and_expires_logs(default_stack):
    default_stack.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True}),
            "LifecycleConfiguration": {
                "Rules": [Match.object_like({"ExpirationInDays": 365, "Status": "Enabled"})]
            },
        },
    )


def test_table_keys_billing_encryption_and_point_in_time_recovery(default_stack):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageMetadataTableKey")
    # metadata, idempotency, ledger, sessions
    assert len(resources_of_type(template, "AWS::DynamoDB::Table")) == 4
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageMetadataTable")
    props = template["Resources"][table_id]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "productId", "KeyType": "HASH"},
        {"AttributeName": "productName", "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "TableName" not in props  # no hard-coded physical names
    assert "TimeToLiveSpecification" not in props


def test_idempotency_table_is_keyed_by_the_hashed_key_encrypted_recoverable_and_expiring(
    default_stack,
):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageMetadataTableKey")
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageIdempotencyTable")
    table = template["Resources"][table_id]
    assert table["Properties"] == {
        "KeySchema": [{"AttributeName": "idempotencyKey", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "idempotencyKey", "AttributeType": "S"}],
        **managed_table(key_id),
        # Expired claims are ignored by every condition; TTL deletes them eventually.
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
    }
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_ledger_table_keys_its_items_expires_them_and_indexes_open_intents_only(default_stack):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageMetadataTableKey")
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageLedgerTable")
    table = template["Resources"][table_id]
    assert table["Properties"] == {
        # One partition key for intents ("request#<id>") and item leases ("item#...").
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "openShard", "AttributeType": "S"},
            {"AttributeName": "openSince", "AttributeType": "N"},
        ],
        # Sparse: only an open intent has openShard and openSince, so the sweep reads what is
        # unaccounted for, never the whole history; the whole intent, no second read.
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "OpenIntents",
                "KeySchema": [
                    {"AttributeName": "openShard", "KeyType": "HASH"},
                    {"AttributeName": "openSince", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        **managed_table(key_id),
        # Leases and closed intents expire; an open intent has no expiresAt.
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
    }
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_ledger_table_schema_is_the_contracts(default_stack):
    """The tables tests and benchmarks create on moto (ledger.table_schema) are the stack's."""
    from tasks.contract import ledger

    template = default_stack.template_json
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageLedgerTable")
    properties = template["Resources"][table_id]["Properties"]
    assert {name: properties[name] for name in ledger.table_schema()} == ledger.table_schema()


def test_sessions_table_keys_sessions_expires_them_and_indexes_open_ones_by_caller(
    default_stack,
):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageMetadataTableKey")
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageSessionsTable")
    table = template["Resources"][table_id]
    assert table["Properties"] == {
        # One item per session, by its id (the id of the request that opened it).
        "KeySchema": [{"AttributeName": "uploadId", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "uploadId", "AttributeType": "S"},
            {"AttributeName": "openCaller", "AttributeType": "S"},
            {"AttributeName": "expiresAt", "AttributeType": "N"},
        ],
        # Sparse: only an OPEN session has openCaller, so counting a caller's open sessions
        # reads those and nothing else; the keys are enough to count.
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "OpenSessionsByCaller",
                "KeySchema": [
                    {"AttributeName": "openCaller", "KeyType": "HASH"},
                    {"AttributeName": "expiresAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        **managed_table(key_id),
        # A closed session's item is deleted a week after its expiry (deleteAt), not at it.
        "TimeToLiveSpecification": {"AttributeName": "deleteAt", "Enabled": True},
    }
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_sessions_table_schema_is_the_contracts(default_stack):
    """The table the session task's tests create on moto (sessions.table_schema) is the stack's."""
    from tasks.contract import sessions

    template = default_stack.template_json
    table_id = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageSessionsTable")
    properties = template["Resources"][table_id]["Properties"]
    assert {name: properties[name] for name in sessions.table_schema()} == sessions.table_schema()


def test_sessions_table_names_are_the_contracts():
    from tasks.contract import sessions

    assert (sessions.PARTITION_KEY, sessions.DELETE_AT) == ("uploadId", "deleteAt")
    assert (sessions.OPEN_INDEX, sessions.OPEN_CALLER, sessions.EXPIRES_AT) == (
        "OpenSessionsByCaller",
        "openCaller",
        "expiresAt",
    )


def test_ledger_table_names_are_the_contracts():
    from tasks.contract import ledger

    assert (ledger.PARTITION_KEY, ledger.EXPIRES_AT) == ("pk", "expiresAt")
    assert (ledger.OPEN_INDEX, ledger.OPEN_SHARD, ledger.OPEN_SINCE) == (
        "OpenIntents",
        "openShard",
        "openSince",
    )


def test_every_log_group_is_kms_encrypted_with_the_logs_key_and_retained(default_stack):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageLogsKey")
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    assert len(groups) == 10  # seven tasks, two state machines, API access logs
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert group["Properties"]["RetentionInDays"] > 0
        assert group["DeletionPolicy"] == "Retain"
    # CloudFormation generates their names, except the state machines' (test_state_machine.py).
    named = {logical_id for logical_id, g in groups.items() if "LogGroupName" in g["Properties"]}
    assert named == {
        logical_id_with_prefix(template, "AWS::Logs::LogGroup", prefix)
        for prefix in ("WorkflowLogGroup", "SessionsLogGroup")
    }


def test_logs_key_lets_cloudwatch_logs_use_it_for_this_accounts_log_groups_only(default_stack):
    template = default_stack.template_json
    key_id = logical_id_with_prefix(template, "AWS::KMS::Key", "StorageLogsKey")
    statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in statements if s.get("Sid") == "AllowCloudWatchLogs"]
    assert render(logs["Principal"]["Service"]) == "logs.${AWS::Region}.amazonaws.com"
    condition = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert render(condition) == (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    )


STATEFUL = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Logs::LogGroup")


def test_data_is_retained_by_default(default_stack):
    for resource_type in STATEFUL:
        for resource in resources_of_type(default_stack.template_json, resource_type).values():
            assert resource["DeletionPolicy"] == "Retain", resource_type
            assert resource["UpdateReplacePolicy"] == "Retain", resource_type
    assert not resources_of_type(default_stack.template_json, "Custom::S3AutoDeleteObjects")


def test_destroy_on_delete_destroys_data_and_empties_buckets(destroy_stack):
    template = destroy_stack.template_json
    for resource_type in STATEFUL:
        for resource in resources_of_type(template, resource_type).values():
            assert resource["DeletionPolicy"] == "Delete", resource_type
            assert resource["UpdateReplacePolicy"] == "Delete", resource_type
    ledger = logical_id_with_prefix(template, "AWS::DynamoDB::Table", "StorageLedgerTable")
    assert template["Resources"][ledger]["DeletionPolicy"] == "Delete"
    assert len(resources_of_type(template, "Custom::S3AutoDeleteObjects")) == 2
