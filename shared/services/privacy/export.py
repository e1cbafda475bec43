"""Access and portability (GDPR Art. 15, 20): one JSON document with everything held about the
person, and the same as a readable HTML page (autoescaped: the data is the customer's own input)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, select_autoescape

from shared.adapters.privacy_store import PrivacyStore
from shared.domain.privacy import export_counts, export_document
from shared.platform import clock
from shared.services.consent.guard import csp_hash, security_headers
from shared.services.privacy.collect import Who, collect, resolve


def export(store: PrivacyStore, who: Who) -> dict[str, Any]:
    subject = resolve(store, who)
    found = collect(store, subject)
    return export_document(who.store_id, who.label, found.items, clock.now_ts())


def counts(document: dict[str, Any]) -> dict[str, int]:
    return export_counts(document)


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _when(ts: Any) -> str:
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError):
        return ""


_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\n"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}td,th{border:1px solid #ddd;"
    "padding:.3rem .5rem;text-align:left;vertical-align:top}\n"
    "th{background:#f5f5f5}pre{white-space:pre-wrap;background:#f8f8f8;padding:.5rem}"
)
# The export page's answer headers: no script, only its own stylesheet, never framed or cached.
HTML_HEADERS = security_headers(csp_hash(_STYLE), form_action=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your data at {{ doc.store_id }}</title>
<style>{{ style | safe }}</style></head><body>
<h1>Your data at {{ doc.store_id }}</h1>
<p>Generated {{ when(doc.generated_at) }}. The attached JSON document holds the same, for another service.</p>
<h2>Profile</h2>
{% for p in doc.profiles %}<table>
<tr><th>Customer id</th><td>{{ p.customer_id }}</td></tr>
<tr><th>Email</th><td>{{ p.email or "" }}</td></tr><tr><th>Phone</th><td>{{ p.phone or "" }}</td></tr>
{% for k, v in (p.traits or {}).items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
<tr><th>First seen</th><td>{{ when(p.first_seen_at) }}</td></tr><tr><th>Last seen</th><td>{{ when(p.last_seen_at) }}</td></tr>
<tr><th>Devices</th><td>{% for d in p.devices %}{{ d.platform }} (registered {{ when(d.registered_at) }}){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
</table>{% endfor %}
<h2>Consent: every change, with its proof</h2>
<table><tr><th>When</th><th>Channel / category</th><th>Choice</th><th>Where</th><th>Wording shown</th></tr>
{% for c in doc.consent_history %}<tr><td>{{ when(c.at) }}</td><td>{{ c.channel or c.category }}</td><td>{{ c.status }}</td><td>{{ c.source or "" }}</td><td>{{ c.text or "" }}</td></tr>{% endfor %}
</table>
<h2>Messages sent</h2>
<table><tr><th>When</th><th>Channel</th><th>Subject</th><th>Journey</th></tr>
{% for m in doc.messages_sent %}<tr><td>{{ when(m.at) }}</td><td>{{ m.channel }}</td><td>{{ m.subject or "" }}</td><td>{{ m.journey }} / {{ m.step }}</td></tr>{% endfor %}
</table>
<h2>Segments</h2><ul>{% for s in doc.segments %}<li>{{ s.segment }} (since {{ when(s.since) }})</li>{% endfor %}</ul>
<h2>Offers</h2><ul>{% for o in doc.offers %}<li>{{ o.code }} ({{ o.pool }}, {{ when(o.given_at) }})</li>{% endfor %}</ul>
<h2>Orders</h2><ul>{% for o in doc.orders %}<li>{{ o.order_id }}: {{ o.total }} {{ o.currency or "" }}</li>{% endfor %}</ul>
<h2>Orders sent to fulfilment partners</h2><ul>{% for f in doc.fulfilment %}<li>{{ f.order_id }} to {{ f.partner_id }} ({{ f.action }}, {{ f.status }}{% if f.shipped_at %}, shipped {{ when(f.shipped_at) }}{% endif %}{% if f.delivered_at %}, delivered {{ when(f.delivered_at) }}{% endif %})</li>{% endfor %}</ul>
<h2>Carts</h2><ul>{% for c in doc.carts %}<li>{{ c.cart_id }} ({{ c.status }})</li>{% endfor %}</ul>
<h2>Events kept</h2><p>{{ doc.events|length }} event(s) received, kept for replay protection.</p>
<h2>Everything, as data</h2><pre>{{ raw }}</pre>
</body></html>"""


def to_html(document: dict[str, Any]) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_PAGE).render(doc=document, when=_when, raw=to_json(document), style=_STYLE)
