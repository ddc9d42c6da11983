"""Rename a field: `owner` becomes `holder`.

Breaking in every mode but NONE (readers of the raw events would find `owner` where they
expect `holder`), so the type's mode is NONE for the change, recorded in the registry's
history; the upcaster moves the value, so the application only ever sees `holder`.
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
    holder: str


@upcasters.upcaster("AccountOpened", from_version=1, examples=[{"owner": "Ada"}])
def owner_is_now_holder(data: dict[str, Any]) -> dict[str, Any]:
    data["holder"] = data.pop("owner")
    return data


def evolve(store: EventStore) -> list[msgspec.Struct]:
    """Old events in, the new version registered, everything read as the new class."""
    write_old_events(store, BEFORE, "account-1", [AccountOpenedV1("Ada")])
    register_new_version(store, AFTER, upcasters, breaking=True)
    return [AFTER.decode(event) for event in store.read_all()]
