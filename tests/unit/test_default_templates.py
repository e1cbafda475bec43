"""Every shipped default template renders, on every channel it has, against the variable contract.

The templates are loaded through :class:`shared.templates.TemplateStore` (over a fake S3 that reads
``infra/templates/_default/``), so the checks see exactly what a journey step would: the same
files, the same ``sms.json`` budget, the same sandbox with strict undefined variables.
"""

from __future__ import annotations

import html
import io
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import meta, nodes

from shared.domain import template_variables as catalog
from shared.domain.contacts import segments
from shared.templates.filters import href, money
from shared.templates.model import DEFAULT_STORE
from shared.templates.render import (
    RenderedEmail,
    RenderedPush,
    render_email,
    render_push,
    render_sms,
    shows_address,
)
from shared.templates.store import TemplateStore

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "infra" / "templates"
DEFAULTS = TEMPLATES_DIR / DEFAULT_STORE
NAMES = sorted(
    p.name for p in DEFAULTS.iterdir() if p.is_dir() and not p.name.startswith("_")
)  # _layout: shared
SCRIPT = "<script>alert(1)</script>"

# --- the variable contract ------------------------------------------------------------------------
# The shapes are shared/domain/template_variables.py's (GROUPS); which groups a journey step passes
# to each shipped template is below (a superset of the template's row there: a step passes its
# journey's groups, and lint keeps each template to its own).

CONTRACT: dict[str, Any] = catalog.GROUPS
BASE = frozenset(catalog.BASE)
CART_VARS = frozenset(catalog.CART)

# The variables each template is given: the base plus what its journey adds.
VARIABLES: dict[str, frozenset[str]] = {
    "welcome": BASE,
    "brand-story": BASE,
    "best-sellers": BASE | {"products"},
    "browse-abandoned": BASE | {"viewed"},
    "cart-abandoned": BASE | CART_VARS,
    "cart-offer": BASE | CART_VARS,
    "cart-last-chance": BASE | CART_VARS,
    "checkout-abandoned": BASE | CART_VARS,
    "order-confirmation": BASE | {"order"},
    "review-request": BASE | {"order"},
    "referral-loyalty": BASE | {"order"},
    "complementary-products": BASE | {"order", "products"},
    "win-back": BASE,
    "win-back-offer": BASE,
    "order-anniversary": BASE | {"occasion"},
    "loyalty-tier": BASE,
    "birthday": BASE | {"occasion"},
    "flash-sale": BASE | {"occasion"},
    "back-in-stock": BASE | {"product"},
    "confirm-email": BASE | {"confirm_url"},
    "order-shipped": BASE | {"order", "shipment"},
}
# Sent because the customer asked (an order, a stock alert, a subscription): no unsubscribe needed.
TRANSACTIONAL = frozenset(("order-confirmation", "back-in-stock", "confirm-email", "order-shipped"))
OFFER_TEMPLATES = ("welcome", "cart-offer", "birthday", "win-back-offer", "referral-loyalty", "flash-sale")

# --- sample variables -----------------------------------------------------------------------------

SHOP = "https://shop.example.com"
UNSUBSCRIBE = "https://api.example.com/v1/unsubscribe?t=v1.czE.Y3VzdC0x.ZW1haWw.1767225600.c2lnbmF0dXJl"
PREFERENCES = "https://api.example.com/v1/preferences?t=v1.czE.Y3VzdC0x.ZW1haWw.1767225600.c2lnbmF0dXJl"
ADDRESS_LINES = ["1 Harbour Street", "Bristol BS1 4AA", "United Kingdom"]


def utm(url: str, journey: str, step: str, medium: str = "email") -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}utm_source=boomerang&utm_medium={medium}&utm_campaign={journey}&utm_content={step}"


def listed(name: str, price: str | None, slug: str, *, currency: str = "USD", image: bool = True) -> dict:
    return {
        "name": name,
        "price": None if price is None else Decimal(price),
        "currency": currency,
        "image_url": f"https://cdn.example.com/{slug}.jpg" if image else None,
        "url": f"{SHOP}/products/{slug}",
    }


PRODUCTS = [
    listed("Merino crew socks", "12.50", "merino-socks"),
    listed("Analytical Engine poster", "19.90", "engine-poster"),
    listed("Brass bookmark", "8.00", "bookmark"),
    listed("Linen notebook", "14.00", "notebook", currency="EUR"),
    listed("Walnut desk tidy", "45.00", "desk-tidy"),
    listed("Enamel mug", "16.00", "mug"),
    listed("Gift card", None, "gift-card", image=False),  # a seventh: templates show six
]


def sample(name: str, *, variant: str = "full", first_name: str | None = "Ada") -> dict[str, Any]:
    """The variables a journey step would pass to ``name``: exactly the contract keys it gets.

    ``full``: every optional value present. ``sparse``: every optional value None or minimal.
    ``long``: long but realistic values (for SMS and push budgets). ``empty``: empty product lists.
    """
    sparse = variant == "sparse"
    long = variant == "long"
    wanted = VARIABLES[name]
    # the longest journey id a cart template is sent from, and the medium SMS links carry
    journey_id = "checkout-abandonment" if long and "cart" in wanted else name
    journey = {"id": journey_id, "name": journey_id.replace("-", " ").capitalize()}
    step_id = "step-1"
    medium = "sms" if long else "email"
    store = {
        "name": "Lovelace & Company Goods" if long else "Lovelace & Co",
        "url": SHOP,
        "address": None if sparse else ", ".join(ADDRESS_LINES),
        "address_lines": [] if sparse else ADDRESS_LINES,
    }
    offer = {
        "code": "BIRTHDAY15-7KQ2" if long else "SAVE10",
        "description": "10% off the items in your cart" if long else "10% off your order",
        "expires_at": 1796169599.0,
        "expires_on": "2026-12-01",
    }
    variables: dict[str, Any] = {
        "customer": {
            "first_name": None if sparse else ("Alexandrina" if long else first_name),
            "last_name": None if sparse else "Lovelace",
            "locale": None if sparse else "en-GB",
        },
        "store": store,
        "journey": journey,
        "step": {"id": step_id, "index": 0 if sparse else 1, "is_last": not sparse},
        "links": {
            "shop": utm(SHOP, journey_id, step_id, medium),
            "recovery": None,
            "review": None,
            # the journey step makes a referral link out of the offer's code
            "referral": None if sparse else utm(f"{SHOP}/?ref={offer['code']}", journey_id, step_id, medium),
        },
        "unsubscribe_url": UNSUBSCRIBE,
        "preferences_url": PREFERENCES,
        "offer": None if sparse else offer,
        "loyalty": {
            "points": 0 if sparse else 1250,
            "tier": None if sparse else "Gold",
            "next_tier": None if sparse else "Platinum",
            "points_to_next": None if sparse else 750,
        },
    }
    if "cart" in wanted:
        cart_id = "3f1c2a9e-8d4b-4c1e-9a7f-2b6d8e0c1f3a" if long else "c1"
        recovery = (  # as Store.recovery_url makes it
            f"{SHOP}/cart?boomerang_cart={cart_id}&utm_source=boomerang&utm_medium={medium}&utm_campaign={journey_id}"
        )
        items = [
            {**PRODUCTS[0], "quantity": 2, "line_total": Decimal("25.00")},
            {**PRODUCTS[1], "quantity": 1, "image_url": None, "url": None, "line_total": Decimal("19.90")},
        ]
        if sparse:
            items = items[1:]
        variables["cart"] = {
            "items": items,
            "value": None if sparse else Decimal("44.90"),
            "currency": "USD",
            "item_count": sum(i["quantity"] for i in items),
        }
        variables["recovery_url"] = recovery
        variables["links"]["recovery"] = recovery
    if "viewed" in wanted:
        viewed = [{**PRODUCTS[0], "price": None, "image_url": None, "url": None}] if sparse else PRODUCTS[:3]
        variables["viewed"] = [] if variant == "empty" else viewed
    if "order" in wanted:
        items = [{**PRODUCTS[0], "quantity": 2}, {**PRODUCTS[4], "quantity": 1}]
        if sparse:
            items = [{**PRODUCTS[6], "quantity": 1, "url": None}]
        variables["order"] = {
            "order_id": "#1042",
            "total": None if sparse else Decimal("70.00"),
            "currency": "USD",
            "items": items,
        }
        review = f"{SHOP}/account/orders/1042/review"
        variables["links"]["review"] = None if sparse else utm(review, journey_id, step_id, medium)
    if "shipment" in wanted:
        tracking = (
            "https://www.dhl.com/track?tracking-id=JD0146000062812309981"
            if long
            else "https://track.example.com/JD01"
        )
        variables["shipment"] = {
            "status": "shipped",
            "carrier": None if sparse else ("DHL Parcel International Express" if long else "DHL"),
            "tracking_number": None if sparse else "JD0146000062812309981",
            "tracking_url": None if sparse else tracking,
            "partner_id": "acme-3pl",
            "shipment_id": "s-1",
        }
    if "products" in wanted:
        variables["products"] = [] if variant == "empty" else PRODUCTS[:3] if sparse else list(PRODUCTS)
    if "product" in wanted:
        product = {"sku": "SOCK-GRY-M", **PRODUCTS[0]}
        if long:
            product["name"] = "Merino wool crew socks, charcoal grey, medium, three-pack gift box edition"
        if sparse:
            product = {**product, "price": None, "image_url": None, "url": None}
        variables["product"] = product
    if "occasion" in wanted:
        kind = "birthday" if name == "birthday" else "anniversary"
        variables["occasion"] = {"kind": kind, "date": "2026-03-14", "years": None if sparse else 3}
    if "confirm_url" in wanted:
        variables["confirm_url"] = "https://api.example.com/v1/confirm?t=v1.czE.Y3VzdC0x.Y29uZmlybQ.sig"
    assert set(variables) == wanted, name
    return variables


VARIANTS = ("full", "sparse", "long", "empty")

# --- loading --------------------------------------------------------------------------------------


class _NoSuchKey(Exception):
    pass


class LocalS3:
    """Just enough of an S3 client for TemplateStore: objects are the files under infra/templates."""

    class exceptions:  # noqa: N801 - mirrors boto3's client.exceptions
        NoSuchKey = _NoSuchKey

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        prefix = "templates/"
        assert Key.startswith(prefix)
        path = TEMPLATES_DIR / Key.removeprefix(prefix)
        if not path.is_file():
            raise _NoSuchKey(Key)
        return {"Body": io.BytesIO(path.read_bytes())}


STORE = TemplateStore(LocalS3(), "templates-bucket", active_only=False)  # files, not validated uploads
STORE_ID = "store-1"  # has no folder of its own: every template comes from the defaults


def channels(name: str) -> list[str]:
    folder = DEFAULTS / name
    found = []
    if (folder / "subject.txt").exists():
        found.append("email")
    if (folder / "sms.txt").exists():
        found.append("sms")
    if (folder / "push_title.txt").exists():
        found.append("push")
    return found


def render(name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Every channel the template has, rendered: {"email": RenderedEmail, "sms": str, "push": ...}."""
    out: dict[str, Any] = {}
    for channel in channels(name):
        if channel == "email":
            out["email"] = render_email(STORE.email(STORE_ID, name), variables)
        elif channel == "sms":
            out["sms"] = render_sms(STORE.sms(STORE_ID, name), variables)
        else:
            out["push"] = render_push(STORE.push(STORE_ID, name), variables)
    return out


def all_text(rendered: dict[str, Any]) -> str:
    parts: list[str] = []
    for value in rendered.values():
        if isinstance(value, RenderedEmail):
            parts += [value.subject, value.html, value.text]
        elif isinstance(value, RenderedPush):
            parts += [value.title, value.body, value.link or ""]
        else:
            parts.append(value)
    return "\n".join(parts)


class _TagBalance(HTMLParser):
    """Unclosed and stray tags: an unbalanced table breaks the layout in some mail clients."""

    VOID = frozenset(("area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"))

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> at line {self.getpos()[0]} closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()


def _tag_problems(source: str) -> list[str]:
    parser = _TagBalance()
    parser.feed(source)
    parser.close()
    return parser.problems + [f"<{tag}> never closed" for tag in parser.open]


# --- every template, every channel ----------------------------------------------------------------


def test_every_template_folder_has_a_contract_entry() -> None:
    assert set(NAMES) == set(VARIABLES), "add new templates to VARIABLES (and remove gone ones)"
    for name in NAMES:
        assert channels(name), f"{name} has no channel"


def test_samples_follow_the_contract() -> None:
    for name in NAMES:
        for variant in VARIANTS:
            assert catalog.problems(sample(name, variant=variant), VARIABLES[name]) == [], f"{name}/{variant}"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", NAMES)
def test_renders_every_channel(name: str, variant: str) -> None:
    variables = sample(name, variant=variant)

    rendered = render(name, variables)

    assert set(rendered) == set(channels(name))
    text = all_text(rendered)
    assert "None" not in text  # an optional value printed unguarded
    assert "Undefined" not in text
    email = rendered.get("email")
    if email is not None:
        assert variables["store"]["name"] in email.text
        assert html.escape(variables["store"]["name"]) in email.html
        assert "max-width:600px" in email.html
        assert 'href=""' not in email.html  # a link whose URL the href filter refused
        assert _tag_problems(email.html) == []
        greeting = variables["customer"]["first_name"] or "Hi"
        assert greeting in email.text and greeting in email.html


@pytest.mark.parametrize("name", [n for n in NAMES if n not in TRANSACTIONAL and "email" in channels(n)])
def test_marketing_email_shows_an_unsubscribe_link(name: str) -> None:
    for variant in VARIANTS:
        email = render(name, sample(name, variant=variant))["email"]
        # the journey step refuses a marketing email whose HTML lacks the raw link
        assert f'href="{html.escape(UNSUBSCRIBE)}"' in email.html
        assert UNSUBSCRIBE in email.html
        assert UNSUBSCRIBE in email.text
        assert ">Unsubscribe</a>" in email.html


@pytest.mark.parametrize("name", [n for n in NAMES if n not in TRANSACTIONAL and "email" in channels(n)])
def test_marketing_email_shows_the_postal_address_and_a_preferences_link(name: str) -> None:
    email = render(name, sample(name))["email"]
    assert shows_address(email.html, ADDRESS_LINES)  # CAN-SPAM: the sender's postal address
    assert ", ".join(ADDRESS_LINES) in email.text
    assert f'href="{html.escape(PREFERENCES)}"' in email.html and PREFERENCES in email.text
    assert ">Manage preferences</a>" in email.html


@pytest.mark.parametrize("name", [n for n in NAMES if "email" in channels(n)])
def test_first_name_is_escaped_in_html(name: str) -> None:
    email = render(name, sample(name, first_name=SCRIPT))["email"]

    assert SCRIPT not in email.html
    assert html.escape(SCRIPT) in email.html
    assert SCRIPT in email.text  # the text part is not HTML


def test_urls_are_escaped_in_html_attributes() -> None:
    variables = sample("cart-offer")
    email = render("cart-offer", variables)["email"]

    recovery = variables["recovery_url"]
    assert "&" in recovery
    assert f'href="{html.escape(recovery)}"' in email.html
    assert recovery in email.text


def test_links_refuse_non_web_urls() -> None:
    variables = sample("best-sellers")
    variables["products"] = [{**PRODUCTS[0], "url": "javascript:alert(1)", "image_url": "data:image/png,x"}]

    email = render("best-sellers", variables)["email"]

    assert "javascript:" not in email.html + email.text
    assert "data:image" not in email.html


# --- SMS ------------------------------------------------------------------------------------------

SMS_NAMES = [n for n in NAMES if "sms" in channels(n)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", SMS_NAMES)
def test_sms_fits_its_declared_segments(name: str, variant: str) -> None:
    template = STORE.sms(STORE_ID, name)
    body = render_sms(template, sample(name, variant=variant))

    parts = segments(body)
    assert parts.encoding == "GSM-7", body  # one non-GSM character would halve the budget
    assert parts.segments <= template.max_segments, (parts, body)


@pytest.mark.parametrize("name", SMS_NAMES)
def test_sms_declares_a_budget_and_ends_with_opt_out(name: str) -> None:
    assert (DEFAULTS / name / "sms.json").exists()
    for variant in VARIANTS:
        assert render_sms(STORE.sms(STORE_ID, name), sample(name, variant=variant)).endswith(
            "Reply STOP to opt out"
        )


def test_cart_offer_sms_is_two_segments_at_most() -> None:
    assert STORE.sms(STORE_ID, "cart-offer").max_segments <= 2


def test_sms_template_text_is_gsm_7() -> None:
    # The fixed text alone: variables are the store's business, the template's words are ours.
    for name in SMS_NAMES:
        source = (DEFAULTS / name / "sms.txt").read_text(encoding="utf-8")
        assert segments(source.replace("\n", " ")).encoding == "GSM-7", name


# --- push -----------------------------------------------------------------------------------------

PUSH_NAMES = [n for n in NAMES if "push" in channels(n)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", PUSH_NAMES)
def test_push_is_short_and_links_to_the_web(name: str, variant: str) -> None:
    push = render_push(STORE.push(STORE_ID, name), sample(name, variant=variant))

    assert len(push.title) <= 65, push.title  # what a lock screen shows on one line or two
    assert len(push.body) <= 180, push.body
    assert push.link is None or push.link.startswith("https://")


def test_push_links() -> None:
    links = {name: render_push(STORE.push(STORE_ID, name), sample(name)).link for name in PUSH_NAMES}
    assert links["back-in-stock"] == PRODUCTS[0]["url"]
    assert links["browse-abandoned"] == PRODUCTS[0]["url"]
    assert links["cart-offer"] == sample("cart-offer")["recovery_url"]
    assert links["birthday"] == sample("birthday")["links"]["shop"]
    assert links["order-shipped"] == sample("order-shipped")["shipment"]["tracking_url"]
    # with nothing viewed, or no product page, the shop (with its UTM parameters)
    for name in ("browse-abandoned", "back-in-stock"):
        variables = sample(name, variant="empty" if name == "browse-abandoned" else "sparse")
        assert render_push(STORE.push(STORE_ID, name), variables).link == variables["links"]["shop"]


# --- offers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OFFER_TEMPLATES)
def test_offer_is_shown_when_given_and_left_out_when_none(name: str) -> None:
    variables = sample(name)
    offer = variables["offer"]

    with_offer = render(name, variables)
    variables["offer"] = None
    variables["links"]["referral"] = None  # the journey step has no code to refer with
    without = render(name, variables)

    email = with_offer["email"]
    for part in (email.html, email.text):
        assert offer["code"] in part
        assert offer["description"] in part
        assert "2026-12-01" in part
    if "sms" in with_offer:
        assert offer["code"] in with_offer["sms"]
    assert offer["code"] not in all_text(without)
    assert "Use code" not in without["email"].html


def test_offer_without_expiry_has_no_expiry_line() -> None:
    for name in OFFER_TEMPLATES:
        variables = sample(name)
        variables["offer"] = {**variables["offer"], "expires_at": None, "expires_on": None}
        rendered = render(name, variables)
        assert "Valid until" not in all_text(rendered)
        assert "None" not in all_text(rendered)


# --- content --------------------------------------------------------------------------------------


def test_product_lists_are_capped() -> None:
    best = render("best-sellers", sample("best-sellers"))["email"]
    assert all(p["name"] in best.html and p["name"] in best.text for p in PRODUCTS[:6])
    assert PRODUCTS[6]["name"] not in best.html + best.text
    assert "€14.00" in best.html  # each product in its own currency

    variables = sample("browse-abandoned")
    variables["viewed"] = PRODUCTS[:5]
    browse = render("browse-abandoned", variables)["email"]
    assert all(p["name"] in browse.html for p in PRODUCTS[:3])
    assert PRODUCTS[3]["name"] not in browse.html + browse.text


def test_order_confirmation_summarises_the_order() -> None:
    email = render("order-confirmation", sample("order-confirmation"))["email"]

    assert "#1042" in email.subject
    for part in (email.html, email.text):
        assert "Merino crew socks" in part and "Walnut desk tidy" in part
        assert "$70.00" in part
        assert "$12.50" in part
    assert UNSUBSCRIBE not in email.html  # transactional: no marketing footer


def test_review_request_links_the_review_page_or_the_shop() -> None:
    variables = sample("review-request")
    email = render("review-request", variables)["email"]
    assert f'href="{html.escape(variables["links"]["review"])}"' in email.html

    variables["links"]["review"] = None
    email = render("review-request", variables)["email"]
    assert f'href="{html.escape(variables["links"]["shop"])}"' in email.html


def test_referral_loyalty_shows_points_and_next_tier() -> None:
    variables = sample("referral-loyalty")
    email = render("referral-loyalty", variables)["email"]

    for part in (email.html, email.text):
        assert "1,250 points" in part
        assert "Gold" in part and "Platinum" in part and "750" in part
        assert variables["links"]["referral"] in part.replace("&amp;", "&")


def test_loyalty_tier_names_the_tier() -> None:
    rendered = render("loyalty-tier", sample("loyalty-tier"))
    assert "Gold" in rendered["email"].subject
    assert "Gold" in rendered["push"].title
    assert "Platinum" in rendered["email"].html


def test_anniversary_counts_the_years() -> None:
    assert "3 years" in render("order-anniversary", sample("order-anniversary"))["email"].subject
    sparse = render("order-anniversary", sample("order-anniversary", variant="sparse"))["email"]
    assert "a year" in sparse.subject


# --- the contract, statically ---------------------------------------------------------------------

_PARSER = jinja2.Environment()
_PARSER.filters.update(money=money, href=href)
_ANY = object()  # a value the contract does not describe (a loop counter, a string method)


def _contract_problems(source: str, allowed: frozenset[str]) -> list[str]:
    """Names outside ``allowed`` and fields outside the contract, in every branch of the source."""
    ast = _PARSER.parse(source)
    problems = {f"unknown variable {n!r}" for n in meta.find_undeclared_variables(ast) - allowed}

    def field(spec: Any, key: Any, where: str) -> Any:
        if isinstance(spec, dict):
            if key not in spec:
                problems.add(f"unknown field {where}.{key}")
                return _ANY
            return spec[key]
        return _ANY

    def resolve(node: nodes.Node, scope: dict[str, Any]) -> Any:
        if isinstance(node, nodes.Name):
            return scope[node.name] if node.name in scope else CONTRACT.get(node.name, _ANY)
        if isinstance(node, nodes.Getattr):
            return field(resolve(node.node, scope), node.attr, _describe(node.node))
        if isinstance(node, nodes.Getitem):
            spec = resolve(node.node, scope)
            if isinstance(spec, list):
                return spec if isinstance(node.arg, nodes.Slice) else spec[0]
            if isinstance(node.arg, nodes.Const):
                return field(spec, node.arg.value, _describe(node.node))
            return _ANY
        if isinstance(node, nodes.Filter) and node.name == "batch" and node.node is not None:
            spec = resolve(node.node, scope)
            return [spec] if isinstance(spec, list) else _ANY
        return _ANY

    def visit(node: nodes.Node, scope: dict[str, Any]) -> None:
        if isinstance(node, nodes.For):
            visit(node.iter, scope)
            spec = resolve(node.iter, scope)
            inner = {**scope, "loop": _ANY}
            if isinstance(node.target, nodes.Name):
                inner[node.target.name] = spec[0] if isinstance(spec, list) else _ANY
            for child in node.body:
                visit(child, inner)
            for child in node.else_:
                visit(child, scope)
            return
        if isinstance(node, nodes.Assign) and isinstance(node.target, nodes.Name):
            visit(node.node, scope)
            scope[node.target.name] = resolve(node.node, scope)
            return
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            resolve(node, scope)
        for child in node.iter_child_nodes():
            visit(child, scope)

    visit(ast, {})
    return sorted(problems)


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    return "…"


@pytest.mark.parametrize("name", NAMES)
def test_templates_use_only_contract_variables(name: str) -> None:
    problems = {
        path.name: found
        for path in sorted((DEFAULTS / name).iterdir())
        if path.suffix in (".txt", ".html")
        and (found := _contract_problems(path.read_text(encoding="utf-8"), VARIABLES[name]))
    }
    assert not problems


def test_contract_check_catches_strays() -> None:
    assert _contract_problems("{{ customer.email }}", BASE) == ["unknown field customer.email"]
    assert _contract_problems("{{ cart.value }}", BASE) == ["unknown variable 'cart'"]
    assert _contract_problems(
        "{% for i in order.items %}{{ i.line_total }}{% endfor %}", BASE | {"order"}
    ) == ["unknown field i.line_total"]
    assert _contract_problems(
        "{% for r in products[:6] | batch(2) %}{% for p in r %}{{ p.sku }}{% endfor %}{% endfor %}",
        BASE | {"products"},
    ) == ["unknown field p.sku"]
    assert _contract_problems("{{ offer.expires_on }}{{ viewed[0].url }}", BASE | {"viewed"}) == []
