"""Log-safe summaries of exceptions: what failed and where, never the customer values in the message.

Exception messages carry input: pydantic's ValidationError prints every bad ``input`` (an email, a
name), a KeyError prints its key (an address used as one), a json error quotes the document,
Jinja's ``number: 'Yolanda' is not a number`` quotes the value. A log line keeps an exception's
class, where it was raised, and what is structurally known about it (field paths and error types,
positions, AWS error codes), never ``str(exc)``.

``scrubbed(exc)`` makes an exception of the same class name whose message is that summary: raised
``from None`` in its place, it is what Powertools' batch processor, the Lambda runtime (which logs
an unhandled error's message) and Step Functions (which matches on the class name) see.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# A field path element is kept only when it looks like a field name (an email or a phone used as
# a dict key is not one); list indexes are kept.
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
_MASK = "<value>"


def _path(loc: Any) -> str:
    parts = []
    for item in loc if isinstance(loc, list | tuple) else [loc]:
        if isinstance(item, int) and not isinstance(item, bool):
            parts.append(str(item))
        elif isinstance(item, str) and _FIELD.fullmatch(item):
            parts.append(item)
        else:
            parts.append(_MASK)
    return ".".join(parts)


def _where(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"


def error_summary(exc: BaseException) -> dict[str, Any]:
    """A dict safe to log: class, where, and the structure of validation errors; never values."""
    summary: dict[str, Any] = {"error": type(exc).__name__}
    where = _where(exc)
    if where:
        summary["where"] = where
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":  # pydantic, without importing it
        try:
            found = errors(include_input=False, include_url=False, include_context=False)
        except TypeError:
            found = []
        summary["fields"] = [{"loc": _path(e.get("loc", ())), "type": str(e.get("type", ""))} for e in found][
            :20
        ]
        summary["count"] = len(found)
    elif isinstance(exc, json.JSONDecodeError):
        summary.update(position=exc.pos, line=exc.lineno, column=exc.colno)  # exc.msg is fixed text
        summary["problem"] = exc.msg
    elif hasattr(exc, "error_type") and type(exc).__name__ == "NumberParseException":  # phonenumbers
        summary["problem"] = str(exc.error_type)
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):  # botocore ClientError
        summary["code"] = str(response["Error"].get("Code", ""))
        summary["operation"] = str(getattr(exc, "operation_name", ""))
    reason = getattr(exc, "reason", None)
    if type(exc).__name__ == "InvalidToken" and isinstance(reason, str):
        summary["problem"] = reason  # a fixed word: malformed, expired, ...
    return summary


def summary_text(exc: BaseException) -> str:
    """The summary as one line, for an exception's message."""
    return json.dumps(error_summary(exc), separators=(",", ":"), sort_keys=True)


class ScrubbedError(Exception):
    """An exception whose message is a log-safe summary; its class name is the original's."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # (KeyError would print a repr)


_CLASSES: dict[type[BaseException], type[ScrubbedError]] = {}
# attributes callers branch on, and which hold codes rather than values
_SAFE_ATTRIBUTES = ("code", "reason", "operation_name", "status", "error_type")


def _scrubbed_class(original: type[BaseException]) -> type[ScrubbedError]:
    cls = _CLASSES.get(original)
    if cls is None:
        namespace = {"__module__": __name__, "__qualname__": original.__name__}
        try:  # still an instance of the original: `except TransientSendError` keeps working
            cls = type(original.__name__, (ScrubbedError, original), namespace)
        except TypeError:  # a builtin whose layout cannot be combined (OSError, UnicodeError...)
            cls = type(original.__name__, (ScrubbedError,), namespace)
        cls = _CLASSES.setdefault(original, cls)
    return cls


def scrubbed(exc: BaseException) -> ScrubbedError:
    """``exc`` as a ScrubbedError of the same class (name and type, for Step Functions' ErrorEquals
    and callers' except clauses), whose message is the summary."""
    if isinstance(exc, ScrubbedError):
        return exc
    cls = _scrubbed_class(type(exc))
    try:
        safe = cls.__new__(cls)
    except Exception:  # a constructor that insists on its own arguments (pydantic's ValidationError)
        cls = _CLASSES[type(exc)] = type(
            type(exc).__name__, (ScrubbedError,), {"__module__": __name__, "__qualname__": type(exc).__name__}
        )
        safe = cls.__new__(cls)
    BaseException.__init__(safe, summary_text(exc))
    for name in _SAFE_ATTRIBUTES:
        value = getattr(exc, name, None)
        if isinstance(value, str | int) and not isinstance(value, bool):
            try:
                setattr(safe, name, value)
            except AttributeError:
                pass
    return safe


def scrub_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A λ handler whose unhandled errors leave it scrubbed (the runtime logs their message)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ScrubbedError:
            raise
        except Exception as exc:
            raise scrubbed(exc) from None

    return wrapper
