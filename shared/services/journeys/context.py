"""What a journey step receives and returns, and the dependencies it runs with.

The state machine passes a StepInput to the step λ and gets a StepOutput back; Deps are built once
per container by the handler (or by tests, with moto-backed or in-memory ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from shared.adapters.journey_store import JourneyStore
from shared.adapters.profile_store import ProfileStore
from shared.adapters.store_directory import StoreDirectory
from shared.templates.store import (
    TemplateStore,
)


class StepInput(BaseModel):
    """The execution's state between steps; kept small (history lives in DynamoDB)."""

    store_id: str
    journey: str
    instance: (
        str  # the cart, order or customer id (customer|sku for back in stock, customer@day for occasions)
    )
    customer_id: str | None = None  # who the trigger was about, when known at the start
    generation: int = Field(default=0, ge=0)  # > 0 when the instance entered again after a journey ended
    step: int = Field(default=0, ge=0)
    wait_seconds: int = 0
    started_at: float | None = None
    trigger: str | None = None  # messageId of the event that started the journey
    occasion: str | None = None  # YYYY-MM-DD for birthdays, anniversaries and at-risk days
    # the next step by id: a marketer's edit that inserts or removes steps keeps running journeys on track
    step_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)  # the order or product the trigger named


class StepOutput(StepInput):
    action: str  # wait | exit
    reason: str
    events: list[dict[str, Any]] = Field(default_factory=list)  # what this invocation did
    decided_at: float = 0  # Boomerang time of this decision; the trigger compares events against it


@dataclass
class Deps:
    profiles: ProfileStore
    journeys: JourneyStore
    stores: StoreDirectory
    templates: TemplateStore
    ses: Any
    signing_keys: Any
    unsubscribe_base_url: str
    configuration_set: str | None = None
    sns: Any = None
    pinpoint: Any = None
    push_app_id: str = ""
    suppressions: Any = None  # shared.suppression.SuppressionList
    catalog: Any = None  # shared.journey_catalog.JourneyCatalog (journey files)
    offers: Any = None  # shared.offers.OfferStore
    products: Any = None  # shared.catalog.ProductCatalog (collections a step shows)
    segments: Any = None  # shared.segment_catalog.SegmentCatalog (entry: segment)
