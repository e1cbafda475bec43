"""A made-up store's records for report rendering tests: 14 months, a few hundred customers, journeys
with a holdout and an A/B variant. Deterministic (seeded); no personal data, only ids."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from shared.adapters.report_data import ReportData
from shared.domain.metrics import DAY, EngagementRec, EntryRec, OrderRec, SentRec

START = datetime(2025, 9, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def sample_data(store: str = "sample-shop", journey_names: tuple[str, ...] = ()) -> ReportData:
    rng = random.Random(6)
    data = ReportData(store, currencies={"EUR"})
    journeys = journey_names or ("cart-abandonment", "win-back", "welcome")
    for n in range(300):
        customer = f"u:c{n}"
        data.customers += 1
        data.known_customers += 1
        first = START - 200 * DAY + rng.random() * (END - START + 150 * DAY)
        at, k = first, 0
        while at < END:
            total = round(rng.uniform(15, 160), 2)
            status = "cancelled" if rng.random() < 0.04 else "completed"
            refunded = round(total / 2, 2) if rng.random() < 0.05 else 0.0
            data.orders.append(OrderRec(f"o{n}-{k}", customer, at, total, refunded, status))
            k += 1
            at += rng.expovariate(1 / (60 * DAY)) if rng.random() < 0.7 else 400 * DAY
            if rng.random() < 0.2:
                break
        for _ in range(rng.randint(0, 3)):
            journey = rng.choice(journeys)
            entered = START + rng.random() * (END - START)
            group = "control" if rng.random() < 0.1 else "treatment"
            data.entries.append(EntryRec(customer, journey, entered, group))
            if group == "treatment":
                variant = rng.choice(("a", "b")) if journey == journeys[0] else None
                channel = rng.choice(("email", "email", "sms", "push"))
                data.sends.append(SentRec(customer, journey, entered + 3600, "step-1", variant, channel))
                if rng.random() < 0.25:
                    at = entered + rng.random() * 4 * DAY
                    data.orders.append(
                        OrderRec(f"j{n}-{at:.0f}", customer, at, round(rng.uniform(20, 90), 2))
                    )
    data.engagement = [
        EngagementRec(s.journey, s.step_id or "?", True, rng.random() < 0.4, rng.random() < 0.1)
        for s in data.sends
        if s.channel == "email"
    ]
    data.orders.sort(key=lambda o: o.at)
    return data
