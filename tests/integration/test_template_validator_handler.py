"""The template validator λ on moto: S3 "Object Created" events in, active versions, reports and
notifications out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from functions.template_validator import handler as validator
from shared.domain.template_variables import sample_variables
from shared.platform import settings as env
from shared.platform.settings import settings
from shared.templates.render import render_email
from shared.templates.store import TemplateStore
from tests.aws_fixtures import REGION, LambdaContext, World

FOLDER = "templates/shop-1/cart-abandoned/"


@pytest.fixture
def topic(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    arn = boto3.client("sns", region_name=REGION).create_topic(Name="reports")["TopicArn"]
    monkeypatch.setenv(env.REPORTS_TOPIC_ARN, arn)
    settings.cache_clear()
    return arn


def s3_event(bucket: str, key: str, version_id: str | None, message_id: str = "m-1") -> dict[str, Any]:
    body = {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": bucket},
            "object": {"key": key, "version-id": version_id},
            "reason": "PutObject",
        },
    }
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "r",
                "body": json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:templates",
                "awsRegion": REGION,
            }
        ]
    }


def upload(world: World, file: str, body: str) -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    version = s3.put_object(Bucket=world.bucket, Key=FOLDER + file, Body=body.encode())["VersionId"]
    result = validator.handler(s3_event(world.bucket, FOLDER + file, version), LambdaContext())
    assert result == {"batchItemFailures": []}
    report = s3.get_object(Bucket=world.bucket, Key=f"reports/{FOLDER}{file}.json")["Body"].read()
    return dict(json.loads(report))


def copy_default(world: World) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for file in ("subject.txt", "body.html", "body.txt"):
        source = {"Bucket": world.bucket, "Key": f"templates/_default/cart-abandoned/{file}"}
        s3.copy_object(Bucket=world.bucket, Key=FOLDER + file, CopySource=source)


def sent_subject(world: World) -> str:
    store = TemplateStore(boto3.client("s3", region_name=REGION), world.bucket, ttl_seconds=0)
    return render_email(store.email("shop-1", "cart-abandoned"), sample_variables("cart-abandoned")).subject


def notifications(topic: str) -> list[tuple[str, str]]:
    sent = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[topic].sent_notifications
    return [(subject, message) for _, message, subject, *_ in sent]


def test_valid_edit_becomes_active(world: World, topic: str) -> None:
    copy_default(world)
    report = upload(world, "subject.txt", "Still thinking it over, {{ customer.first_name }}?")

    assert report["status"] == "active" and report["problems"] == []
    assert report["active_version_id"] == report["version_id"]
    assert sent_subject(world) == "Still thinking it over, Ada?"
    assert notifications(topic) == []


def test_broken_edit_is_reported_and_the_old_version_stays(world: World, topic: str) -> None:
    # Given an active store template
    copy_default(world)
    good = upload(world, "subject.txt", "Good {{ customer.first_name }}")

    # When the marketer uploads a subject with a typo in a variable and a syntax error
    report = upload(world, "subject.txt", "Oops {{ customer.frist_name }}\n{% if %}")

    # Then the report names the file, the line and the problem, and the good version is still sent
    assert report["status"] == "rejected"
    assert report["active_version_id"] == good["version_id"]
    assert [(p["file"], p["line"]) for p in report["problems"]] == [("subject.txt", 2)]
    assert "syntax error" in report["problems"][0]["message"]
    assert sent_subject(world) == "Good Ada"
    ((subject, message),) = notifications(topic)
    assert subject == f"Boomerang: {FOLDER}subject.txt was rejected"
    assert f"{FOLDER}subject.txt:2: syntax error" in message and "is still sent" in message


def test_template_injection_upload_is_refused(world: World, topic: str) -> None:
    copy_default(world)
    report = upload(world, "subject.txt", "{{ ''.__class__.__mro__[1].__subclasses__() }}")

    assert report["status"] == "rejected"
    assert all("unsafe" in p["message"] for p in report["problems"])
    assert sent_subject(world) != ""  # the default's subject: nothing of the attempt was activated


def test_marketing_email_without_unsubscribe_link_is_refused(world: World, topic: str) -> None:
    copy_default(world)
    report = upload(world, "body.html", "<p>Come back, {{ customer.first_name }}!</p>")

    assert report["status"] == "rejected"
    assert "unsubscribe" in report["problems"][0]["message"]


def test_sms_longer_than_its_segments_is_refused(world: World, topic: str) -> None:
    upload(world, "sms.json", '{"max_segments": 1}')
    report = upload(
        world, "sms.txt", "{{ store.name }}: " + "your cart misses you. " * 10 + "{{ recovery_url }}"
    )

    assert report["status"] == "rejected"
    assert (
        "segments" in report["problems"][0]["message"] and "max_segments" in report["problems"][0]["message"]
    )


def test_replayed_event_changes_nothing(world: World, topic: str) -> None:
    copy_default(world)
    first = upload(world, "subject.txt", "Hello {{ customer.first_name }}")
    s3 = boto3.client("s3", region_name=REGION)
    manifest_before = s3.get_object(Bucket=world.bucket, Key="active/templates/shop-1/cart-abandoned.json")

    event = s3_event(world.bucket, FOLDER + "subject.txt", first["version_id"])
    validator.handler(event, LambdaContext())

    manifest_after = s3.get_object(Bucket=world.bucket, Key="active/templates/shop-1/cart-abandoned.json")
    assert manifest_after["VersionId"] == manifest_before["VersionId"]  # not even rewritten


def test_event_for_another_bucket_is_ignored(world: World, topic: str) -> None:
    result = validator.handler(s3_event("someone-elses-bucket", FOLDER + "subject.txt", "v"), LambdaContext())
    assert result == {"batchItemFailures": []}


def test_a_body_that_is_not_an_s3_event_fails_the_record(world: World, topic: str) -> None:
    event = s3_event(world.bucket, FOLDER + "subject.txt", "v")
    event["Records"][0]["body"] = json.dumps({"source": "boomerang.storefront", "detail": {}})
    # every record of the batch failed: Powertools raises, Lambda retries, then the DLQ keeps it
    # (logged scrubbed: class and place, never the message, shared/platform/log_safe.py)
    with pytest.raises(BatchProcessingError, match="ValueError"):
        validator.handler(event, LambdaContext())


def test_broken_journey_file_is_reported_with_its_line(world: World, topic: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    key = "journeys/shop-1/cart-abandonment.yaml"
    text = "name: Cart\nper: cart\ntrigger:\n  event: Product Added\nsteps:\n  - id: one\n    after: soon\n"
    version = s3.put_object(Bucket=world.bucket, Key=key, Body=text.encode())["VersionId"]

    validator.handler(s3_event(world.bucket, key, version), LambdaContext())

    report = json.loads(s3.get_object(Bucket=world.bucket, Key=f"reports/{key}.json")["Body"].read())
    assert report["status"] == "rejected"
    assert report["problems"] and all(p["file"] == "cart-abandonment.yaml" for p in report["problems"])
    assert any(p["line"] for p in report["problems"])
    ((subject, message),) = notifications(topic)
    assert subject == f"Boomerang: {key} was rejected"
    assert "journeys/shop-1/cart-abandonment.yaml" in message


def test_good_journey_file_is_checked_quietly(world: World, topic: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    key = "journeys/shop-1/cart-abandonment.yaml"
    shipped = (Path(__file__).resolve().parents[2] / "infra/journeys/cart-abandonment.yaml").read_text()
    text = "id: cart-abandonment\n" + shipped  # a store's copy names the journey it overrides
    version = s3.put_object(Bucket=world.bucket, Key=key, Body=text.encode())["VersionId"]

    validator.handler(s3_event(world.bucket, key, version), LambdaContext())

    report = json.loads(s3.get_object(Bucket=world.bucket, Key=f"reports/{key}.json")["Body"].read())
    assert (report["status"], report["problems"]) == ("checked", [])
    assert notifications(topic) == []


def test_a_pushed_folder_in_one_batch_is_checked_once(world: World, topic: str) -> None:
    # Given a push of three files, whose events arrive in one SQS batch
    s3 = boto3.client("s3", region_name=REGION)
    records = []
    for i, file in enumerate(("subject.txt", "body.html", "body.txt")):
        source = s3.get_object(Bucket=world.bucket, Key=f"templates/_default/cart-abandoned/{file}")[
            "Body"
        ].read()
        version = s3.put_object(Bucket=world.bucket, Key=FOLDER + file, Body=source)["VersionId"]
        records += s3_event(world.bucket, FOLDER + file, version, message_id=f"m-{i}")["Records"]
    listings: list[str] = []
    shared_s3 = validator.client("s3")
    shared_s3.meta.events.register("before-call.s3.ListObjectVersions", lambda **kw: listings.append("list"))

    # When the validator gets the batch
    result = validator.handler({"Records": records}, LambdaContext())

    # Then the folder was read once, and every file of it is active
    assert result == {"batchItemFailures": []}
    assert listings == ["list"]
    for file in ("subject.txt", "body.html", "body.txt"):
        report = json.loads(
            s3.get_object(Bucket=world.bucket, Key=f"reports/{FOLDER}{file}.json")["Body"].read()
        )
        assert report["status"] == "active", file


# --- a layout change re-checks the templates that extend it ---------------------------------------

STORE_LAYOUT = "templates/shop-1/_layout/"
LAYOUT_V1 = (
    "<html><body><h1>Layout v1</h1>{% block content %}{% endblock %}"
    '<footer>{{ store.address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></footer></body></html>'
)
EXTENDS = '{% extends "layout.html" %}{% block content %}<p>Hi {{ customer.first_name }}</p>{% endblock %}'


def put(world: World, key: str, body: str) -> dict[str, Any]:
    """Upload one file, deliver its S3 event to the validator, return the file's report."""
    s3 = boto3.client("s3", region_name=REGION)
    version = s3.put_object(Bucket=world.bucket, Key=key, Body=body.encode())["VersionId"]
    assert validator.handler(s3_event(world.bucket, key, version), LambdaContext()) == {
        "batchItemFailures": []
    }
    return dict(json.loads(s3.get_object(Bucket=world.bucket, Key=f"reports/{key}.json")["Body"].read()))


def extending_template(world: World, name: str = "cart-abandoned") -> None:
    folder = f"templates/shop-1/{name}/"
    put(world, folder + "subject.txt", "Hello {{ customer.first_name }}")
    put(world, folder + "body.txt", "Hello {{ customer.first_name }} {{ unsubscribe_url }}")
    assert put(world, folder + "body.html", EXTENDS)["status"] == "active"


def sent_html(world: World, name: str = "cart-abandoned") -> str:
    store = TemplateStore(boto3.client("s3", region_name=REGION), world.bucket, ttl_seconds=0)
    return render_email(store.email("shop-1", name), sample_variables(name)).html


def test_a_layout_that_would_break_an_active_template_is_refused_and_the_old_layout_stays(
    world: World, topic: str
) -> None:
    # Given a store layout in force, and an active store template that extends it
    v1 = put(world, STORE_LAYOUT + "layout.html", LAYOUT_V1)
    assert v1["status"] == "active"
    extending_template(world)

    # When the marketer pushes a layout that uses a variable only order emails get
    broken = LAYOUT_V1.replace("Layout v1", "Order {{ order.order_id }}")
    report = put(world, STORE_LAYOUT + "layout.html", broken)

    # Then the new layout is not activated, and its report names the template, file and problem
    assert report["status"] == "rejected"
    assert report["active_version_id"] == v1["version_id"]
    own = "would break the active email template templates/shop-1/cart-abandoned/: "
    (problem,) = [p for p in report["problems"] if p["message"].startswith(own)]
    assert problem["file"] == "layout.html"
    assert problem["message"].startswith(
        own + "layout.html:1: with sample data: missing variable: 'order' is undefined"
    )
    assert "current layout stays in force" in problem["message"]
    # (the store's layout also frames the shipped default emails it sends, so those are named too)
    others = [p for p in report["problems"] if p is not problem]
    assert others and all(
        p["file"] == "layout.html"
        and p["message"].startswith("would break the active email template templates/_default/")
        and "'order' is undefined" in p["message"]
        for p in others
    )
    assert not any("templates/_default/order-confirmation/" in p["message"] for p in others)
    # And the template is still sent with the previous layout
    assert "Layout v1" in sent_html(world)
    # And the marketer is told
    ((subject, message),) = notifications(topic)
    assert subject == f"Boomerang: {STORE_LAYOUT}layout.html was rejected"
    assert "templates/shop-1/cart-abandoned/" in message and "'order' is undefined" in message


def test_a_layout_that_keeps_every_template_working_becomes_active(world: World, topic: str) -> None:
    put(world, STORE_LAYOUT + "layout.html", LAYOUT_V1)
    extending_template(world)

    report = put(world, STORE_LAYOUT + "layout.html", LAYOUT_V1.replace("Layout v1", "Layout v2"))

    assert report["status"] == "active" and report["problems"] == []
    assert "Layout v2" in sent_html(world)
    assert notifications(topic) == []


def test_a_default_layout_change_is_checked_against_every_store_and_the_defaults(
    world: World, topic: str
) -> None:
    # Given two store templates that extend the default layout (the store has none of its own)
    extending_template(world, "cart-abandoned")
    extending_template(world, "welcome")
    key = "templates/_default/_layout/layout.html"
    s3 = boto3.client("s3", region_name=REGION)
    shipped = s3.get_object(Bucket=world.bucket, Key=key)["Body"].read().decode()

    # When the default layout starts using a cart-only variable
    report = put(
        world, key, shipped.replace("{% block content %}", "{{ cart.item_count }}{% block content %}")
    )

    # Then it is refused for the store's welcome email, which has no cart; the cart email is fine
    assert report["status"] == "rejected"
    messages = [p["message"] for p in report["problems"]]
    assert any(
        m.startswith("would break the active email template templates/shop-1/welcome/:") for m in messages
    )
    assert not any("templates/shop-1/cart-abandoned/" in m for m in messages)
    assert "item_count" not in sent_html(world, "welcome")


def test_a_fixed_layout_reactivates_the_template_it_blocked(world: World, topic: str) -> None:
    # Given the store's Polish layout, which only cart emails can use (the shipped default emails
    # extend the layout too, and only the cart reminder has a Polish version), and a Polish welcome
    # email that was rejected for it
    cart_only = LAYOUT_V1.replace("Layout v1", "{{ cart.item_count }} items")
    assert put(world, STORE_LAYOUT + "pl/layout.html", cart_only)["status"] == "active"
    folder = "templates/shop-1/welcome/"
    put(world, folder + "pl/subject.txt", "Witamy")
    put(world, folder + "pl/body.txt", "Witamy {{ unsubscribe_url }}")
    assert put(world, folder + "pl/body.html", EXTENDS)["status"] == "rejected"

    # When the marketer fixes the layout
    assert put(world, STORE_LAYOUT + "pl/layout.html", LAYOUT_V1)["status"] == "active"

    # Then the welcome email is checked again and becomes active without another upload
    s3 = boto3.client("s3", region_name=REGION)
    report = json.loads(
        s3.get_object(Bucket=world.bucket, Key=f"reports/{folder}pl/body.html.json")["Body"].read()
    )
    assert report["status"] == "active"
    store = TemplateStore(boto3.client("s3", region_name=REGION), world.bucket, ttl_seconds=0)
    assert (
        "Layout v1"
        in render_email(store.email("shop-1", "welcome", locale="pl"), sample_variables("welcome")).html
    )


def deleted(world: World, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Delete the keys, deliver their "Object Deleted" events in one batch, return their reports."""
    s3 = boto3.client("s3", region_name=REGION)
    records = []
    for i, key in enumerate(keys):
        marker = s3.delete_object(Bucket=world.bucket, Key=key)["VersionId"]
        (record,) = s3_event(world.bucket, key, marker, message_id=f"d-{i}")["Records"]
        body = json.loads(record["body"])
        body["detail-type"], body["detail"]["reason"] = "Object Deleted", "DeleteObject"
        records.append({**record, "body": json.dumps(body)})
    assert validator.handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    return {
        key: json.loads(s3.get_object(Bucket=world.bucket, Key=f"reports/{key}.json")["Body"].read())
        for key in keys
    }


def polish_cart_html(world: World) -> str:
    store = TemplateStore(boto3.client("s3", region_name=REGION), world.bucket, ttl_seconds=0)
    template = store.email("shop-1", "cart-abandoned", locale="pl")
    return render_email(template, sample_variables("cart-abandoned", "pl")).html


@pytest.mark.parametrize(
    "files", [["layout.mjml"], ["layout.html", "layout.mjml", "layout.txt"]], ids=["one-file", "whole-layout"]
)
def test_deleting_a_layout_that_templates_extend_is_refused(
    world: World, topic: str, files: list[str]
) -> None:
    # Given the shipped Polish cart email, which extends the default layout.mjml and layout.txt
    assert "Wypisz się" in polish_cart_html(world)

    # When the default layout is deleted
    reports = deleted(world, [f"templates/_default/_layout/{f}" for f in files])

    # Then the deletion is refused: the layout stays in force, and the report says what needs it
    for key, report in reports.items():
        assert report["status"] == "rejected", key
        assert "is still sent" in report["summary"]
        assert any(
            "would break the active email template templates/_default/cart-abandoned/pl/" in p["message"]
            and "no such layout" in p["message"]
            for p in report["problems"]
        ), report["problems"]
    assert "Wypisz się" in polish_cart_html(world)
    assert len(notifications(topic)) == len(files)


def test_deleting_a_layout_the_default_can_stand_in_for_is_allowed(world: World, topic: str) -> None:
    # Given a store layout in force and a store template that extends it
    put(world, STORE_LAYOUT + "layout.html", LAYOUT_V1)
    extending_template(world)

    # When the store's layout is deleted, the default layout takes over
    reports = deleted(world, [STORE_LAYOUT + "layout.html"])

    assert reports[STORE_LAYOUT + "layout.html"]["status"] == "removed"
    assert "Layout v1" not in sent_html(world) and "Manage preferences" in sent_html(world)
    assert notifications(topic) == []
