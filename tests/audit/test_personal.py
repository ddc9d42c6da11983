"""Crypto-shredding on every engine: sealed personal fields, forgetting a subject, and the
domain layer, snapshots and read models that follow it."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import pytest

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.aggregates import Aggregate, EventRegistry, Repository, applies
from eventvault.aggregates.snapshots import StoreSnapshotStore
from eventvault.audit import (
    AuditLedger,
    Erased,
    Personal,
    SigningKey,
    SubjectKeys,
    copy_subject_keys,
    verify_store,
)
from eventvault.errors import (
    AuditMismatchError,
    InvalidArgumentError,
    PersonalDataError,
    SchemaValidationError,
    SubjectNotFoundError,
)
from eventvault.export import read_export, write_export
from eventvault.schema import SchemaRegistry
from eventvault.serialization import verify_chain
from eventvault.testing.contract import EngineSpec

registry = EventRegistry()


@registry.event("CustomerRegistered", version=1)
class CustomerRegistered(msgspec.Struct, frozen=True):
    customer_id: str
    email: Annotated[str | Erased, Personal(subject="customer_id")]
    name: Annotated[str | Erased | None, Personal(subject="customer_id")] = None
    plan: str = "basic"


@registry.event("EmailChanged", version=1)
class EmailChanged(msgspec.Struct, frozen=True):
    customer_id: str
    email: Annotated[str | Erased, Personal(subject="customer_id")]


class CustomerState(msgspec.Struct):
    email: str | Erased | None = None
    name: str | Erased | None = None
    plan: str = ""


class Customer(Aggregate[CustomerState]):
    category = "customer"
    state_type = CustomerState

    def register(self, email: str, name: str) -> None:
        self.record(CustomerRegistered(customer_id=self.id, email=email, name=name))

    def change_email(self, email: str) -> None:
        self.record(EmailChanged(customer_id=self.id, email=email))

    @applies(CustomerRegistered)
    def _registered(self, event: CustomerRegistered) -> None:
        self.state.email, self.state.name, self.state.plan = event.email, event.name, event.plan

    @applies(EmailChanged)
    def _changed(self, event: EmailChanged) -> None:
        self.state.email = event.email


WHO = ("dpo@example.com", "erasure request 7")


def field(data: Mapping[str, object], name: str) -> Any:
    """A payload's field, as whatever JSON value it holds."""
    return data[name]


def register(keys: SubjectKeys, customer: str, email: str) -> None:
    keys.append_to_stream(
        f"customer-{customer}",
        [registry.to_new_event(CustomerRegistered(customer_id=customer, email=email, name="Ada"))],
        expected_version=StreamState.ANY,
    )


def test_personal_fields_are_stored_sealed_and_read_back_revealed(store: EventStore) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    (stored,) = list(store.export_events())
    assert b"ada@example.com" not in bytes(stored.data) and b"Ada" not in bytes(stored.data)
    assert b'"plan":"basic"' in bytes(stored.data) and b'"customer_id":"c-1"' in bytes(stored.data)
    (read,) = list(store.read_stream("customer-c-1"))
    assert read.data["email"] != "ada@example.com"
    revealed = keys.reveal(read)
    assert revealed.data["email"] == "ada@example.com" and revealed.data["name"] == "Ada"
    assert registry.decode(revealed) == CustomerRegistered("c-1", "ada@example.com", "Ada")
    assert verify_chain(store.export_events()) == 1


def test_forgetting_a_subject_erases_its_fields_and_every_hash_still_verifies(
    store: EventStore, key: SigningKey
) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    register(keys, "c-2", "bob@example.com")
    ledger = AuditLedger(store)
    before = ledger.checkpoint(key)
    exported_before = list(store.export_events())
    forgotten = keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    assert forgotten.streams == ("customer-c-1",) and len(forgotten.keys) == 1
    assert list(store.export_events())[:2] == exported_before
    erased, kept = (keys.reveal(e) for e in store.read_all(stream_prefix="customer-"))
    assert field(erased.data, "email") == {"$erased": field(erased.data, "email")["$erased"]}
    assert str(field(erased.data, "email")["$erased"]).endswith("Z")
    decoded = registry.decode(erased)
    assert isinstance(decoded, CustomerRegistered) and isinstance(decoded.email, Erased)
    assert decoded.plan == "basic" and decoded.customer_id == "c-1"
    assert kept.data["email"] == "bob@example.com"
    (record,) = list(store.read_stream("$removals"))
    assert record.event_type == "SubjectForgotten"
    assert record.data == {
        "subject": "c-1",
        "keys": list(forgotten.keys),
        "streams": ["customer-c-1"],
        "actor": WHO[0],
        "reason": WHO[1],
    }
    after = ledger.checkpoint(key)
    ledger.consistency(before.tree_size, after.tree_size).verify([key.public])
    ledger.prove(erased.event_id).verify([key.public])
    assert verify_store(store, public_keys=[key.public]).events == 3


def test_forgetting_twice_does_nothing_and_an_unknown_subject_is_refused(
    store: EventStore,
) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    assert keys.forget("c-1", actor=WHO[0], reason=WHO[1]).record_position == 2
    again = keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    assert (again.keys, again.record_position) == ((), None)
    with pytest.raises(SubjectNotFoundError, match="'c-9'"):
        keys.forget("c-9", actor=WHO[0], reason=WHO[1])
    with pytest.raises(InvalidArgumentError, match="reason"):
        keys.forget("c-1", actor=WHO[0], reason="")
    assert store.head_position() == 2


def test_a_forgotten_subject_that_comes_back_gets_a_new_key(store: EventStore) -> None:
    keys = SubjectKeys(store, cache_seconds=0)
    register(keys, "c-1", "old@example.com")
    keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    register(keys, "c-1", "new@example.com")
    old, _, new = (keys.reveal(e) for e in store.read_all())
    assert "$erased" in field(old.data, "email")
    assert new.data["email"] == "new@example.com"


def test_another_reader_sees_the_erasure(store: EventStore) -> None:
    writer = SubjectKeys(store)
    reader = SubjectKeys(store, cache_seconds=0)
    register(writer, "c-1", "ada@example.com")
    (event,) = list(store.read_all())
    assert reader.reveal(event).data["email"] == "ada@example.com"
    writer.forget("c-1", actor=WHO[0], reason=WHO[1])
    assert "$erased" in field(reader.reveal(event).data, "email")


def test_plain_dict_events_are_sealed_as_declared(store: EventStore) -> None:
    keys = SubjectKeys(store)
    keys.declare("PatientAdmitted", {"name": "patient", "diagnosis": "patient"})
    keys.append_to_stream(
        "ward-3",
        [
            NewEvent(
                "PatientAdmitted", {"patient": "p-1", "name": "Ada", "diagnosis": "flu", "bed": 4}
            )
        ],
        expected_version=StreamState.NO_STREAM,
    )
    (event,) = list(store.read_stream("ward-3"))
    assert event.data["bed"] == 4 and set(field(event.data, "name")) == {"$personal"}
    assert keys.reveal(event).data == {
        "patient": "p-1",
        "name": "Ada",
        "diagnosis": "flu",
        "bed": 4,
    }
    keys.forget("p-1", actor=WHO[0], reason=WHO[1])
    assert set(field(keys.reveal(event).data, "diagnosis")) == {"$erased"}


def test_events_without_a_subject_are_refused_and_nothing_is_stored(store: EventStore) -> None:
    keys = SubjectKeys(store)
    keys.declare("PatientAdmitted", {"name": "patient"})
    with pytest.raises(PersonalDataError, match="'patient', which is None"):
        keys.append_to_stream(
            "ward-3",
            [NewEvent("PatientAdmitted", {"name": "Ada"})],
            expected_version=StreamState.ANY,
        )
    assert store.head_position() == 0

    class Badly(msgspec.Struct, frozen=True):
        who: str
        email: Annotated[str, Personal(subject="who")]

    with pytest.raises(PersonalDataError, match="cannot hold what it reads as"):
        keys.append_to_stream(
            "x-1", [NewEvent("Badly", Badly(who="w", email="e"))], expected_version=StreamState.ANY
        )

    class Nameless(msgspec.Struct, frozen=True):
        email: Annotated[str | Erased, Personal(subject="who")]

    with pytest.raises(PersonalDataError, match="subject field 'who'"):
        keys.append_to_stream(
            "x-1", [NewEvent("Nameless", Nameless(email="e"))], expected_version=StreamState.ANY
        )
    assert store.head_position() == 0


def test_a_changed_ciphertext_does_not_open(store: EventStore) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    (event,) = list(store.read_all())
    box = dict(field(event.data, "email")["$personal"])
    raw = bytearray(base64.b64decode(box["ciphertext"]))
    raw[20] ^= 1
    box["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(AuditMismatchError, match="does not open"):
        keys.reveal_data({**event.data, "email": {"$personal": box}})
    # Moved to another field of the event, a sealed value does not open either.
    swapped = {**event.data, "name": event.data["email"]}
    with pytest.raises(AuditMismatchError, match="moved from another field"):
        keys.reveal_data(swapped)


def test_first_events_of_a_subject_from_threads_share_one_key(store: EventStore) -> None:
    keys = SubjectKeys(store)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            register(keys, "c-1", f"{n}@example.com")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    boxes = {field(e.data, "email")["$personal"]["key"] for e in store.read_all()}
    assert len(boxes) == 1
    assert sorted(field(keys.reveal(e).data, "email") for e in store.read_all()) == sorted(
        f"{n}@example.com" for n in range(6)
    )


# -- the domain layer, snapshots and read models ------------------------------------------------


def test_a_repository_seals_on_save_and_loads_erased_fields_once_forgotten(
    store: EventStore,
) -> None:
    keys = SubjectKeys(store)
    customers = Repository(Customer, store, registry, personal_data=keys)
    customer = Customer("c-1")
    customer.register("ada@example.com", "Ada")
    customers.save(customer)
    customers.update("c-1", lambda c: c.change_email("ada@new.example.com"))
    loaded = customers.get("c-1")
    assert (loaded.state.email, loaded.state.name) == ("ada@new.example.com", "Ada")
    assert not any(b"example.com" in bytes(e.data) for e in store.export_events())
    keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    erased = customers.get("c-1")
    assert isinstance(erased.state.email, Erased) and isinstance(erased.state.name, Erased)
    assert erased.state.plan == "basic" and erased.version == 1


def test_forgetting_a_subject_deletes_the_snapshots_that_held_its_fields(
    store: EventStore,
) -> None:
    keys = SubjectKeys(store)
    customers = Repository(Customer, store, registry, personal_data=keys, snapshot_every=1)
    customer = Customer("c-1")
    customer.register("ada@example.com", "Ada")
    customers.save(customer)
    other = Customer("c-2")
    other.register("bob@example.com", "Bob")
    customers.save(other)
    snapshots = StoreSnapshotStore(store)
    held = snapshots.latest("customer-c-1", schema_version=Customer.snapshot_version)
    assert held is not None and b"ada@example.com" in held.state
    keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    assert snapshots.latest("customer-c-1", schema_version=Customer.snapshot_version) is None
    assert snapshots.latest("customer-c-2", schema_version=Customer.snapshot_version) is not None
    assert isinstance(customers.get("c-1").state.email, Erased)
    assert customers.get("c-2").state.email == "bob@example.com"


def test_a_read_model_rebuilt_after_a_forget_never_holds_the_erased_field(
    store: EventStore,
) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    register(keys, "c-2", "bob@example.com")

    def rebuild() -> dict[str, object]:
        # A read model is built from the log, revealing what the keys still open.
        return {
            str(e.data["customer_id"]): keys.reveal(e).data["email"]
            for e in store.read_all(event_types=["CustomerRegistered"])
        }

    assert rebuild() == {"c-1": "ada@example.com", "c-2": "bob@example.com"}
    keys.forget("c-1", actor=WHO[0], reason=WHO[1])
    rebuilt = rebuild()
    assert "ada@example.com" not in str(rebuilt) and rebuilt["c-2"] == "bob@example.com"


# -- moving a store ------------------------------------------------------------------------------


def test_an_export_never_holds_a_personal_field_in_the_clear(store: EventStore) -> None:
    keys = SubjectKeys(store)
    register(keys, "c-1", "ada@example.com")
    out = io.BytesIO()
    write_export(store, out)
    assert b"ada@example.com" not in out.getvalue()
    assert len(list(read_export(io.BytesIO(out.getvalue())))) == 1


def test_a_copy_reads_what_its_keys_open(engine: EngineSpec) -> None:
    with engine.fresh() as source, eventvault.connect("memory://") as copy:
        keys = SubjectKeys(source)
        register(keys, "c-1", "ada@example.com")
        register(keys, "c-2", "bob@example.com")
        keys.forget("c-2", actor=WHO[0], reason=WHO[1])
        copy.import_events(source.export_events())
        without = SubjectKeys(copy)
        first, second = (without.reveal(e) for e in copy.read_all(stream_prefix="customer-"))
        assert first.data["email"] == {"$erased": None}
        assert copy_subject_keys(source, copy) == 2
        copied = SubjectKeys(copy)
        first, second = (copied.reveal(e) for e in copy.read_all(stream_prefix="customer-"))
        assert first.data["email"] == "ada@example.com"
        assert set(field(second.data, "email")) == {"$erased"}
        assert field(second.data, "email")["$erased"] is not None


# -- the schema registry -------------------------------------------------------------------------

CONTACT_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "string"},
        "email": {"type": "string", "pattern": "@"},
    },
    "required": ["customer_id", "email"],
}


def enforced(store: EventStore) -> SubjectKeys:
    """Subject keys of a store whose registry enforces a schema on a type with a personal
    field."""
    registry = SchemaRegistry(store, actor="ada")
    registry.register("ContactAdded", CONTACT_SCHEMA)
    registry.enforce()
    keys = SubjectKeys(store)
    keys.declare("ContactAdded", {"email": "customer_id"})
    return keys


def test_an_enforced_schema_checks_personal_fields_as_written_not_as_sealed(
    store: EventStore,
) -> None:
    keys = enforced(store)
    contact = {"customer_id": "c-1", "email": "ada@example.com"}
    keys.append_to_stream(
        "contact-1", [NewEvent("ContactAdded", contact)], expected_version=StreamState.NO_STREAM
    )
    (event,) = store.read_stream("contact-1")
    assert "ada@example.com" not in msgspec.json.encode(event.data).decode()
    assert keys.reveal(event).data == contact
    # The sealed field is checked no other way: a plain append of the same data still is.
    with pytest.raises(SchemaValidationError, match="/email"):
        store.append_to_stream(
            "contact-2",
            [NewEvent("ContactAdded", {"customer_id": "c-2", "email": "no-at-sign"})],
            expected_version=StreamState.NO_STREAM,
        )


def test_a_personal_field_that_breaks_its_schema_is_refused_without_showing_it(
    store: EventStore,
) -> None:
    keys = enforced(store)
    head = store.head_position()
    with pytest.raises(SchemaValidationError) as caught:
        keys.append_to_stream(
            "contact-1",
            [
                NewEvent("ContactAdded", {"customer_id": "c-1", "email": "ada@example.com"}),
                NewEvent("ContactAdded", {"customer_id": "c-1", "email": "ada.lovelace.example"}),
            ],
            expected_version=StreamState.NO_STREAM,
        )
    error = caught.value
    assert (error.index, error.stream_name, error.event_type) == (1, "contact-1", "ContactAdded")
    assert [pointer for pointer, _ in error.errors] == ["/email"]
    assert "personal field" in str(error)
    for text in (str(error), repr(error.errors)):
        assert "ada.lovelace.example" not in text and "ada@example.com" not in text
    assert error.__cause__ is None and error.__suppress_context__
    assert store.head_position() == head
    with pytest.raises(SubjectNotFoundError):
        keys.forget("c-1", actor="dpo", reason="no key was made")


def test_a_field_that_is_not_personal_is_refused_with_its_reason(store: EventStore) -> None:
    keys = enforced(store)
    keys.declare("ContactAdded", {"email": "owner"})
    with pytest.raises(SchemaValidationError, match='/customer_id: 42 is not of type "string"'):
        keys.append_to_stream(
            "contact-1",
            [NewEvent("ContactAdded", {"customer_id": 42, "owner": "o-1", "email": "a@b"})],
            expected_version=StreamState.NO_STREAM,
        )
    assert list(store.read_stream("contact-1")) == []
