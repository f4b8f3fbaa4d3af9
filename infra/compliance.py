"""Acknowledging a cdk-nag finding or skipping a checkov check: one helper each, so every
acknowledgement and skip names its rule and says why.

cdk-nag 3.x reports a finding as ``<Pack>::<Rule>[<finding>]`` (e.g.
``AwsSolutions::AwsSolutions-IAM5[Resource::*]``) and reads acknowledgements recorded with CDK's
``Validations.of(construct).acknowledge(...)``. Call this next to the resource concerned.
"""

from __future__ import annotations

import re

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct

_PACKS = {"AwsSolutions-": "AwsSolutions", "Serverless-": "Serverless"}


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge ``finding`` (``Rule`` or ``Rule[detail]``) on ``construct`` and its children."""
    rule = finding.split("[", 1)[0]
    pack = next((name for prefix, name in _PACKS.items() if rule.startswith(prefix)), None)
    if pack is None:
        raise ValueError(f"{finding}: not a rule of a cdk-nag pack this project runs")
    Validations.of(construct).acknowledge(
        Acknowledgment(id=f"{pack}::{finding}", reason=f"{rule}: {reason}")
    )


_CHECKOV_ID = re.compile(r"^CKV2?_AWS_[0-9]+$")
_MIN_REASON_CHARS = 20


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skip checkov's ``check_id`` on ``construct``'s CloudFormation resource, saying why.

    Recorded in the resource's template ``Metadata`` as
    ``{"checkov": {"skip": [{"id": ..., "comment": ...}]}}``, which checkov reads from the
    synthesized template; call it next to the resource concerned.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path}: no CloudFormation resource to annotate")
    if _CHECKOV_ID.fullmatch(check_id) is None:
        raise ValueError(f"{check_id}: not a checkov AWS check id (CKV_AWS_<n> / CKV2_AWS_<n>)")
    if len(reason.strip()) < _MIN_REASON_CHARS:
        raise ValueError(f"{check_id}: the reason must say why the check does not apply")
    current = resource.get_metadata("checkov") or {}
    skips = [*current.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**current, "skip": skips})
