"""Change a field's type: prices were floats of euros, now integers of cents (floats cannot
hold money exactly).

Breaking (a float is not an integer, and the name changes with the unit): mode NONE for the
change. The upcaster rounds each old price to cents once, the same way on every read.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventvault import EventStore
from eventvault.aggregates import EventRegistry
from eventvault.schema import Upcasters

from ._steps import register_new_version, write_old_events

BEFORE = EventRegistry()
AFTER = EventRegistry()
upcasters = Upcasters()


@BEFORE.event("ItemPriced", version=1)
class ItemPricedV1(msgspec.Struct, frozen=True):
    sku: str
    price: float


@AFTER.event("ItemPriced", version=2)
class ItemPriced(msgspec.Struct, frozen=True):
    sku: str
    price_cents: int


@upcasters.upcaster(
    "ItemPriced",
    from_version=1,
    examples=[{"sku": "pen", "price": 2.5}, {"sku": "cup", "price": 3}],
)
def euros_to_cents(data: dict[str, Any]) -> dict[str, Any]:
    return {"sku": data["sku"], "price_cents": round(data["price"] * 100)}


def evolve(store: EventStore) -> list[msgspec.Struct]:
    """Old prices in, the new version registered, every price read in cents."""
    write_old_events(
        store, BEFORE, "item-pen", [ItemPricedV1("pen", 2.5), ItemPricedV1("pen", 0.1)]
    )
    register_new_version(store, AFTER, upcasters, breaking=True)
    return [AFTER.decode(event) for event in store.read_all()]
