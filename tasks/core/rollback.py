"""A reversible metadata write: record's UpdateItem and compensate's undo of it.

Record writes the item (``productId`` + ``productName``) with one UpdateItem (inside its
transaction when there is an Idempotency-Key) that, in the same write, copies the attributes the
item had before into internal ``prev*`` attributes (:func:`previous_name`: ``versionId`` ->
``prevVersionId``). DynamoDB evaluates every action of an update expression against the item as
it was before the update, so ``SET prevVersionId = if_not_exists(versionId, :none),
versionId = :v`` keeps the old value; ``:none`` (NULL) marks a first-time item. The write is
conditional on the item not already being this request's (a retried Record whose first write
landed must not copy its own values over the previous upload's): that failed condition means the
write is done.

Compensate (:func:`undo`) reads the item (strongly consistent); only when its ``requestId`` is this
request does it change anything: it restores the previous attributes (SET each from its ``prev*``
copy, REMOVE the ``prev*`` attributes) or, for a first-time item, deletes it; both conditional on
``requestId`` still being this request, so a later upload that overwrote the item meanwhile is
never touched. A request whose write never landed changes nothing; running it again is a no-op.

Limit: ``prev*`` holds one level. If request A's write landed and A failed, and a later request
B overwrote the item before A's compensation ran (so A leaves the item alone), and then B fails
too, B restores A's attributes, whose version A deleted. It takes two overlapping failed uploads
of the same product; A's compensation logs it (``METADATA: ...``) so an operator can see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import botocore.exceptions

from tasks.core import aws
from tasks.core.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateTypeDef

# Every attribute of a metadata item besides its key (productId, productName).
ITEM_ATTRIBUTES: Final = (
    "price",
    "fileName",
    "contentType",
    "size",
    "sha256",
    "bucket",
    "s3Key",
    "versionId",
    "requestId",
    "uploadedAt",
)
REQUEST_ID: Final = "requestId"
_NONE: Final = {"NULL": True}


def previous_name(attribute: str) -> str:
    """The internal attribute holding ``attribute``'s value before the last write."""
    return f"prev{attribute[0].upper()}{attribute[1:]}"


def write(
    *, table: str, key: dict[str, Any], values: dict[str, Any], request_id: str
) -> UpdateTypeDef:
    """UpdateItem parameters (also a TransactWriteItems ``Update``) that set ``values`` (serialized
    attribute values, one per :data:`ITEM_ATTRIBUTES`) and keep the previous ones in ``prev*``."""
    names: dict[str, str] = {"#requestId": REQUEST_ID}
    expression_values: dict[str, Any] = {":none": _NONE, ":requestId": {"S": request_id}}
    copies, sets = [], []
    for index, attribute in enumerate(ITEM_ATTRIBUTES):
        names[f"#a{index}"] = attribute
        names[f"#p{index}"] = previous_name(attribute)
        expression_values[f":v{index}"] = values[attribute]
        copies.append(f"#p{index} = if_not_exists(#a{index}, :none)")
        sets.append(f"#a{index} = :v{index}")
    return {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET " + ", ".join(copies + sets),
        "ConditionExpression": "attribute_not_exists(#requestId) OR #requestId <> :requestId",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": expression_values,
        # A retry that finds its own write gets the item back with the failed condition.
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def own_item(item: dict[str, Any] | None, request_id: str) -> bool:
    """True when ``item`` (serialized) was written by ``request_id``."""
    value = (item or {}).get(REQUEST_ID)
    return isinstance(value, dict) and value.get("S") == request_id


def undo(dynamodb: DynamoDBClient, *, table: str, key: dict[str, Any], request_id: str) -> str:
    """Undo this request's write of the item at ``key``, if it is still there. Returns what was
    done: "restored", "deleted" or "untouched". SDK errors propagate."""
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if not own_item(item, request_id):
        if item is not None and aws.string_attribute(item, previous_name(REQUEST_ID)) == request_id:
            logger.error(
                "METADATA: a later upload overwrote this request's item; its rollback would "
                "restore this request's attributes",
                extra={
                    "laterRequestId": aws.string_attribute(item, REQUEST_ID),
                    "requestId": request_id,
                },
            )
        return "untouched"
    assert item is not None
    # Both writes are conditional on the item still being this request's.
    condition = "#requestId = :requestId"
    values = {":requestId": {"S": request_id}}
    try:
        if (
            aws.string_attribute(item, previous_name(REQUEST_ID)) is None
        ):  # a first-time item (prev NULL)
            dynamodb.delete_item(
                TableName=table,
                Key=key,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#requestId": REQUEST_ID},
                ExpressionAttributeValues=values,
            )
            return "deleted"
        names: dict[str, str] = {"#requestId": REQUEST_ID}
        sets, removes = [], []
        for index, attribute in enumerate(ITEM_ATTRIBUTES):
            previous = previous_name(attribute)
            names[f"#a{index}"] = attribute
            names[f"#p{index}"] = previous
            removes.append(f"#p{index}")
            if previous in item and "NULL" not in item[previous]:
                sets.append(f"#a{index} = #p{index}")
            else:  # the earlier item did not have it
                removes.append(f"#a{index}")
        dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return "restored"
    except botocore.exceptions.ClientError as exc:
        if aws.error_code(exc) == aws.CONDITION_FAILED:
            return "untouched"  # overwritten by a later upload since the read: not ours to undo
        raise
