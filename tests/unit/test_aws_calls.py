"""What IAM authorises for an API call (infra/aws_calls.py), and the policy evaluation of infra/iam_check.py."""

from __future__ import annotations

import sys

import pytest

from infra import aws_calls, iam_check
from infra.aws_calls import Symbols, authorised

ENV = {
    "TABLE_NAME": "boomerang-table",
    "TEMPLATES_BUCKET": "tpl",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:boomerang-journey",
    "JOURNEY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/boomerang-journey",
    "PUSH_APP_ID": "app-1",
    "EMAIL_CONFIGURATION_SET": "boomerang",
}


def rows(service: str, op: str, params: dict) -> list[tuple[str, str]]:
    return authorised(service, op, params, Symbols(ENV))


def test_a_transaction_is_authorised_item_by_item() -> None:
    items = [
        {"Put": {"TableName": "boomerang-table", "Item": {}}},
        {"Update": {"TableName": "boomerang-table", "Key": {}}},
        {"ConditionCheck": {"TableName": "boomerang-table", "Key": {}}},
    ]
    assert rows("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", "<TABLE_NAME>"),
        ("dynamodb:UpdateItem", "<TABLE_NAME>"),
        ("dynamodb:ConditionCheckItem", "<TABLE_NAME>"),
    ]
    assert rows("dynamodb", "Query", {"TableName": "boomerang-table", "IndexName": "stores"}) == [
        ("dynamodb:Query", "<TABLE_NAME>/index/stores")
    ]


def test_an_export_is_described_on_its_tables_export_path() -> None:
    aws = "arn:aws:dynamodb:us-east-1:123456789012:table/boomerang-table/export/01695353076000-a2b3c4d5"
    moto = "arn:aws:dynamodb:us-east-1:1:table/arn:aws:dynamodb:us-east-1:1:table/boomerang-table/import/ab12"
    for arn in (aws, moto):
        assert rows("dynamodb", "DescribeExport", {"ExportArn": arn}) == [
            ("dynamodb:DescribeExport", "<TABLE_NAME>/export/_")
        ]


def test_s3_actions_follow_iam_not_the_api_names() -> None:
    assert rows("s3", "GetObject", {"Bucket": "tpl", "Key": "journeys/shop/cart.yaml", "VersionId": "v"}) == [
        ("s3:GetObjectVersion", "<TEMPLATES_BUCKET>/journeys/_")
    ]
    assert rows("s3", "HeadObject", {"Bucket": "tpl", "Key": "x"}) == [
        ("s3:GetObject", "<TEMPLATES_BUCKET>/_")
    ]
    assert rows("s3", "ListObjectsV2", {"Bucket": "tpl", "Prefix": "a/"}) == [
        ("s3:ListBucket", "<TEMPLATES_BUCKET>")
    ]
    assert rows("s3", "ListObjectVersions", {"Bucket": "other"}) == [
        ("s3:ListBucketVersions", "arn:aws:s3:::other")
    ]


def test_executions_secrets_queues_push_and_email_in_the_grants_shape() -> None:
    execution = "arn:aws:states:us-east-1:123456789012:execution:boomerang-journey:cart-1"
    assert rows("states", "DescribeExecution", {"executionArn": execution}) == [
        (
            "states:DescribeExecution",
            "arn:aws:states:${Region}:${Account}:execution:<STATE_MACHINE_ARN.Name>:_",
        )
    ]
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:boomerang/partners/s/p-AbC123"
    assert rows("secretsmanager", "GetSecretValue", {"SecretId": secret}) == [
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:${Region}:${Account}:secret:boomerang/partners/s/p-??????",
        )
    ]
    assert rows("sqs", "SendMessageBatch", {"QueueUrl": ENV["JOURNEY_QUEUE_URL"], "Entries": []}) == [
        ("sqs:SendMessage", "<JOURNEY_QUEUE_URL>")
    ]
    assert rows("mobiletargeting", "SendMessages", {"ApplicationId": "app-1", "MessageRequest": {}}) == [
        (
            "mobiletargeting:SendMessages",
            "arn:aws:mobiletargeting:${Region}:${Account}:apps/<PUSH_APP_ID>/messages",
        )
    ]
    assert rows("ses", "SendEmail", {"FromEmailAddress": "a@b.c", "ConfigurationSetName": "boomerang"}) == [
        ("ses:SendEmail", "arn:aws:ses:${Region}:${Account}:identity/_"),
        ("ses:SendEmail", "arn:aws:ses:${Region}:${Account}:configuration-set/<EMAIL_CONFIGURATION_SET>"),
    ]
    assert rows("sns", "Publish", {"PhoneNumber": "+447700900000", "Message": "m"}) == [("sns:Publish", "*")]


def test_an_operation_not_taught_is_recorded_on_star_so_only_a_star_grant_allows_it() -> None:
    assert rows("cloudwatch", "PutMetricData", {"Namespace": "B"}) == [("cloudwatch:PutMetricData", "*")]
    assert rows("dynamodb", "TransactWriteItems", {"TransactItems": "broken"}) == [
        ("dynamodb:TransactWriteItems", "*")
    ]


def test_the_principal_is_the_handler_on_the_stack() -> None:
    assert aws_calls.principal(sys._getframe()) is None  # a test, not a function
    frame = type("F", (), {"f_globals": {"__name__": "functions.profile.handler"}, "f_back": None})()
    assert aws_calls.principal(frame) == "profile"


@pytest.mark.parametrize(
    ("expr", "resolved"),
    [
        ({"Fn::GetAtt": ["Table", "Arn"]}, "<Table>"),
        ({"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/*"]]}, "<Table>/index/*"),
        (
            {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":states:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":execution:",
                        {"Fn::Select": [6, {"Fn::Split": [":", {"Ref": "Machine"}]}]},
                        ":*",
                    ],
                ]
            },
            "arn:aws:states:${Region}:${Account}:execution:<Machine.Name>:*",
        ),
        ({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/x"}, "arn:aws:s3:::<Bucket>/x"),
    ],
)
def test_policy_resources_resolve_to_logical_ids(expr: object, resolved: str) -> None:
    assert iam_check.resolve(expr) == resolved


def test_deny_wins_and_a_conditional_allow_proves_nothing() -> None:
    allow = iam_check.Statement("Allow", ("dynamodb:*",), ("<T>",), False, "p")
    deny = iam_check.Statement("Deny", ("dynamodb:DeleteItem",), ("*",), False, "p")
    conditional = iam_check.Statement("Allow", ("s3:GetObject",), ("*",), True, "p")
    p = iam_check.Principal("f", "role", [allow, deny, conditional])
    assert p.allows("dynamodb:getitem", "<T>")
    assert not p.allows("dynamodb:DeleteItem", "<T>")
    assert not p.allows("s3:GetObject", "<B>/x")
    assert not p.allows("dynamodb:GetItem", "<T>/index/x")


def test_the_recorder_sees_a_handlers_calls_only_and_keeps_them_on_disk(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("TABLE_NAME", "boomerang-table")
    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    # a function defined with a handler module's globals: what the recorder looks for on the stack
    handler_globals: dict[str, object] = {"__name__": "functions.feedback.handler"}
    exec("def handler(ddb):\n    ddb.get_item(TableName='boomerang-table', Key={})\n", handler_globals)
    path = tmp_path / "rec.jsonl"  # type: ignore[operator]
    recorder = aws_calls.Recorder(flush_to=path).install()
    try:
        with Stubber(ddb) as stub:
            stub.add_response("get_item", {})
            stub.add_response("get_item", {})
            handler_globals["handler"](ddb)  # type: ignore[operator]
            ddb.get_item(TableName="boomerang-table", Key={})  # the test's own call: nobody's
    finally:
        recorder.uninstall()
    assert recorder.calls == {("feedback", "dynamodb:GetItem", "<TABLE_NAME>")}
    assert aws_calls.read_records(path.parent) == recorder.calls
    # uninstalled: nothing more is recorded
    with Stubber(ddb) as stub:
        stub.add_response("get_item", {})
        handler_globals["handler"](ddb)  # type: ignore[operator]
    assert len(recorder.calls) == 1


def test_a_run_missing_from_the_snapshot_names_each_call_and_the_command() -> None:
    snapshot = {("ingest", "events:PutEvents", "<BUS_NAME>")}
    seen = snapshot | {("profile", "sqs:SendMessage", "<JOURNEY_QUEUE_URL>")}
    missing = aws_calls.unrecorded(seen, snapshot)
    assert missing == [("profile", "sqs:SendMessage", "<JOURNEY_QUEUE_URL>")]
    text = aws_calls.describe_unrecorded(missing)
    assert "profile: sqs:SendMessage on <JOURNEY_QUEUE_URL>" in text and aws_calls.UPDATE_COMMAND in text


def test_each_item_call_notes_its_leading_key_without_its_data() -> None:
    key = {"pk": "RATE#form-ip#shop-1#9f2c#1700000000", "sk": "RATE"}
    assert rows("dynamodb", "UpdateItem", {"TableName": "boomerang-table", "Key": key}) == [
        ("dynamodb:UpdateItem", "<TABLE_NAME> dynamodb:LeadingKeys=RATE#_")
    ]
    # the low-level client's typed values; each item of a batch or a transaction on its own
    writes = [
        {"PutRequest": {"Item": {"pk": {"S": "STORE#shop-1#CUST#u:42"}}}},
        {"DeleteRequest": {"Key": {"pk": {"S": "a:anonymous"}}}},
    ]
    assert rows("dynamodb", "BatchWriteItem", {"RequestItems": {"boomerang-table": writes}}) == [
        ("dynamodb:BatchWriteItem", "<TABLE_NAME> dynamodb:LeadingKeys=STORE#_"),
        ("dynamodb:BatchWriteItem", "<TABLE_NAME> dynamodb:LeadingKeys=_"),
    ]
    query = {
        "TableName": "boomerang-table",
        "KeyConditionExpression": "#p = :p AND begins_with(sk, :s)",
        "ExpressionAttributeNames": {"#p": "pk"},
        "ExpressionAttributeValues": {":p": {"S": "APIKEY#abc"}, ":s": {"S": "X"}},
    }
    assert rows("dynamodb", "Query", query) == [
        ("dynamodb:Query", "<TABLE_NAME> dynamodb:LeadingKeys=APIKEY#_")
    ]
    # no data reaches the record: a customer id, an email, a store are all `_`
    assert aws_calls.leading_key_form("STORE#shop-1#ALIAS#email#ann@example.com") == "STORE#_"
    assert aws_calls.leading_key_form("ann@example.com") == "_"
    assert aws_calls.split_conditions("<T> dynamodb:LeadingKeys=RATE#_") == (
        "<T>",
        {"dynamodb:LeadingKeys": "RATE#_"},
    )


def test_a_leading_keys_condition_proves_only_the_partitions_it_names() -> None:
    condition = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#*"]}}
    rate = iam_check.Statement("Allow", ("dynamodb:UpdateItem",), ("<T>",), True, "p", condition)
    p = iam_check.Principal("ingest", "role", [rate])
    assert p.allows("dynamodb:UpdateItem", "<T>", {"dynamodb:LeadingKeys": "RATE#_"})
    assert not p.allows("dynamodb:UpdateItem", "<T>", {"dynamodb:LeadingKeys": "STORE#_"})
    assert not p.allows("dynamodb:UpdateItem", "<T>", {"dynamodb:LeadingKeys": "_"})
    assert not p.allows("dynamodb:UpdateItem", "<T>")  # leading key unknown: unproven
    # `RATE#_` is "RATE# and any data": only a pattern covering all of it proves the call
    assert iam_check.like_covers("RAT*", "RATE#_")
    assert not iam_check.like_covers("RATE#form*", "RATE#_")
    assert not iam_check.like_covers("RATE#?", "RATE#_")
    assert iam_check.like_covers("RATE", "RATE") and not iam_check.like_covers("RATE", "RATE#_")
    # any other condition proves nothing
    other = {"StringEquals": {"dynamodb:LeadingKeys": ["RATE#_"]}}
    q = iam_check.Principal(
        "f", "role", [iam_check.Statement("Allow", ("dynamodb:*",), ("<T>",), True, "p", other)]
    )
    assert not q.allows("dynamodb:UpdateItem", "<T>", {"dynamodb:LeadingKeys": "RATE#_"})
