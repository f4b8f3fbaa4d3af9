"""The shape the ledger's and the sessions' tables share, as DynamoDB's ``CreateTable`` takes it."""

from __future__ import annotations

from typing import Any


def indexed_table_schema(
    *, partition_key: str, index: str, index_hash: str, index_range: str, projection: str
) -> dict[str, Any]:
    """A table keyed by one string, with one global secondary index on a string hash key and a
    number range key."""
    return {
        "KeySchema": [{"AttributeName": partition_key, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": partition_key, "AttributeType": "S"},
            {"AttributeName": index_hash, "AttributeType": "S"},
            {"AttributeName": index_range, "AttributeType": "N"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": index_hash, "KeyType": "HASH"},
                    {"AttributeName": index_range, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": projection},
            }
        ],
    }
