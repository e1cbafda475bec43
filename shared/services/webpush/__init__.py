"""What a store's site loads for web push, served by Boomerang: the service worker, the subscribe
helper, and the store's VAPID public key.

The two scripts ship in this folder with the store id and the store's public key (the browser's
`applicationServerKey`) filled in, so a site needs one request per script and nothing from a third
party. Both are public by nature (a browser must read them); nothing secret goes in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.adapters.store_directory import StoreDirectory
from shared.platform.vapid import VapidKeys

SERVICE_WORKER = "boomerang-sw.js"
HELPER = "boomerang-webpush.js"
SCRIPTS = (SERVICE_WORKER, HELPER)
# Browsers re-check a service worker at least daily whatever the header says; an hour keeps a
# fixed helper reaching sites the same day without a request on every page view.
CACHE_CONTROL = "public, max-age=3600"
_STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Asset:
    status: int
    content_type: str
    body: str
    headers: dict[str, str]


@cache
def _source(name: str) -> str:
    return (Path(__file__).parent / name).read_text(encoding="utf-8")


def _not_found(what: str) -> Asset:
    body = json.dumps({"error": "not_found", "message": what})
    return Asset(404, "application/json", body, {})


def site_asset(name: str, store_id: str, stores: StoreDirectory, vapid: VapidKeys | None) -> Asset:
    """One of SCRIPTS, or ``config`` (the public key as JSON), for a known store; 404 otherwise."""
    if name not in (*SCRIPTS, "config"):
        return _not_found(f"no such web push file {name[:60]!r}; there are {', '.join(SCRIPTS)} and config")
    if not _STORE_ID.match(store_id) or stores.get(store_id) is None:
        return _not_found("no such store")
    if vapid is None:
        return _not_found("web push is not set up in this deployment (no VAPID secret)")
    public_key = vapid.for_store(store_id).public_key
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        # loaded cross-origin by the store's pages and by their service worker's importScripts
        "Access-Control-Allow-Origin": "*",
    }
    if name == "config":
        body = json.dumps({"store": store_id, "publicKey": public_key, "scripts": list(SCRIPTS)})
        return Asset(200, "application/json", body, headers)
    body = (
        _source(name)
        .replace("__BOOMERANG_STORE__", store_id.replace("*/", ""))
        .replace("__BOOMERANG_STORE_JSON__", json.dumps(store_id))
        .replace("__BOOMERANG_VAPID_KEY_JSON__", json.dumps(public_key))
    )
    return Asset(200, "text/javascript; charset=utf-8", body, headers)
