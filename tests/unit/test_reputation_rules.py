"""When marketing email pauses to keep the SES account out of review (shared/domain/reputation.py)."""

from shared.domain.reputation import Reputation, counted_as, marketing_pause


def test_bounces_pause_marketing_before_ses_reviews_the_account() -> None:
    assert marketing_pause(Reputation(delivered=961, bounced=39)) is None  # 3.9%
    reason = marketing_pause(Reputation(delivered=960, bounced=40))  # 4.0%
    assert reason is not None and "bounce rate 4.0% over 7 days" in reason and "5%" in reason


def test_complaints_pause_at_a_lower_rate() -> None:
    assert marketing_pause(Reputation(delivered=10_000, complained=7)) is None  # 0.07%
    reason = marketing_pause(Reputation(delivered=10_000, complained=8))
    assert reason is not None and "complaint rate 0.08%" in reason and "0.1%" in reason


def test_a_small_volume_never_pauses() -> None:
    # 3 bounces of 50 is 6%, but says little about the list
    assert marketing_pause(Reputation(delivered=47, bounced=3)) is None


def test_what_counts() -> None:
    assert [counted_as(o) for o in ("delivery", "permanent_bounce", "complaint")] == [
        "delivered",
        "bounced",
        "complained",
    ]
    assert counted_as("transient_bounce") is None and counted_as("open") is None
