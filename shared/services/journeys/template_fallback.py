"""A store's template that fails at send time gives way to the one Boomerang ships.

Rendering is bounded (shared/templates/budget.py), so a slow or oversized template costs one
customer at most its CPU budget; then :func:`render_or_fallback` renders the shipped default
(``templates/_default/<name>/``) instead and notes why, so the step's record (and the outbox and
report) tells the store which template failed, where, and that the default went out. With no
default, the error goes up and the step records it as the channel's reason (deliver.py).

A template version that ran out of CPU or work is also set aside for a while in this container
(:data:`_SLOW`, bounded), so the next customers go straight to the default instead of each paying
the budget again: one slow template never delays everyone else's messages.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from shared.templates.budget import TemplateBudgetExceeded, TemplateTooSlow
from shared.templates.model import DEFAULT_STORE, TemplateError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("boomerang")

_SET_ASIDE_SECONDS = 600.0
_SET_ASIDE_MAX = 128  # template versions remembered per container (least recently set aside go first)
_SLOW_CPU_MS = 50.0  # a failed render that spent this much CPU was slow, not merely wrong
_SLOW: OrderedDict[str, float] = OrderedDict()
_lock = threading.Lock()


def _shipped(template: Any) -> bool:
    return f"/templates/{DEFAULT_STORE}/" in str(getattr(template, "origin", ""))


def _version(template: Any) -> str:
    """The identity of a template's content (a new upload is tried afresh)."""
    fields = vars(template) if hasattr(template, "__dict__") else {}
    text = repr(sorted((k, repr(v)) for k, v in fields.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _set_aside(key: str, now: float) -> None:
    with _lock:
        _SLOW[key] = now + _SET_ASIDE_SECONDS
        _SLOW.move_to_end(key)
        while len(_SLOW) > _SET_ASIDE_MAX:
            _SLOW.popitem(last=False)


def _is_set_aside(key: str, now: float) -> bool:
    with _lock:
        until = _SLOW.get(key)
        if until is not None and until <= now:
            del _SLOW[key]
            return False
        return until is not None


def forget_slow_templates() -> None:
    """Tests: start with no template set aside."""
    with _lock:
        _SLOW.clear()


def render_or_fallback(
    channel: str,
    load: Callable[[str], T],
    render: Callable[[T], R],
    *,
    store_id: str,
    notes: list[str],
) -> R:
    """``render(load(store_id))``; if that template fails and is the store's own, the shipped
    default's render, with a note of why in ``notes``. Raises the store template's error when there
    is no default (or the default fails too)."""
    template = load(store_id)
    key = _version(template)
    started = time.thread_time()
    try:
        if not _shipped(template) and _is_set_aside(key, time.monotonic()):
            raise TemplateBudgetExceeded(
                "set aside for a while: it ran out of its CPU budget for an earlier customer",
                template=getattr(template, "name", ""),
            )
        return render(template)
    except TemplateError as exc:
        spent_ms = (time.thread_time() - started) * 1000
        if isinstance(exc, TemplateTooSlow) or (
            isinstance(exc, TemplateBudgetExceeded) and spent_ms >= _SLOW_CPU_MS
        ):
            _set_aside(key, time.monotonic())
        if _shipped(template) or store_id == DEFAULT_STORE:
            raise
        try:
            default = load(DEFAULT_STORE)
        except TemplateError:
            raise exc from None  # nothing shipped under this name: the step records the reason
        # The error is already scrubbed of customer values (shared/templates/render.py).
        log.warning(
            "store template failed; sent the shipped default",
            extra={
                "channel": channel,
                "template": exc.template,
                "file": exc.file,
                "line": exc.line,
                "problem": exc.problem[:300],
                "cpu_ms": round(spent_ms, 1),
            },
        )
        rendered = render(default)
        notes.append(f"{channel}: the store's template failed ({str(exc)[:200]}); sent the default")
        return rendered
