"""The SES account's sending reputation, and when marketing email must pause to protect it.

SES puts an account under review at a 5% bounce rate or a 0.1% complaint rate (and may pause all its
sending at ~10% / ~0.5%). Every store sends from the same account, so one store's bad list would stop
every store's order confirmations. Boomerang pauses *marketing* email a little before review
(4% / 0.08%) and lets transactional mail go on: the customers who are owed a message still get it,
and the sends that are hurting the rate stop until it recovers.

Rates are over a rolling window of hourly counts written by the feedback λ
(shared/adapters/reputation_store.py): bounces are permanent (hard) bounces, the only kind SES's
rate counts; the volume is what SES settled (delivered + hard-bounced). Under a minimum volume a
handful of bounces says little, so nothing pauses (SES also judges on "representative volume").
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_H = 7 * 24  # rolling window the rates are computed over
MIN_VOLUME = 200  # settled messages in the window before a rate may pause anything
BOUNCE_PAUSE = 0.04  # SES reviews at 0.05
COMPLAINT_PAUSE = 0.0008  # SES reviews at 0.001
SES_BOUNCE_REVIEW = 0.05
SES_COMPLAINT_REVIEW = 0.001
KINDS = ("delivered", "bounced", "complained")


@dataclass(frozen=True)
class Reputation:
    """Counts over the window."""

    delivered: int = 0
    bounced: int = 0
    complained: int = 0

    @property
    def volume(self) -> int:
        return self.delivered + self.bounced

    @property
    def bounce_rate(self) -> float:
        return self.bounced / self.volume if self.volume else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.volume if self.volume else 0.0


def marketing_pause(rep: Reputation) -> str | None:
    """Why marketing email is paused now (the skip reason), or None."""
    if rep.volume < MIN_VOLUME:
        return None
    days = WINDOW_H // 24
    if rep.bounce_rate >= BOUNCE_PAUSE:
        return (
            f"marketing email paused: bounce rate {rep.bounce_rate:.1%} over {days} days "
            f"nears SES's {SES_BOUNCE_REVIEW:.0%} review threshold"
        )
    if rep.complaint_rate >= COMPLAINT_PAUSE:
        return (
            f"marketing email paused: complaint rate {rep.complaint_rate:.2%} over {days} days "
            f"nears SES's {SES_COMPLAINT_REVIEW:.1%} review threshold"
        )
    return None


# the feedback plan's outcome (shared/services/consent/feedback.py) -> what the window counts
_COUNTED = {"delivery": "delivered", "permanent_bounce": "bounced", "complaint": "complained"}


def counted_as(outcome: str) -> str | None:
    """What an SES event's outcome adds to the window (None: opens, clicks, soft bounces...)."""
    return _COUNTED.get(outcome)
