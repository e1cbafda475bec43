"""`python -m tests.bench webpush`: the time to send one web push message, and what the site loads.

Per message: RFC 8291 encryption (a fresh ECDH key pair and salt), the RFC 8292 VAPID signature (a
fresh ES256 JWT), and the HTTPS POST to the local push service stand-in on loopback (which checks the
JWT and decrypts, as a browser would); a kept-alive session, as the journey-step λ keeps one. The
stand-in's own work is included, so on AWS the POST's share is the network instead.
"""

from __future__ import annotations

import gzip
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def webpush_send(n: int = 200) -> dict[str, float]:
    import requests
    from py_vapid import Vapid02
    from pywebpush import WebPusher

    from infra.local.webpush_fake import PushServiceFake
    from shared.adapters.channels.webpush import send_webpush
    from shared.domain.webpush import BrowserSubscription, notification_payload
    from shared.platform.vapid import derive

    fake = PushServiceFake().start()
    try:
        pair = derive(b"bench-vapid-root-0123456789abcdef", "bench-store")
        subs = []
        for i in range(n):
            s = fake.subscribe(pair.public_key, f"Browser {i}")
            subs.append(
                BrowserSubscription(
                    endpoint=s["endpoint"],
                    p256dh=s["keys"]["p256dh"],
                    auth=s["keys"]["auth"],
                    browser="b",
                    at=0,
                )
            )
        payload = notification_payload(
            "A little something for your cart",
            "Use code CART10 for 10% off the items in your cart. Open it to finish your order.",
            "https://shop.example.com/cart?utm_medium=webpush",
            None,
            "https://shop.example.com/img/runner.png",
            {"journey": "cart-abandonment", "step": "reminder-2"},
        )
        session = requests.Session()
        session.verify = fake.ca_file
        session.trust_env = False
        send_webpush(  # warm: the TLS connection and imports
            session,
            subscriptions=subs[:1],
            payload=payload,
            vapid=pair,
            subject="mailto:o@s.example",
            ttl=60,
            urgency="normal",
        )
        times = []
        for sub in subs[1:]:
            t = time.perf_counter()
            result = send_webpush(
                session,
                subscriptions=[sub],
                payload=payload,
                vapid=pair,
                subject="mailto:o@s.example",
                ttl=86400,
                urgency="normal",
            )
            times.append(time.perf_counter() - t)
            assert result.delivered, result
        info = subs[0].subscription_info()
        t = time.perf_counter()
        for _ in range(n):
            WebPusher(info).encode(payload, "aes128gcm")
        encrypt = (time.perf_counter() - t) / n
        signer = Vapid02(private_key=pair.private_key)
        t = time.perf_counter()
        for _ in range(n):
            signer.sign({"sub": "mailto:o@s.example", "aud": fake.url, "exp": int(time.time()) + 3600})
        sign = (time.perf_counter() - t) / n
    finally:
        fake.stop()
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[int(len(times) * 0.95) - 1] * 1000,
        "per_s": len(times) / sum(times),
        "encrypt_ms": encrypt * 1000,
        "sign_ms": sign * 1000,
        "payload_bytes": len(payload),
    }


def print_webpush() -> None:
    figures = webpush_send()
    print("\nWeb push send, one message (encrypt + VAPID sign + HTTPS POST to the local push service):")
    print(
        f"  median {figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms "
        f"({figures['per_s']:,.0f} messages/s on one thread); of which aes128gcm encryption "
        f"{figures['encrypt_ms']:.2f} ms, VAPID signature {figures['sign_ms']:.2f} ms; "
        f"payload {figures['payload_bytes']} bytes"
    )
    folder = ROOT / "shared" / "services" / "webpush"
    sizes = ", ".join(
        f"{p.name} {p.stat().st_size:,} B ({len(gzip.compress(p.read_bytes(), 9)):,} B gzip)"
        for p in sorted(folder.glob("*.js"))
    )
    print(f"  scripts the store's site loads: {sizes}")
