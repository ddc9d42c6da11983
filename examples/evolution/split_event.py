"""Split an event: a customer's address moves out of `CustomerRegistered` into an event of its
own, `AddressRecorded`, so that an address can change without re-registering the customer.

From now on the application writes both events. An upcaster turns one stored payload into one
payload, so each old event stays one event: version 2 of `CustomerRegistered` keeps the moved
part as an optional `address`, which new events leave empty and the upcaster fills from old
ones. The aggregate applies the address from either place; the application never sees the old
shape. (Breaking, since the flat fields go: mode NONE for the change.)
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventvault import EventStore
from eventvault.aggregates import Aggregate, EventRegistry, Repository, applies
from eventvault.schema import Upcasters

from ._steps import register_new_version, write_old_events

BEFORE = EventRegistry()
AFTER = EventRegistry()
upcasters = Upcasters()


@BEFORE.event("CustomerRegistered", version=1)
class CustomerRegisteredV1(msgspec.Struct, frozen=True):
    name: str
    street: str
    city: str


class Address(msgspec.Struct, frozen=True):
    street: str
    city: str


@AFTER.event("CustomerRegistered", version=2)
class CustomerRegistered(msgspec.Struct, frozen=True):
    name: str
    address: Address | None = None  # filled only in events written before the split


@AFTER.event("AddressRecorded", version=1)
class AddressRecorded(msgspec.Struct, frozen=True):
    address: Address


@upcasters.upcaster(
    "CustomerRegistered",
    from_version=1,
    examples=[{"name": "Ada", "street": "1 Lovelace Road", "city": "London"}],
)
def move_the_address(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": data["name"], "address": {"street": data["street"], "city": data["city"]}}


class CustomerState(msgspec.Struct):
    name: str = ""
    city: str = ""


class Customer(Aggregate[CustomerState]):
    category = "customer"
    state_type = CustomerState

    def register(self, name: str, address: Address) -> None:
        self.record(CustomerRegistered(name))
        self.record(AddressRecorded(address))

    @applies(CustomerRegistered)
    def _registered(self, event: CustomerRegistered) -> None:
        self.state.name = event.name
        if event.address is not None:
            self.state.city = event.address.city

    @applies(AddressRecorded)
    def _address(self, event: AddressRecorded) -> None:
        self.state.city = event.address.city


def evolve(store: EventStore) -> list[CustomerState]:
    """An old customer and a new one, both loaded through the new classes."""
    write_old_events(
        store, BEFORE, "customer-1", [CustomerRegisteredV1("Ada", "1 Lovelace Road", "London")]
    )
    register_new_version(store, AFTER, upcasters, breaking=True)
    customers = Repository(Customer, store, AFTER)
    new = Customer("2")
    new.register("Grace", Address("2 Hopper Lane", "Arlington"))
    customers.save(new)
    assert store.get_stream_version("customer-2") == 1
    return [customers.get("1").state, customers.get("2").state]
