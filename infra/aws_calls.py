"""Records every AWS call Boomerang's functions make while tests run, as IAM would authorise it.

The emulator and moto ignore IAM, so a call a function's role does not allow would first fail in a
store's account. While integration and e2e tests run, a wrapper around botocore's one request path
(`BaseClient._make_api_call`, so every client counts, whoever built it) notes each call's principal,
IAM action and resource; `infra/iam_check.py` then checks those against the roles of the synthesised
stack.

- Principal: the function whose handler module (`functions/<name>/handler.py`, from
  infra/description.py) is on the calling thread's stack, or `state_machine` for calls made by the
  Step Functions interpreter (its Lambda tasks). Calls made by test set-up, CLIs or the emulator's own
  plumbing (SQS pollers play the event source mappings) have no principal and are not recorded.
- Action: what IAM checks, not the API name: a DynamoDB transaction is one PutItem/UpdateItem/... per
  item, `GetObject` with a version is `s3:GetObjectVersion`, SESv2 is `ses:`, Pinpoint `mobiletargeting:`.
- Resource: in the shape the CDK grant writes it, with the deployment's names made symbolic, so one
  record holds for every run and every account: `<TABLE_NAME>` is "the resource whose name the
  functions get in TABLE_NAME" (the check maps it to the template's logical id through the functions'
  environment), `${Region}`/`${Account}` stand for the pseudo parameters, and `_` for a value that is
  data (an S3 key below its first folder, an execution name, a sender address, an export id).
  An operation not taught below is recorded on `*`: only a `Resource: "*"` grant allows it, so the
  check fails until it is taught here (conservative by construction).

The record of a whole run is committed as infra/aws_calls.json (`python -m infra.iam_check --update`);
each test session compares what it saw with it, so a new call cannot slip past the check.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from infra import description as d

REPO_ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO_ROOT / "infra" / "aws_calls.json"
# A directory: each recording process (test session, emulator) writes <label>-<pid>.jsonl into it.
RECORD_DIR_ENV = "BOOMERANG_AWS_CALLS_DIR"
DEFAULT_RECORD_DIR = REPO_ROOT / "build" / "aws-calls"
# Set by `python -m infra.iam_check --update`: sessions record without comparing with the snapshot.
UPDATING_ENV = "BOOMERANG_AWS_CALLS_UPDATING"
STATE_MACHINE_PRINCIPAL = "state_machine"
UPDATE_COMMAND = "python -m infra.iam_check --update"

Call = tuple[str, str, str]  # (principal, action, resource)

# Handler module -> function id, straight from the description (a new function is covered at once).
HANDLER_MODULES = {f.module: f.id for f in d.FUNCTIONS}
# Every environment variable a function is given: its value names a resource of the deployment.
ENV_NAMES = tuple(sorted({name for f in d.FUNCTIONS for name in f.env}))
_ARN = re.compile(r"^arn:[^:]+:([^:]*):([^:]*):([^:]*):(.*)$")
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")  # Secrets Manager appends 6 random characters


def principal(frame: Any) -> str | None:
    """Who is calling: the innermost handler module on the stack, else the Step Functions interpreter."""
    interpreter = False
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        found = HANDLER_MODULES.get(name)
        if found:
            return found
        if name.startswith("moto.stepfunctions"):
            interpreter = True
        frame = frame.f_back
    return STATE_MACHINE_PRINCIPAL if interpreter else None


class Symbols:
    """The deployment's resource names as `<ENV>` symbols: what the functions are configured with.

    Read from the environment and from the settings the handlers cached (a test may have changed the
    environment since), and remembered for the process: names are stable within a run."""

    _learned: dict[str, str] = {}
    _lock = threading.Lock()

    def __init__(self, environ: Any = None) -> None:
        found: dict[str, str] = {}
        learn = environ is None
        if environ is None:
            environ = os.environ
            found.update(_cached_settings())
        for name in ENV_NAMES:
            value = environ.get(name, "")
            if value:
                found[value] = name
        if not learn:
            self.by_value = found
            return
        with Symbols._lock:
            Symbols._learned.update(found)
            self.by_value = {**Symbols._learned, **found}

    def of(self, value: str) -> str | None:
        found = self.by_value.get(value)
        return f"<{found}>" if found else None


def _cached_settings() -> dict[str, str]:
    """value -> env name from the settings object the handlers use, only if they already read it."""
    from shared.platform.settings import settings

    if settings.cache_info().currsize == 0:
        return {}
    current = settings().model_dump()
    return {
        str(current[name.lower()]): name for name in ENV_NAMES if current.get(name.lower()) not in (None, "")
    }


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:${{Region}}:${{Account}}:{resource}"


def generic_arn(value: str) -> str:
    """A concrete ARN with its partition, region and account made symbolic (they differ per run)."""
    m = _ARN.match(value)
    if not m:
        return value
    service, region, account, rest = m.groups()
    return f"arn:aws:{service}:{'${Region}' if region else ''}:{'${Account}' if account else ''}:{rest}"


def _named(symbols: Symbols, value: str, service: str, kind: str) -> str:
    """A resource named by a value: its symbol, or its ARN in the account (`<kind><name>`)."""
    sym = symbols.of(value)
    if sym:
        return sym
    if value.startswith("arn:"):
        return generic_arn(value)
    return _arn(service, f"{kind}{value}")


# -- per service: (action, resource) pairs of one API call ----------------------------------------
Rows = list[tuple[str, str]]

_TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


# The condition key a recorded resource may carry after a space: `<TABLE_NAME> dynamodb:LeadingKeys=RATE#_`.
LEADING_KEYS = "dynamodb:LeadingKeys"
_TAG = re.compile(r"[A-Z][A-Z0-9_]*")
_KEY_EQUALS = re.compile(r"(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)")


def leading_key_form(value: Any) -> str:
    """A partition key value without its data: the key's leading tag (`RATE#_` for `RATE#<scope>#<window>`,
    `STORE#_` for every store's items), `_` when it starts with data. What a LeadingKeys condition names."""
    if isinstance(value, Mapping):  # the low-level client's typed form: {"S": "..."}
        value = value.get("S")
    if not isinstance(value, str):
        return "_"
    head, sep, _ = value.partition("#")
    if not _TAG.fullmatch(head):
        return "_"
    return f"{head}#_" if sep else head


def split_conditions(resource: str) -> tuple[str, dict[str, str]]:
    """A recorded resource and the condition keys noted with it (`key=value` after spaces)."""
    resource, *notes = resource.split(" ")
    return resource, dict(n.split("=", 1) for n in notes if "=" in n)


def _with_leading(resource: str, key: Mapping[str, Any] | None, attribute: str) -> str:
    if not key or attribute not in key:
        return resource  # unknown leading key: only an unconditional grant proves the call
    return f"{resource} {LEADING_KEYS}={leading_key_form(key[attribute])}"


def _query_key(p: Mapping[str, Any], attribute: str) -> dict[str, Any] | None:
    """The partition key value a Query's key condition binds (`pk = :pk` or `#p = :p`)."""
    expression = p.get("KeyConditionExpression")
    if not isinstance(expression, str):
        return None
    names = p.get("ExpressionAttributeNames") or {}
    values = p.get("ExpressionAttributeValues") or {}
    for name, placeholder in _KEY_EQUALS.findall(expression):
        if names.get(name, name) == attribute and placeholder in values:
            return {attribute: values[placeholder]}
    return None


def _dynamodb(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    def table(name: str) -> str:
        return _named(s, name, "dynamodb", "table/")

    pk = d.TABLE.partition_key

    def item(name: str, key: Mapping[str, Any] | None) -> str:
        return _with_leading(table(name), key, pk)

    if op == "TransactWriteItems":
        return [
            (f"dynamodb:{_TRANSACT[kind]}", item(body["TableName"], body.get("Key") or body.get("Item")))
            for entry in p.get("TransactItems", [])
            for kind, body in entry.items()
        ]
    if op == "TransactGetItems":
        return [
            ("dynamodb:GetItem", item(i["Get"]["TableName"], i["Get"].get("Key")))
            for i in p.get("TransactItems", [])
        ]
    if op == "BatchGetItem":
        return [
            (f"dynamodb:{op}", item(name, key))
            for name, request in p.get("RequestItems", {}).items()
            for key in request.get("Keys", []) or [None]
        ]
    if op == "BatchWriteItem":
        return [
            (
                f"dynamodb:{op}",
                item(
                    name, (w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key")
                ),
            )
            for name, writes in p.get("RequestItems", {}).items()
            for w in writes or [{}]
        ]
    if op == "ExportTableToPointInTime":
        return [(f"dynamodb:{op}", table(p["TableArn"]))]
    if op == "DescribeExport":
        # AWS: table/<name>/export/<id>; moto 5.2.5 writes table/<table ARN>/import/<id>
        m = re.search(r"table/(?:arn:[^/]*:table/)?([^/]+)/(?:export|import)/", p["ExportArn"])
        return [(f"dynamodb:{op}", f"{table(m.group(1)) if m else '*'}/export/_")]
    if "TableName" in p:
        res = table(p["TableName"])
        attribute = pk
        if p.get("IndexName"):
            res = f"{res}/index/{p['IndexName']}"
            attribute = next((i.partition for i in d.INDEXES if i.name == p["IndexName"]), "")
        if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            return [(f"dynamodb:{op}", _with_leading(res, p.get("Key") or p.get("Item"), attribute))]
        if op == "Query":
            return [(f"dynamodb:{op}", _with_leading(res, _query_key(p, attribute), attribute))]
        return [(f"dynamodb:{op}", res)]
    return [(f"dynamodb:{op}", "*")]


def _s3_key(key: str) -> str:
    # what a grant can name: the first folder of a key (templates/, active/, exports/); the rest is data
    return f"{key.split('/', 1)[0]}/_" if "/" in key else "_"


def _s3(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    bucket = p.get("Bucket", "")
    base = s.of(bucket) or f"arn:aws:s3:::{bucket}"

    def obj(key: str) -> str:
        return f"{base}/{_s3_key(key)}"

    versioned = bool(p.get("VersionId"))
    if op in ("GetObject", "HeadObject"):
        return [("s3:GetObjectVersion" if versioned else "s3:GetObject", obj(p["Key"]))]
    if op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return [("s3:PutObject", obj(p["Key"]))]
    if op == "DeleteObject":
        return [("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", obj(p["Key"]))]
    if op == "DeleteObjects":
        return [
            ("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", obj(o["Key"]))
            for o in p.get("Delete", {}).get("Objects", [])
        ]
    if op == "CopyObject":
        src = p["CopySource"]
        if isinstance(src, str):
            src_bucket, _, src_key = src.lstrip("/").partition("/")
            src = {"Bucket": src_bucket, "Key": src_key.split("?versionId=")[0]}
        src_base = s.of(src["Bucket"]) or f"arn:aws:s3:::{src['Bucket']}"
        get = "s3:GetObjectVersion" if src.get("VersionId") else "s3:GetObject"
        return [("s3:PutObject", obj(p["Key"])), (get, f"{src_base}/{_s3_key(src['Key'])}")]
    if op in ("ListObjects", "ListObjectsV2", "HeadBucket"):
        return [("s3:ListBucket", base)]
    if op == "ListObjectVersions":
        return [("s3:ListBucketVersions", base)]
    if "Key" in p:
        return [(f"s3:{op}", obj(p["Key"]))]
    return [(f"s3:{op}", base)]


def _queue(s: Symbols, url: str) -> str:
    sym = s.of(url)
    if sym:
        return sym
    return _arn("sqs", url.rstrip("/").rsplit("/", 1)[-1])


_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    action = f"sqs:{_SQS_ACTIONS.get(op, op)}"
    if "QueueUrl" in p:
        return [(action, _queue(s, p["QueueUrl"]))]
    if "QueueName" in p:
        return [(action, _arn("sqs", p["QueueName"]))]
    return [(action, "*")]


def _sns(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    topic = p.get("TopicArn") or p.get("TargetArn")
    if op == "Publish" and topic:
        return [("sns:Publish", s.of(topic) or generic_arn(topic))]
    return [(f"sns:{op}", "*")]  # a phone number has no ARN: SMS is authorised on "*" only


def _ses(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    if op in ("SendEmail", "SendRawEmail", "SendBulkEmail"):
        # SES authorises a send on the sender identity and on the configuration set used
        rows = [(f"ses:{op}", _arn("ses", "identity/_"))]
        config = p.get("ConfigurationSetName")
        if config:
            name = s.of(config) or config
            rows.append((f"ses:{op}", _arn("ses", f"configuration-set/{name}")))
        return rows
    return [(f"ses:{op}", "*")]  # GetAccount, GetSendQuota: account-level


def _pinpoint(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    app = p.get("ApplicationId")
    if op in ("SendMessages", "SendUsersMessages") and app:
        return [(f"mobiletargeting:{op}", _arn("mobiletargeting", f"apps/{s.of(app) or app}/messages"))]
    return [(f"mobiletargeting:{op}", "*")]


def _secrets(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    secret = p.get("SecretId")
    if not secret:
        return [(f"secretsmanager:{op}", "*")]
    sym = s.of(secret)
    if sym:
        return [(f"secretsmanager:{op}", sym)]
    name = generic_arn(secret).split(":secret:", 1)[-1] if secret.startswith("arn:") else secret
    if secret.startswith("arn:"):
        name = _SECRET_SUFFIX.sub("", name)
    return [(f"secretsmanager:{op}", _arn("secretsmanager", f"secret:{name}-??????"))]


def _states(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    if "executionArn" in p:
        # arn:aws:states:<region>:<account>:execution:<state machine name>:<execution name>
        parts = p["executionArn"].split(":")
        machine = ":".join(parts[:5] + ["stateMachine", parts[6]])
        sym = s.of(machine)
        name = f"{sym[:-1]}.Name>" if sym else parts[6]
        return [(f"states:{op}", _arn("states", f"execution:{name}:_"))]
    if "stateMachineArn" in p:
        return [(f"states:{op}", s.of(p["stateMachineArn"]) or generic_arn(p["stateMachineArn"]))]
    return [(f"states:{op}", "*")]


def _events(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    if op == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in p.get("Entries", [])} or {"default"}
        return [("events:PutEvents", _named(s, b, "events", "event-bus/")) for b in sorted(buses)]
    return [(f"events:{op}", "*")]


def _lambda(op: str, p: dict[str, Any], s: Symbols) -> Rows:
    action = "lambda:InvokeFunction" if op == "Invoke" else f"lambda:{op}"
    name = str(p.get("FunctionName", "")).split(":function:")[-1].split(":")[0]
    normalised = name.replace("-", "_")
    for f in d.FUNCTIONS:  # the emulator's and the tests' function names end with the function id
        if normalised.endswith(f.id.replace("-", "_")):
            return [(action, f"<function:{f.id}>")]
    return [(action, _arn("lambda", f"function:{name}") if name else "*")]


SERVICES: dict[str, Callable[[str, dict[str, Any], Symbols], Rows]] = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sqs": _sqs,
    "sns": _sns,
    "ses": _ses,
    "mobiletargeting": _pinpoint,
    "secretsmanager": _secrets,
    "states": _states,
    "events": _events,
    "lambda": _lambda,
}


def authorised(service: str, operation: str, params: dict[str, Any], symbols: Symbols) -> Rows:
    """The (IAM action, resource) pairs IAM checks for one API call. `service` is the signing name."""
    rule = SERVICES.get(service)
    try:
        return rule(operation, params, symbols) if rule else [(f"{service}:{operation}", "*")]
    except (KeyError, IndexError, TypeError, AttributeError):
        # parameters the rule did not expect (botocore will reject them anyway): the widest form
        return [(f"{service}:{operation}", "*")]


# -- the recorder ------------------------------------------------------------------------------------
class Recorder:
    """Wraps botocore's request path while installed; `calls` is what attributed callers asked for."""

    def __init__(self, flush_to: Path | None = None) -> None:
        self.calls: set[Call] = set()
        self._lock = threading.Lock()
        self._original: Any = None
        # Rewritten whenever a new call is seen (a few hundred distinct ones in a run), so a process
        # that is killed rather than stopped (an emulator past its shutdown timeout) still leaves it.
        self.flush_to = flush_to
        # A test session switches this on only around its own tier's tests (a combined `pytest` run
        # also runs unit tests, whose stubbed clients are not a deployment's calls).
        self.active = True

    def install(self) -> Recorder:
        from botocore.client import BaseClient

        if self._original is not None:
            return self
        # setattr/getattr: botocore's stubs do not declare the private method this wraps
        original = self._original = getattr(BaseClient, "_make_api_call")  # noqa: B009
        recorder = self

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            recorder.observe(client, operation_name, api_params, sys._getframe(1))
            return original(client, operation_name, api_params)

        setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010
        return self

    def uninstall(self) -> None:
        from botocore.client import BaseClient

        if self._original is not None:
            setattr(BaseClient, "_make_api_call", self._original)  # noqa: B010
            self._original = None

    def observe(self, client: Any, operation: str, params: dict[str, Any], frame: Any) -> None:
        if not self.active:
            return
        who = principal(frame)
        if who is None:
            return
        model = client.meta.service_model
        service = model.signing_name or model.endpoint_prefix
        rows = authorised(service, operation, params, Symbols())
        seen = {(who, action, resource) for action, resource in rows}
        with self._lock:
            if seen <= self.calls:
                return
            self.calls |= seen
            if self.flush_to is not None:
                self._write(self.flush_to)

    def write(self, directory: Path | str, label: str) -> Path:
        """This process's record as JSON lines, `<label>-<pid>.jsonl` in `directory`."""
        path = record_file(directory, label)
        with self._lock:
            self._write(path)
        return path

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(list(c)) + "\n" for c in sorted(self.calls)), encoding="utf-8")
        tmp.replace(path)  # whole or not at all: a reader never sees half a file


def record_file(directory: Path | str, label: str) -> Path:
    return Path(directory) / f"{label}-{os.getpid()}.jsonl"


def read_records(directory: Path | str) -> set[Call]:
    out: set[Call] = set()
    for path in sorted(Path(directory).rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                who, action, resource = json.loads(line)
                out.add((who, action, resource))
    return out


# -- the committed snapshot ------------------------------------------------------------------------
def load_snapshot(path: Path = SNAPSHOT) -> set[Call]:
    if not path.exists():
        return set()
    data = json.loads(path.read_text(encoding="utf-8"))
    out: set[Call] = set()
    for who, lines in data["calls"].items():
        for line in lines:
            action, resource = line.split(" ", 1)
            out.add((who, action, resource))
    return out


def snapshot_complete(path: Path = SNAPSHOT) -> bool:
    """Whether the snapshot is a whole run's record (`--update`), not folded from partial runs (`--add`):
    only then does a grant missing from it mean the grant is unused."""
    return path.exists() and bool(json.loads(path.read_text(encoding="utf-8")).get("complete"))


def dump_snapshot(calls: Iterable[Call], path: Path = SNAPSHOT, *, complete: bool) -> None:
    """One line per call, grouped by principal and sorted, so a change reads as a small diff."""
    by_principal: dict[str, list[str]] = {}
    for who, action, resource in sorted(set(calls)):
        by_principal.setdefault(who, []).append(f"{action} {resource}")
    data = {
        "about": "Every AWS call each function made in the integration and e2e tests, as IAM authorises "
        f"it (infra/aws_calls.py). Regenerate: {UPDATE_COMMAND}. Checked by python -m infra.iam_check.",
        # true only when written from one whole run of tests/integration and tests/e2e
        "complete": complete,
        "calls": by_principal,
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def unrecorded(observed: Iterable[Call], snapshot: set[Call] | None = None) -> list[Call]:
    """What a run saw that the committed snapshot lacks (so the IAM check never looked at it)."""
    known = load_snapshot() if snapshot is None else snapshot
    return sorted(set(observed) - known)


def describe_unrecorded(missing: list[Call]) -> str:
    lines = "\n".join(f"  {who}: {action} on {resource}" for who, action, resource in missing)
    return (
        f"{len(missing)} AWS call(s) made by Boomerang's functions are not in infra/aws_calls.json, so the "
        f"IAM check never saw them:\n{lines}\nGrant them in infra/description.py if needed, then run "
        f"`{UPDATE_COMMAND}` (README, DevOps)."
    )


def record_dir() -> Path:
    return Path(os.environ.get(RECORD_DIR_ENV) or DEFAULT_RECORD_DIR)


def recording_session(label: str) -> Iterator[Recorder]:
    """For a test session's fixture: record, write the record, then fail on calls the snapshot lacks."""
    recorder = Recorder(flush_to=record_file(record_dir(), label)).install()
    recorder.active = False  # the tier's per-test fixture turns it on around each of its tests
    try:
        yield recorder
    finally:
        recorder.uninstall()
    recorder.write(record_dir(), label)
    if not os.environ.get(UPDATING_ENV):
        missing = unrecorded(recorder.calls)
        if missing:
            raise AssertionError(describe_unrecorded(missing))
