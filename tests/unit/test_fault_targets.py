"""``local.faults.TASK_OPERATIONS`` is what tasks/ really calls, derived here from the code.

Every ``X.method(...)`` call whose receiver is named after a service the tasks create clients for
(``s3``, ``dynamodb``, ``metadata.dynamodb``, ``claim.dynamodb`` ...) is mapped to its operation
through botocore's model (``put_object`` -> ``PutObject``; ``get_paginator("list_object_versions")``
-> ``ListObjectVersions``). A new AWS call in tasks/ fails this test until the constant (shown in
``python -m local --help`` and the README) names it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import botocore
import botocore.client
import botocore.session
import pytest

from local.faults import TASK_OPERATIONS

TASKS = Path(__file__).resolve().parents[2] / "tasks"
Sources = list[tuple[str, ast.Module]]  # (where, parsed code)


def _tasks_code() -> Sources:
    paths = sorted(TASKS.rglob("*.py"))
    return [(str(p.relative_to(TASKS.parent)), ast.parse(p.read_text(), str(p))) for p in paths]


def _calls(sources: Sources) -> Iterator[tuple[str, ast.Call]]:
    for where, tree in sources:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                yield f"{where}:{node.lineno}", node


def _name(node: ast.expr) -> str | None:
    """``s3`` for ``s3`` and for ``metadata.s3``."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _literal(call: ast.Call) -> str | None:
    first = call.args[0] if call.args else None
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def client_services(sources: Sources) -> set[str]:
    """The services of the tasks' clients: each ``client("service", ...)`` call's literal."""
    return {
        service
        for _, call in _calls(sources)
        if _name(call.func) == "client" and (service := _literal(call)) is not None
    }


def _operations_by_method(service: str) -> dict[str, str]:
    """``put_object`` -> ``PutObject``: botocore's own name mapping."""
    model = botocore.session.get_session().get_service_model(service)
    return {botocore.xform_name(op): op for op in model.operation_names}


def called_operations(sources: Sources) -> set[str]:
    """``service:Operation`` of every client call in ``sources``."""
    services = {service: _operations_by_method(service) for service in client_services(sources)}
    called = set()
    for where, call in _calls(sources):
        if not isinstance(call.func, ast.Attribute):
            continue
        method, receiver = call.func.attr, _name(call.func.value)
        operations = services.get(receiver or "")
        if operations is None:
            # A client bound to a name that is not its service's would escape this test.
            named = {op for ops in services.values() for op in ops}
            assert method not in named, f"{where}: name the client of .{method}() after its service"
            continue
        if method == "get_paginator":
            method = _literal(call) or ""  # a paginator is named after its operation
            assert method in operations, f"{where}: {receiver} has no paginator {method!r}"
        elif method == "generate_presigned_url":
            continue  # signed locally (botocore adds it to S3 clients): no AWS call
        elif method not in operations:
            assert hasattr(botocore.client.BaseClient, method), f"{where}: {receiver}.{method}?"
            continue  # can_paginate, close ...: no AWS call
        called.add(f"{receiver}:{operations[method]}")
    return called


def test_task_operations_are_exactly_the_operations_the_tasks_call():
    assert len(set(TASK_OPERATIONS)) == len(TASK_OPERATIONS), "listed twice"
    assert set(TASK_OPERATIONS) == called_operations(_tasks_code())


SAMPLE = """
s3 = aws.client("s3", env)
aws.client("dynamodb", env, config)
s3.put_object(Bucket=bucket, Key=key, Body=body)
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    s3.can_paginate("list_objects_v2")
claim.dynamodb.get_item(TableName=table, Key=key)
"""


def test_the_derivation_follows_clients_paginators_and_attributes():
    sample = [("sample", ast.parse(SAMPLE))]
    assert called_operations(sample) == {"s3:PutObject", "s3:ListObjectsV2", "dynamodb:GetItem"}


def test_the_derivation_refuses_a_client_it_cannot_place():
    renamed = SAMPLE + "table.update_item(TableName=table, Key=key)\n"
    with pytest.raises(AssertionError, match=r"name the client of \.update_item"):
        called_operations([("sample", ast.parse(renamed))])


def test_the_readme_names_every_task_operation():
    readme = (TASKS.parent / "README.md").read_text()
    assert [op for op in TASK_OPERATIONS if f"`{op}`" not in readme] == []
