"""The filters templates may use: money, numbers, percentages and dates in the customer's locale
(Babel), and ``href``, which keeps only web links.

``12.5|money("EUR")`` -> ``€12.50`` (en), ``12,50 €`` (pl); ``number(value, decimals=None)``,
``percent(value)``, ``date(epoch_or_iso, format="medium")``, ``datetime(epoch_or_iso,
format="medium", tz="UTC")``. The locale is the one of the render in progress
(:data:`current_locale`, set by shared/templates/render.py). Babel is imported on first use, so a
Lambda that never renders does not load its locale data at cold start.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from shared.templates.model import DEFAULT_LOCALE

current_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "template_locale", default=DEFAULT_LOCALE
)
_ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"}


@lru_cache(maxsize=64)
def _babel_locale(locale: str) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: {value!r} is not a number")
    try:
        # str() first: Decimal(0.1) would carry the float's binary artefacts into the output.
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not a number")
    return number


def money(amount: Any, currency: Any, locale: str | None = None) -> str:
    """An amount in a currency, written the way the customer's locale writes it (half-up)."""
    from babel.numbers import format_currency

    value = _decimal(amount, "money")
    code = str(currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"money: {currency!r} is not an ISO 4217 currency code")
    exponent = Decimal(1) if code in _ZERO_DECIMAL else Decimal("0.01")
    value = value.quantize(exponent, rounding=ROUND_HALF_UP)
    return str(format_currency(value, code, locale=_babel_locale(locale or current_locale.get())))


def number(value: Any, decimals: int | None = None) -> str:
    from babel.numbers import format_decimal

    amount = _decimal(value, "number")
    if decimals is not None:
        amount = amount.quantize(Decimal(1).scaleb(-int(decimals)), rounding=ROUND_HALF_UP)
        pattern = "#,##0" + ("." + "0" * int(decimals) if decimals else "")
        return str(format_decimal(amount, format=pattern, locale=_babel_locale(current_locale.get())))
    return str(format_decimal(amount, locale=_babel_locale(current_locale.get())))


def percent(value: Any) -> str:
    from babel.numbers import format_percent

    return str(format_percent(_decimal(value, "percent"), locale=_babel_locale(current_locale.get())))


def _moment(value: Any, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz) if tz != "UTC" else UTC
    if isinstance(value, datetime):
        return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=UTC).astimezone(zone)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC).astimezone(zone)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(zone)
    raise ValueError(f"date: {value!r} is not a time (epoch seconds or ISO-8601)")


def date(value: Any, format: str = "medium", tz: str = "UTC") -> str:
    from babel.dates import format_date

    return str(
        format_date(_moment(value, tz).date(), format=format, locale=_babel_locale(current_locale.get()))
    )


def datetime_(value: Any, format: str = "medium", tz: str = "UTC") -> str:
    from babel.dates import format_datetime

    moment = _moment(value, tz)
    return str(
        format_datetime(
            moment, format=format, tzinfo=moment.tzinfo, locale=_babel_locale(current_locale.get())
        )
    )


def href(url: Any) -> str:
    text = "" if url is None else str(url).strip()
    return text if re.match(r"^https?://", text, re.IGNORECASE) else ""


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "number": number,
    "percent": percent,
    "date": date,
    "datetime": datetime_,
    "href": href,
}
