"""Customer values never reach a log: every e2e run's emulator output is scanned for them.

Every body the e2e tests send (tests/e2e/conftest.py, Local.request) is searched for the emails,
phone numbers and names it carries; every line the emulator subprocesses print (its own log and
the λ logs, which run in-process) is kept in a file; at the end of the session each file is
scanned for each value, and the session fails on any hit (issue 16, item 4).
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

NAME_KEYS = {"first_name", "last_name", "firstName", "lastName", "full_name"}
TRAIT_NAME_KEYS = {"name"}  # a person's name inside traits; elsewhere "name" names a product or store
PHONE_KEYS = {"phone", "phone_number", "mobile"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_lock = threading.Lock()
emails: set[str] = set()
phones: set[str] = set()
names: set[str] = set()
log_files: list[Path] = []


def remember(body: Any) -> None:
    """Note the customer values in a request body (JSON, form or raw bytes)."""
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            body = bytes(body).decode("utf-8", "replace")
    with _lock:
        _walk(body, None, None)


def _walk(value: Any, key: str | None, parent: str | None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, str(k), key)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key, parent)
    elif isinstance(value, str):
        emails.update(e.lower() for e in _EMAIL.findall(value))
        if key in PHONE_KEYS and sum(c.isdigit() for c in value) >= 7:
            phones.add(value)
        is_name = key in NAME_KEYS or (key in TRAIT_NAME_KEYS and parent == "traits")
        if is_name and len(value.strip()) >= 3:
            names.add(value.strip())


def new_log_file() -> Path:
    handle = tempfile.NamedTemporaryFile(prefix="boomerang-e2e-", suffix=".log", delete=False)
    handle.close()
    path = Path(handle.name)
    with _lock:
        log_files.append(path)
    return path


def _phone_forms(phone: str) -> set[str]:
    digits = "".join(c for c in phone if c.isdigit())
    return {phone, digits, "+" + digits} | ({digits[-9:]} if len(digits) >= 9 else set())


def hits(text: str) -> list[str]:
    """Which remembered values ``text`` carries."""
    found: list[str] = []
    lower = text.lower()
    found += [f"email {e}" for e in emails if e in lower]
    found += [f"phone {p}" for p in phones if any(f in text for f in _phone_forms(p))]
    found += [f"name {n}" for n in names if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text)]
    return found


def scan() -> list[str]:
    """Every log line of the session carrying a customer value, with what it carries."""
    problems: list[str] = []
    for path in log_files:
        for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
            found = hits(line)
            if found:
                problems.append(f"{path.name}:{number}: {', '.join(sorted(found))}: {line[:300]}")
    return problems
