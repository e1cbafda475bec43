"""What a journey step receives and returns, and the dependencies it runs with.

The state machine passes a StepInput to the step λ and gets a StepOutput back; Deps are built once
per container by the handler (or by tests, with moto-backed or in-memory ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from shared.domain.journeys import Journey
from shared.domain.stores import Store

if TYPE_CHECKING:  # for annotations only: the λ that builds Deps imports these itself
    from mypy_boto3_pinpoint import PinpointClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient

    from shared.adapters.fulfilment_store import FulfilmentStore
    from shared.adapters.journey_catalog import JourneyCatalog
    from shared.adapters.journey_store import JourneyStore
    from shared.adapters.offer_store import OfferStore
    from shared.adapters.product_catalog import ProductCatalog
    from shared.adapters.profile_store import ProfileStore
    from shared.adapters.reputation_store import ReputationStore
    from shared.adapters.segment_catalog import SegmentCatalog
    from shared.adapters.store_directory import StoreDirectory
    from shared.adapters.suppression import SuppressionList
    from shared.platform.signing import SigningKeyProvider
    from shared.platform.vapid import VapidKeys
    from shared.templates.store import TemplateStore


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
    parked_at: float | None = None  # when SES first parked this step's send (quota used up, paused)


class StepOutput(StepInput):
    action: str  # wait | exit
    reason: str
    events: list[dict[str, Any]] = Field(default_factory=list)  # what this invocation did
    decided_at: float = 0  # Boomerang time of this decision; the trigger compares events against it


@dataclass
class Deps:
    """What a step reads and sends with; the optional ones are left out by callers that never need them."""

    profiles: ProfileStore
    journeys: JourneyStore
    stores: StoreDirectory
    templates: TemplateStore
    ses: SESV2Client
    signing_keys: SigningKeyProvider  # the key unsubscribe, preferences and confirm links are signed with
    unsubscribe_base_url: str
    configuration_set: str | None = None
    sns: SNSClient | None = None
    pinpoint: PinpointClient | None = None
    push_app_id: str = ""
    vapid: VapidKeys | None = None  # each store's VAPID key pair (web push)
    webpush_session: Any = None  # requests.Session to the browsers' push services
    suppressions: SuppressionList | None = None
    catalog: JourneyCatalog | None = None  # journey files; the built-in journeys need none
    offers: OfferStore | None = None  # the pools unique offer codes are drawn from
    products: ProductCatalog | None = None  # the collections a step shows
    segments: SegmentCatalog | None = None  # definitions an entry: segment condition is checked against
    fulfilment: FulfilmentStore | None = None  # partners' deliveries, for steps timed from: delivery
    reputation: ReputationStore | None = None  # the SES account's bounce/complaint rates (pauses marketing)


@dataclass
class Run:
    """What one invocation knows about the instance besides the state machine's input."""

    journey: Journey
    store: Store | None
    customer_id: str | None
    control: bool  # in the journey's holdout group
    bucket: float  # where the customer falls in the step's variants
