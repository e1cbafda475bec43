"""Named sample storefront calls from events/samples/, loaded the way Powertools' tests load theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[1] / "events" / "samples"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of a sample call (or batch body): 'product_added' or 'product_added.json'."""
    file = name if name.endswith(".json") else f"{name}.json"
    data: dict[str, Any] = json.loads((SAMPLES / file).read_text(encoding="utf-8"))
    return data


def sample_names() -> list[str]:
    return sorted(p.stem for p in SAMPLES.glob("*.json"))
