"""Per-resource cdk-nag suppressions, each with the reason written next to the resource."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct


@dataclass(frozen=True)
class Waiver:
    rule: str  # e.g. "AwsSolutions-IAM5"
    reason: str
    # Findings inside the rule (e.g. one wildcard resource); a RegexAppliesTo when the finding's text
    # depends on the deployment environment (a region-agnostic synth prints <AWS::Region>).
    applies_to: Sequence[str | RegexAppliesTo] | None = None


def suppress(construct: IConstruct, *waivers: Waiver, apply_to_children: bool = False) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(
                id=w.rule, reason=w.reason, applies_to=list(w.applies_to) if w.applies_to else None
            )
            for w in waivers
        ],
        apply_to_children=apply_to_children,
    )
