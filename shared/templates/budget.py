"""What one render may spend: CPU time, loop iterations and calls, call depth, and text built.

Templates are written by store staff, and one that loops a billion times or pads a string to 30 MB
must not stall everyone else's messages. Signals cannot interrupt a render reliably in a Lambda's
threads, so the sandbox (shared/templates/sandbox.py) bounds the work itself: every loop iteration,
call, filter and ``{{ output }}`` passes through :meth:`Budget.tick`, which counts work units and
looks at the thread's CPU clock every :data:`_CHECK_EVERY` units (``time.thread_time`` costs ~0.6 µs,
so it is not read on every tick). A render that goes over raises :class:`TemplateBudgetExceeded`.

The budget of the render in progress lives in a context variable set by shared/templates/render.py;
its limits are :class:`Limits` (the CPU budget can be changed with ``TEMPLATE_CPU_MS``).
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.templates.model import TemplateError

CPU_MS_VARIABLE = "TEMPLATE_CPU_MS"  # optional: the CPU budget of one message's render, in ms
_CHECK_EVERY = 64  # work units between two reads of the CPU clock
_SIZED = (str, list, tuple)


class TemplateBudgetExceeded(TemplateError):
    """A render went over its CPU, work, depth or size budget (never worth retrying as it is)."""


class TemplateTooSlow(TemplateBudgetExceeded):
    """A render ran out of CPU time or work: it cost its whole budget before it was stopped."""


@dataclass(frozen=True)
class Limits:
    """The bounds of one message's render (all its parts share one budget)."""

    cpu_ms: float = 250.0  # CPU time of the rendering thread
    work: int = 200_000  # loop iterations + calls + filters + outputs (large inputs weigh more)
    depth: int = 32  # nested macro / caller() / recursive loop calls
    value_chars: int = 200_000  # the longest string or list a template may build
    width: int = 1_000  # the largest padding, width or precision (ljust, center, '%05d', '{:>9}')
    text_chars: int = 2_000_000  # all the text a render writes, macro and {% set %} buffers included

    @classmethod
    def from_env(cls) -> Limits:
        raw = os.environ.get(CPU_MS_VARIABLE, "")
        try:
            cpu_ms = float(raw) if raw else cls.cpu_ms
        except ValueError:
            cpu_ms = cls.cpu_ms
        return cls(cpu_ms=cpu_ms if cpu_ms > 0 else cls.cpu_ms)


class Budget:
    """The work left to one render; :meth:`tick` raises once it is spent."""

    __slots__ = ("limits", "work", "depth", "text", "_deadline", "_next_check", "started")

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self.work = 0
        self.depth = 0
        self.text = 0
        self.started = time.thread_time()
        self._deadline = self.started + self.limits.cpu_ms / 1000
        self._next_check = _CHECK_EVERY

    def tick(self, units: int = 1) -> None:
        self.work += units
        if self.work >= self._next_check:
            self._next_check = self.work + _CHECK_EVERY
            if self.work > self.limits.work:
                raise TemplateTooSlow(
                    f"too much work: over {self.limits.work:,} loop iterations and calls in one render "
                    "(a loop too large, or nested too deep)"
                )
            self.check_time()

    def check_time(self) -> None:
        if time.thread_time() > self._deadline:
            raise TemplateTooSlow(
                f"over its CPU budget of {self.limits.cpu_ms:g} ms (a loop too large, or nested too deep)"
            )

    def cpu_ms(self) -> float:
        return (time.thread_time() - self.started) * 1000

    def wrote(self, chars: int) -> None:
        self.text += chars
        if self.text > self.limits.text_chars:
            raise TemplateBudgetExceeded(
                f"writes over {self.limits.text_chars:,} characters of text in one render"
            )

    def value(self, value: Any) -> Any:
        """``value``, unless it is a string or list longer than a template may build (large ones
        also weigh as work: one unit per KB)."""
        if isinstance(value, _SIZED):
            size = len(value)
            if size > 1024:
                if size > self.limits.value_chars:
                    raise TemplateBudgetExceeded(
                        f"builds a value of {size:,} items or characters; at most {self.limits.value_chars:,}"
                    )
                self.tick(size >> 10)
        return value

    def width(self, width: Any, what: str) -> None:
        if isinstance(width, int) and abs(width) > self.limits.width:
            raise TemplateBudgetExceeded(f"{what} of {width:,}: at most {self.limits.width:,}")

    def iterate(self, iterable: Iterable[Any], static_chars: int = 0) -> Iterator[Any]:
        """Each item a unit of work; ``static_chars``: the template text each pass writes."""
        for item in iterable:
            self.tick()
            if static_chars:
                self.wrote(static_chars)
            yield item

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.depth:
            raise TemplateBudgetExceeded(
                f"calls nested over {self.limits.depth} deep (a macro calling itself without end?)"
            )


current_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def budget() -> Budget:
    """The budget of the render in progress (a fresh one when a template renders outside one)."""
    found = current_budget.get()
    return found if found is not None else Budget()
