"""Acknowledging a cdk-nag finding: one helper so every acknowledgement names its rule.

cdk-nag 3.x reports a finding as ``<Pack>::<Rule>[<finding>]`` (e.g.
``AwsSolutions::AwsSolutions-IAM5[Resource::*]``) and reads acknowledgements recorded with CDK's
``Validations.of(construct).acknowledge(...)``. Call this next to the resource concerned.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
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
