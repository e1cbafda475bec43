"""Least privilege, proven: every recorded AWS call checked against its role in the synthesised stack.

infra/aws_calls.json holds what each function (and the journey state machine) called in the
integration and e2e tests, in symbolic form (infra/aws_calls.py). This module reads the CloudFormation
template the CDK stack synthesises, finds each principal's role and the policies attached to it,
resolves their resources (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select of Fn::Split, the pseudo
parameters) to the same symbolic form, and evaluates IAM's rules: an explicit Deny wins, an Allow
needs both the action (wildcards, case-insensitive) and the resource (wildcards) to match. A statement
with a Condition allows only when every condition is one this check evaluates and the recorded call
satisfies it: `ForAllValues:StringLike` on `dynamodb:LeadingKeys`, against the data-free leading key the
recorder notes (`RATE#_` is "RATE# then data"); any other condition proves nothing. Then:

- an ungranted call is an error naming the function, the action and the resource;
- a grant no recorded call used is listed; it must be removed from infra/description.py or named in
  `UNEXERCISED_GRANTS` there with the reason (the platform's own uses, the function's log group and
  its event source mapping's queue, are not the code's and are left out).

    python -m infra.iam_check            # synthesise, check, list unused grants (exit 1 on a finding)
    python -m infra.iam_check --update   # rerun the integration and e2e tests recording, rewrite the snapshot
    python -m infra.iam_check --add DIR  # fold a partial run's records (DIR/*.jsonl) into the snapshot
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from infra import aws_calls
from infra import description as d

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "${Region}",
    "AWS::AccountId": "${Account}",
    "AWS::URLSuffix": "amazonaws.com",
}
# Used by AWS on the function's behalf, not by its code: Lambda writes the function's logs, and the
# event source mapping polls the queue the function consumes.
PLATFORM_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
EVENT_SOURCE_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
# The state machine's role: CloudWatch Logs delivery and X-Ray, used by Step Functions itself.
STATE_MACHINE_PLATFORM_PREFIXES = ("logs:", "xray:")


class Unresolvable(ValueError):
    """A policy expression this checker cannot turn into a resource pattern (teach `resolve`)."""


def resolve(expr: Any) -> str:
    """A CloudFormation value as a resource pattern: `<LogicalId>` for a resource's ARN or Ref,
    `<LogicalId.Attr>` for another attribute, pseudo parameters as in infra/aws_calls.py."""
    if isinstance(expr, str):
        return expr
    if not isinstance(expr, Mapping) or len(expr) != 1:
        raise Unresolvable(f"cannot resolve {expr!r}")
    ((fn, arg),) = expr.items()
    if fn == "Ref":
        return PSEUDO.get(arg, f"<{arg}>")
    if fn == "Fn::GetAtt":
        logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return f"<{logical}>" if attr == "Arn" else f"<{logical}.{attr}>"
    if fn == "Fn::Join":
        sep, parts = arg
        return str(sep).join(resolve(p) for p in parts)
    if fn == "Fn::Sub":
        text, extra = (arg, {}) if isinstance(arg, str) else arg
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda m: resolve(extra[m.group(1)]) if m.group(1) in extra else resolve({"Ref": m.group(1)}),
            text,
        )
    if fn == "Fn::Select":
        index, listed = arg
        if isinstance(listed, Mapping) and "Fn::Split" in listed:
            sep, source = listed["Fn::Split"]
            value = resolve(source)
            # a state machine's ARN split on ':' has its name at index 6 (what grant_execution uses)
            if sep == ":" and int(index) == 6 and re.fullmatch(r"<[^>.]+>", value):
                return f"{value[:-1]}.Name>"
        raise Unresolvable(f"cannot resolve {expr!r}")
    raise Unresolvable(f"cannot resolve {expr!r}")


@cache
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    return bool(_glob(pattern, case_sensitive).match(value))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Condition operator -> condition keys this check can evaluate against what the recorder notes.
EVALUATED_CONDITIONS = {"ForAllValues:StringLike": (aws_calls.LEADING_KEYS,)}


def like_covers(pattern: str, recorded: str) -> bool:
    """Whether StringLike `pattern` matches every key the recorded form stands for. `TAG#_` is "TAG#
    followed by any data": only a pattern that is a literal prefix of `TAG#` then `*` covers all of it
    (`RATE#*` does, `RATE#?` or `RATE#form*` do not); a recorded form without `_` is one value."""
    if not recorded.endswith("_"):
        return matches(pattern, recorded)
    literal = pattern[:-1]
    return pattern.endswith("*") and not any(c in literal for c in "*?") and recorded[:-1].startswith(literal)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditional: bool
    policy: str  # the logical id of the policy it is in
    condition: Mapping[str, Any] = field(default_factory=dict)

    def covers(self, action: str, resource: str) -> bool:
        return any(matches(a, action, case_sensitive=False) for a in self.actions) and any(
            matches(r, resource) for r in self.resources
        )

    def satisfied(self, noted: Mapping[str, str]) -> bool:
        """Whether the recorded call provably meets every condition (an unevaluated one: no)."""
        if not self.condition:
            return False  # conditional, but the condition was not read: nothing is proven
        for operator, keys in self.condition.items():
            for key, patterns in keys.items():
                if key not in EVALUATED_CONDITIONS.get(operator, ()) or key not in noted:
                    return False
                if not any(like_covers(p, noted[key]) for p in _listed(patterns)):
                    return False
        return True


@dataclass
class Principal:
    name: str  # a function id or `state_machine`
    role: str  # the role's logical id
    statements: list[Statement] = field(default_factory=list)
    platform: set[tuple[str, str]] = field(default_factory=set)  # (action, resource) AWS uses itself

    def allows(self, action: str, resource: str, noted: Mapping[str, str] | None = None) -> bool:
        # a Deny counts whatever its condition (conservative); an Allow only when its condition is met
        if any(s.effect == "Deny" and s.covers(action, resource) for s in self.statements):
            return False
        return any(s.effect == "Allow" and self.proves(s, action, resource, noted) for s in self.statements)

    @staticmethod
    def proves(s: Statement, action: str, resource: str, noted: Mapping[str, str] | None) -> bool:
        return s.covers(action, resource) and (not s.conditional or s.satisfied(noted or {}))


def _statements(resources: Mapping[str, Any], role: str) -> list[Statement]:
    out: list[Statement] = []
    documents: list[tuple[str, Any]] = []
    props = resources[role].get("Properties", {})
    for inline in props.get("Policies", []):
        documents.append((f"{role}/{inline.get('PolicyName')}", inline["PolicyDocument"]))
    if props.get("ManagedPolicyArns"):
        raise Unresolvable(f"role {role} has managed policies, which this check cannot read")
    for logical, res in resources.items():
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {"Ref": role} in res[
            "Properties"
        ].get("Roles", []):
            documents.append((logical, res["Properties"]["PolicyDocument"]))
    for logical, doc in documents:
        for s in _listed(doc["Statement"]):
            if "NotAction" in s or "NotResource" in s:
                raise Unresolvable(f"{logical}: NotAction/NotResource are not evaluated by this check")
            out.append(
                Statement(
                    effect=s["Effect"],
                    actions=tuple(_listed(s["Action"])),
                    resources=tuple(resolve(r) for r in _listed(s["Resource"])),
                    conditional="Condition" in s,
                    policy=logical,
                    condition=s.get("Condition", {}),
                )
            )
    return out


def principals(template: Mapping[str, Any]) -> dict[str, Principal]:
    """Each function's (found by its handler) and the journey state machine's role and statements."""
    resources = template["Resources"]
    out: dict[str, Principal] = {}
    by_handler = {f.handler: f.id for f in d.FUNCTIONS}
    functions: dict[str, str] = {}  # function logical id -> function id
    for logical, res in resources.items():
        if res["Type"] == "AWS::Lambda::Function" and res["Properties"].get("Handler") in by_handler:
            fid = by_handler[res["Properties"]["Handler"]]
            role = res["Properties"]["Role"]["Fn::GetAtt"][0]
            functions[logical] = fid
            out[fid] = Principal(fid, role, _statements(resources, role))
        if res["Type"] == "AWS::StepFunctions::StateMachine":
            role = res["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            p = Principal(aws_calls.STATE_MACHINE_PRINCIPAL, role, _statements(resources, role))
            for s in p.statements:
                p.platform.update(
                    (a, r)
                    for a in s.actions
                    for r in s.resources
                    if a.startswith(STATE_MACHINE_PLATFORM_PREFIXES)
                )
            out[p.name] = p
    for logical, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Lambda::EventSourceMapping":
            target = functions.get(props["FunctionName"].get("Ref", ""))
            if target:
                queue = resolve(props["EventSourceArn"])
                out[target].platform.update((a, queue) for a in EVENT_SOURCE_ACTIONS)
        if res["Type"] == "AWS::Lambda::Function" and logical in functions:
            p = out[functions[logical]]
            p.platform.update(
                (a, r)
                for s in p.statements
                for a in s.actions
                for r in s.resources
                if a in PLATFORM_LOG_ACTIONS
            )
    return out


def symbol_map(template: Mapping[str, Any]) -> dict[str, str]:
    """`<ENV>` symbol -> the template's `<LogicalId>`, from the functions' environment; `<function:id>`
    -> the function's logical id."""
    out: dict[str, str] = {}
    by_handler = {f.handler: f.id for f in d.FUNCTIONS}
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = res["Properties"]
        if props.get("Handler") in by_handler:
            out[f"function:{by_handler[props['Handler']]}"] = logical
        for name, value in props.get("Environment", {}).get("Variables", {}).items():
            try:
                resolved = resolve(value)
            except Unresolvable:
                continue
            m = re.fullmatch(r"<([^>.]+)>", resolved)
            if m:
                out[name] = m.group(1)
    return out


def localise(resource: str, symbols: Mapping[str, str]) -> str:
    """A recorded resource with its `<ENV>` symbols replaced by the template's logical ids."""

    def sub(m: re.Match[str]) -> str:
        name, attr = m.group(1), m.group(2) or ""
        return f"<{symbols[name]}{attr}>" if name in symbols else m.group(0)

    return re.sub(r"<([^>.]+)(\.[^>]+)?>", sub, resource)


@dataclass
class Report:
    complete: bool = True  # the record is a whole run's: unused grants and unreached functions are findings
    ungranted: list[tuple[str, str, str]] = field(default_factory=list)  # principal, action, resource
    unused: list[tuple[str, str, str]] = field(default_factory=list)  # principal, action, resource pattern
    # an action used on some of its granted resources and not on these (a narrower grant could do)
    partly_used: list[tuple[str, str, str]] = field(default_factory=list)
    unknown_principals: list[str] = field(default_factory=list)
    unexplained: list[tuple[str, str, str]] = field(default_factory=list)  # unused, not in UNEXERCISED_GRANTS
    stale_reasons: list[tuple[str, str]] = field(default_factory=list)  # reasons for grants that are used
    unrecorded_functions: list[str] = field(default_factory=list)  # functions no test reached

    @property
    def ok(self) -> bool:
        if self.ungranted or self.unknown_principals:
            return False
        return not self.complete or not (self.unexplained or self.stale_reasons or self.unrecorded_functions)

    def text(self) -> str:
        lines: list[str] = []
        for who, action, resource in self.ungranted:
            lines.append(f"UNGRANTED: {who} calls {action} on {resource}, which its role does not allow")
        for who in self.unknown_principals:
            lines.append(f"UNKNOWN: calls recorded for {who!r}, which has no role in the template")
        if not self.complete:
            lines.append(
                "The record is partial (folded with --add): unused grants are listed, not enforced; "
                f"`{aws_calls.UPDATE_COMMAND}` makes it complete."
            )
        tag = "" if self.complete else "(partial record) "
        for who in self.unrecorded_functions:
            lines.append(f"{tag}UNRECORDED: no test reached function {who!r} through its handler")
        for (who, action), resources in _grouped(self.unexplained):
            lines.append(
                f"{tag}UNUSED: {who} is granted {action} on {resources} but no test used it: remove the grant "
                "from infra/description.py, or say why it stays in UNEXERCISED_GRANTS there"
            )
        for who, action in self.stale_reasons:
            lines.append(
                f"{tag}STALE: UNEXERCISED_GRANTS explains {who} {action}, but it is used: drop the entry"
            )
        explained = [u for u in self.unused if u not in self.unexplained]
        if explained:
            lines.append("Granted, unused in the tests, with the reason in UNEXERCISED_GRANTS:")
            lines += [f"  {who}: {action} on {res}" for (who, action), res in _grouped(explained)]
        if self.partly_used:
            lines.append(
                "Used on other resources of the same grant, never on these (a narrower grant could do):"
            )
            lines += [f"  {who}: {action} on {res}" for (who, action), res in _grouped(self.partly_used)]
        return "\n".join(lines) or "every recorded call is granted; every grant is used or explained"


def _grouped(rows: Iterable[tuple[str, str, str]]) -> list[tuple[tuple[str, str], str]]:
    by: dict[tuple[str, str], list[str]] = {}
    for who, action, resource in rows:
        by.setdefault((who, action), []).append(resource)
    return [(k, ", ".join(sorted(v))) for k, v in sorted(by.items())]


def check(
    template: Mapping[str, Any],
    calls: Iterable[tuple[str, str, str]],
    unexercised: Mapping[str, Mapping[str, str]] | None = None,
    *,
    complete: bool = True,
) -> Report:
    """`complete`: the calls are a whole run's, so an unused grant is a finding (else only listed)."""
    unexercised = d.UNEXERCISED_GRANTS if unexercised is None else unexercised
    roles = principals(template)
    symbols = symbol_map(template)
    report = Report(complete=complete)
    used: dict[str, set[tuple[str, str]]] = {name: set() for name in roles}
    recorded: set[str] = set()
    for who, action, resource in sorted(set(calls)):
        recorded.add(who)
        if who not in roles:
            if who not in report.unknown_principals:
                report.unknown_principals.append(who)
            continue
        base, noted = aws_calls.split_conditions(resource)
        concrete = localise(base, symbols)
        p = roles[who]
        if not p.allows(action, concrete, noted):
            report.ungranted.append((who, action, resource))
            continue
        used[who].update(
            (a, r)
            for s in p.statements
            if s.effect == "Allow" and p.proves(s, action, concrete, noted)
            for a in s.actions
            if matches(a, action, case_sensitive=False)
            for r in s.resources
            if matches(r, concrete)
        )
    report.unrecorded_functions = sorted(f.id for f in d.FUNCTIONS if f.id not in recorded)
    for name, p in sorted(roles.items()):
        used_actions = {a for a, _ in used[name]}
        for s in p.statements:
            if s.effect != "Allow":
                continue
            for a in s.actions:
                for r in s.resources:
                    if (a, r) in used[name] or (a, r) in p.platform:
                        continue
                    if a in used_actions:
                        report.partly_used.append((name, a, r))
                        continue
                    report.unused.append((name, a, r))
                    if a not in unexercised.get(name, {}):
                        report.unexplained.append((name, a, r))
    unused_actions = {(who, a) for who, a, _ in report.unused}
    report.stale_reasons = sorted(
        (who, a) for who, actions in unexercised.items() for a in actions if (who, a) not in unused_actions
    )
    return report


def synthesise() -> dict[str, Any]:
    """The stack's template, offline (no Docker, no dependencies in the assets, no cdk-nag)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk.assertions import Template

    from infra.app import build_app

    _, stack = build_app(with_dependencies=False, nag=False)
    return dict(Template.from_stack(stack).to_json())


def update(add: Path | None = None) -> int:
    """Regenerate infra/aws_calls.json from a recording run of the integration and e2e tests (or fold
    in the records of a partial run)."""
    if add is not None:
        calls = aws_calls.read_records(add)
        if not calls:
            print(f"no records in {add}", file=sys.stderr)
            return 1
        before = aws_calls.load_snapshot()
        # a partial run cannot show that a grant is unused: the snapshot is no longer complete
        aws_calls.dump_snapshot(before | calls, complete=False)
        print(f"added {len(calls - before)} call(s) from {add}; run --update for a complete record")
        return 0
    directory = aws_calls.DEFAULT_RECORD_DIR / f"update-{int(time.time())}"
    env = {**os.environ, aws_calls.RECORD_DIR_ENV: str(directory), aws_calls.UPDATING_ENV: "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integration", "tests/e2e"]
    print("recording:", " ".join(cmd))
    result = subprocess.run(cmd, cwd=aws_calls.REPO_ROOT, env=env, check=False)
    if result.returncode != 0:
        print("tests failed: the snapshot is left as it was (fix them first)", file=sys.stderr)
        return result.returncode
    calls = aws_calls.read_records(directory)
    before = aws_calls.load_snapshot()
    aws_calls.dump_snapshot(calls, complete=True)
    print(f"infra/aws_calls.json: {len(calls)} calls ({len(calls - before)} new, {len(before - calls)} gone)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.iam_check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update", action="store_true", help="rerun the integration and e2e tests, recording"
    )
    parser.add_argument("--add", type=Path, metavar="DIR", help="fold DIR/*.jsonl into the snapshot")
    args = parser.parse_args(argv)
    if args.update or args.add:
        return update(args.add)
    report = check(synthesise(), aws_calls.load_snapshot(), complete=aws_calls.snapshot_complete())
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
