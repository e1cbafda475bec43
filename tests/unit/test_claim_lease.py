"""A claim's lease outlives the step λ that holds it, so a retry never takes over a live attempt."""

from infra.description import FUNCTIONS_BY_ID
from shared.services.journeys.claim import LEASE_S


def test_the_lease_is_longer_than_the_step_function_may_run() -> None:
    assert LEASE_S > FUNCTIONS_BY_ID["journey_step"].timeout_s * 2
