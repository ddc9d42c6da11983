"""Add an optional field: accounts gain a currency; old events had none and were in euros.

Compatible under BACKWARD: the new field is optional (it has a default) and the class's schema
is a closed object, so no old event can hold a `currency` of another shape. No upcaster is
needed to read old events (the default fills the field); this one states what old events meant,
"EUR", rather than leaving it to a default that may change.
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


@BEFORE.event("AccountOpened", version=1)
class AccountOpenedV1(msgspec.Struct, frozen=True):
    owner: str


@AFTER.event("AccountOpened", version=2)
class AccountOpened(msgspec.Struct, frozen=True):
    owner: str
    currency: str = "USD"  # the default of new accounts; old ones were all in euros


@upcasters.upcaster("AccountOpened", from_version=1, examples=[{"owner": "Ada"}])
def currency_of_old_accounts(data: dict[str, Any]) -> dict[str, Any]:
    data["currency"] = "EUR"
    return data


def evolve(store: EventStore) -> list[msgspec.Struct]:
    """Old events in, the new version registered, everything read as the new class."""
    write_old_events(store, BEFORE, "account-1", [AccountOpenedV1("Ada")])
    register_new_version(store, AFTER, upcasters, breaking=False)
    return [AFTER.decode(event) for event in store.read_all()]
