"""Crypto-shredding: personal fields sealed under per-subject keys, erased by forgetting the key.

A field of an event that holds personal data of a subject (a customer, a patient) is marked
`Personal`; `SubjectKeys` seals it with AES-256-GCM under the subject's key before the event is
appended, so the stored bytes, and therefore the event's hash, are of the ciphertext. `forget`
destroys the key: every field sealed with it is erased at once, in the store, in every export and
backup, while the events, their hashes, chains, the audit tree and its proofs stay valid. A
sealed field is stored as::

    "email": {"$personal": {"key": "<key id>", "ciphertext": "<base64 of nonce || sealed>"}}

and reads, through `SubjectKeys.reveal`, as its value again, or once forgotten as::

    "email": {"$erased": "2026-05-01T10:00:00.000000Z"}

which a typed event reads as `Erased` (declare the field `Annotated[str | Erased,
Personal(subject="customer_id")]`). Keys live in the store's `audit_keys` component; exports never
carry them.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

from eventvault.audit.checkpoints import format_time
from eventvault.audit.keys import need_cryptography
from eventvault.errors import (
    InvalidArgumentError,
    PersonalDataError,
    SchemaValidationError,
    SubjectNotFoundError,
)
from eventvault.serialization import (
    MAX_POSITION,
    encode_events,
    from_micros,
    new_event_id,
    now_micros,
    validate_stream_name,
)
from eventvault.store.base import EventStore
from eventvault.store.seam import (
    AppendValidator,
    Component,
    Dialect,
    Transaction,
    known_components,
    load_migrations,
    register_component,
)
from eventvault.types import (
    REMOVALS_STREAM,
    AppendResult,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StreamAppend,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AUDIT_KEYS",
    "FORGOTTEN_EVENT_TYPE",
    "Erased",
    "Forgotten",
    "Personal",
    "SubjectKeys",
    "copy_subject_keys",
]

AUDIT_KEYS: Final = register_component(
    Component("audit_keys", load_migrations("eventvault.audit", "migrations/keys"))
)
"""The tables of the subjects' keys (`eventvault migrate` creates them)."""
FORGOTTEN_EVENT_TYPE: Final = "SubjectForgotten"
"""The type of the record of a `forget`, in `$removals`."""
SEALED: Final = "$personal"
ERASED: Final = "$erased"
_AAD: Final = b"eventvault-personal-v1\x00"
_NONCE_BYTES: Final = 12


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks a field of a typed event (a `msgspec.Struct`) as personal data of a subject::

        class CustomerRegistered(msgspec.Struct, frozen=True):
            customer_id: str
            email: Annotated[str | Erased, Personal(subject="customer_id")]

    Args:
        subject: the name of the field of the same event that holds the subject's id (a
            non-empty string); the field is sealed under that subject's key.
    """

    subject: str


class Erased(msgspec.Struct, frozen=True):
    """What a personal field reads as once its subject was forgotten.

    Attributes:
        forgotten_at: when the subject's key was destroyed (UTC, as a checkpoint writes time);
            None when the store that read it does not hold the key at all (a copy made without
            its keys, see `copy_subject_keys`).
    """

    forgotten_at: str | None = msgspec.field(name=ERASED, default=None)


class _Sealed(msgspec.Struct, frozen=True):
    key: str
    ciphertext: str


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What `SubjectKeys.forget` did.

    Attributes:
        subject: the subject.
        keys: the ids of the keys destroyed now (empty when it had been forgotten already).
        streams: the streams that held fields sealed with them (their snapshots were deleted).
        record_position: the global position of the `SubjectForgotten` record in `$removals`;
            None when nothing was left to forget.
    """

    subject: str
    keys: tuple[str, ...]
    streams: tuple[str, ...]
    record_position: int | None


@dataclass(frozen=True, slots=True)
class _Statements:
    live_key: str
    make_key: str
    keys_by_id: str
    subject_keys: str
    note_stream: str
    streams_of: str
    forget: str
    all_keys: str
    copy_key: str


def _statements(mark: str, schema: str, ignore: tuple[str, str]) -> _Statements:
    keys = f"{schema}audit_subject_keys"
    return _Statements(
        live_key=f"SELECT key_id, secret FROM {keys} WHERE subject = {mark} AND secret IS NOT NULL",
        make_key=f"INSERT {ignore[0]}INTO {keys} (key_id, subject, secret, created_at) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}){ignore[1]}",
        keys_by_id=f"SELECT key_id, secret, forgotten_at FROM {keys} WHERE key_id IN ({{marks}})",
        subject_keys=f"SELECT key_id, secret, forgotten_at FROM {keys} WHERE subject = {mark}",
        note_stream=f"INSERT {ignore[0]}INTO {schema}audit_subject_streams (key_id, stream_name) "
        f"VALUES ({mark}, {mark}){ignore[1]}",
        streams_of=f"SELECT DISTINCT stream_name FROM {schema}audit_subject_streams "
        f"WHERE key_id IN ({{marks}}) ORDER BY stream_name",
        forget=f"UPDATE {keys} SET secret = NULL, forgotten_at = {mark}, forgotten_by = {mark} "
        f"WHERE key_id = {mark} AND secret IS NOT NULL",
        all_keys=f"SELECT key_id, subject, secret, created_at, forgotten_at, forgotten_by "
        f"FROM {keys} ORDER BY created_at, key_id",
        copy_key=f"INSERT INTO {keys} "
        "(key_id, subject, secret, created_at, forgotten_at, forgotten_by) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark})",
    )


_STATEMENTS: Final[dict[Dialect, _Statements]] = {
    "sqlite": _statements("?", "", ("OR IGNORE ", "")),
    "postgresql": _statements("%s", "{schema}.", ("", " ON CONFLICT DO NOTHING")),
}
_MARKS: Final[dict[Dialect, str]] = {"sqlite": "?", "postgresql": "%s"}


def _aesgcm(secret: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(secret)


def _associated(field: str, key_id: str) -> bytes:
    # Binds a ciphertext to its field and key: moved to another field it does not open.
    return _AAD + field.encode() + b"\x00" + key_id.encode()


def _personal_fields_of(cls: type) -> dict[str, str]:
    """The `Personal` fields of a Struct class and their subject fields.

    Raises:
        PersonalDataError: a Personal field's type cannot hold `Erased`, or names a subject
            field the class does not have.
    """
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise PersonalDataError(
            cls.__qualname__,
            f"its annotations cannot be resolved to find its personal fields ({exc}): define "
            "the class at the top level of a module that imports what they name",
        ) from exc
    found: dict[str, str] = {}
    encoded_names = {field.name: field.encode_name for field in msgspec.structs.fields(cls)}
    for name, hint in hints.items():
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        marks = [mark for mark in hint.__metadata__ if isinstance(mark, Personal)]
        if not marks:
            continue
        inner = typing.get_args(hint)[0]
        members = (
            typing.get_args(inner)
            if isinstance(inner, types.UnionType) or (typing.get_origin(inner) is typing.Union)
            else (inner,)
        )
        if Erased not in members:
            raise PersonalDataError(
                cls.__qualname__,
                f"the personal field {name!r} is declared {inner!r}, which cannot hold what it "
                "reads as once its subject is forgotten: declare it "
                f"Annotated[{getattr(inner, '__name__', inner)} | Erased, Personal(...)]",
            )
        subject = marks[0].subject
        if subject not in encoded_names:
            raise PersonalDataError(
                cls.__qualname__,
                f"the personal field {name!r} names the subject field {subject!r}, which the "
                "class does not have",
            )
        found[encoded_names.get(name, name)] = encoded_names[subject]
    return found


class SubjectKeys:
    """The keys of the subjects whose personal data a store's events hold: seal, reveal, forget.

    Args:
        store: the open store; its `audit_keys` component is made ready in it.
        cache_seconds: how long a key read for `reveal` is used before it is read again. A
            subject forgotten through this object is erased at once; one forgotten by another
            process or object is erased here within this time.

    Raises:
        MigrationRequiredError: the key tables are missing or old and the store may not
            migrate (run `eventvault migrate URL`).
    """

    def __init__(self, store: EventStore, *, cache_seconds: float = 5.0) -> None:
        if not cache_seconds >= 0:
            raise InvalidArgumentError(
                "cache_seconds", cache_seconds, "must be a number of seconds >= 0"
            )
        store.use(AUDIT_KEYS)
        self.store = store
        self.cache_seconds = cache_seconds
        self._sql = _STATEMENTS[store.dialect]
        self._mark = _MARKS[store.dialect]
        self._declared: dict[str, dict[str, str]] = {}
        self._classes: dict[type, dict[str, str]] = {}
        self._cache: dict[str, tuple[float, bytes | None, int | None]] = {}
        self._lock = threading.Lock()

    # -- what is personal ------------------------------------------------------------------------

    def declare(self, event_type: str, fields: Mapping[str, str]) -> None:
        """Declare the personal fields of events of a type written as plain dicts.

        Args:
            event_type: the events' type.
            fields: each personal field, mapped to the field of the same event that holds its
                subject's id.

        Raises:
            InvalidArgumentError: an empty mapping, or names that are not strings.
        """
        if not fields or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise InvalidArgumentError(
                "fields", fields, "must map each personal field's name to its subject field's"
            )
        self._declared[event_type] = dict(fields)

    def personal_fields(self, event: NewEvent) -> dict[str, str]:
        """The personal fields of an event (by its class's `Personal` marks, else by its
        type's declaration), each mapped to its subject field.

        Raises:
            PersonalDataError: a class's marks are wrong (see `Personal`).
        """
        data = event.data
        if isinstance(data, msgspec.Struct):
            cls = type(data)
            found = self._classes.get(cls)
            if found is None:
                found = self._classes[cls] = _personal_fields_of(cls)
            return found
        return self._declared.get(event.event_type, {})

    # -- sealing ---------------------------------------------------------------------------------

    def _key_for(self, tx: Transaction, subject: str) -> tuple[str, bytes]:
        rows = tx.fetch(self._sql.live_key, (subject,))
        if not rows:
            # Two writers may make the first key of a subject at once: the unique index keeps
            # one, and both use it.
            tx.execute(
                self._sql.make_key, (str(uuid.uuid4()), subject, os.urandom(32), now_micros())
            )
            rows = tx.fetch(self._sql.live_key, (subject,))
        key_id, secret = rows[0]
        return str(key_id), bytes(secret)

    def _seal_event(self, tx: Transaction, event: NewEvent, used: set[str]) -> NewEvent:
        fields = self.personal_fields(event)
        if not fields:
            return event
        payload = msgspec.json.decode(msgspec.json.encode(event.data))
        if not isinstance(payload, dict):
            raise PersonalDataError(event.event_type, "its data is not a JSON object")
        for field, subject_field in fields.items():
            if field not in payload or payload[field] is None:
                continue
            subject = payload.get(subject_field)
            if not isinstance(subject, str) or not subject:
                raise PersonalDataError(
                    event.event_type,
                    f"the personal field {field!r} belongs to the subject named by "
                    f"{subject_field!r}, which is {subject!r}, not a non-empty string",
                )
            key_id, secret = self._key_for(tx, subject)
            nonce = os.urandom(_NONCE_BYTES)
            sealed = _aesgcm(secret).encrypt(
                nonce, msgspec.json.encode(payload[field]), _associated(field, key_id)
            )
            payload[field] = {
                SEALED: {"key": key_id, "ciphertext": base64.b64encode(nonce + sealed).decode()}
            }
            used.add(key_id)
        return NewEvent(
            event.event_type,
            payload,
            metadata=event.metadata,
            # The id is fixed here so that a transaction run again seals the same event.
            event_id=event.event_id or new_event_id(),
            schema_version=event.schema_version,
        )

    def append_to_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Seal the personal fields of the events and append them, in one transaction with
        the subjects' keys (made for a subject's first event).

        Events without personal fields are appended as they are. The stored payload holds the
        ciphertext, so the event's hash covers it.

        Args:
            appends: as `EventStore.append_to_streams`.

        Returns:
            As `EventStore.append_to_streams`.

        Raises:
            PersonalDataError: a subject field is missing or not a non-empty string, or a class
                marks its fields wrongly.
            AuditKeyError: `cryptography` (the `audit` extra) is missing.
            The errors of `EventStore.append_to_streams`.
        """
        need_cryptography("personal data")
        fixed = [
            StreamAppend(
                a.stream_name,
                [e if e.event_id is not None else _with_id(e) for e in a.events],
                a.expected_version,
            )
            for a in appends
        ]

        def work(tx: Transaction) -> list[AppendResult]:
            validator = tx.append_validator
            if validator is not None:
                self._validate_plain(validator, fixed)
            sealed: list[StreamAppend] = []
            notes: set[tuple[str, str]] = set()
            for append in fixed:
                validate_stream_name(append.stream_name)
                used: set[str] = set()
                events = [self._seal_event(tx, event, used) for event in append.events]
                notes.update((key, append.stream_name) for key in used)
                sealed.append(StreamAppend(append.stream_name, events, append.expected_version))
            if notes:
                tx.execute_many(self._sql.note_stream, sorted(notes))
            # The events were validated as written above; a sealed field (ciphertext) cannot
            # match the schema of the value it hides.
            tx.append_validator = None
            try:
                return tx.append_to_streams(sealed)
            finally:
                tx.append_validator = validator

        return self.store.run_transaction(work)

    def _validate_plain(self, validator: AppendValidator, appends: Sequence[StreamAppend]) -> None:
        """Run the store's append validator (the schema registry) over the events before their
        personal fields are sealed.

        Raises:
            SchemaValidationError: an event does not match its schema; a reason that would show
                a personal field's value is replaced, so that the error (and any log it reaches)
                holds no personal data.
            The other errors of the validator.
        """
        for append in appends:
            # The size limit is the sealed events' to meet, checked when they are appended.
            encoded = encode_events(append.events, MAX_POSITION)
            try:
                validator(append.stream_name, encoded)
            except SchemaValidationError as exc:
                index = exc.index or 0
                event = append.events[index]
                fields = self.personal_fields(event)
                if not fields:
                    raise
                payload = msgspec.json.decode(encoded[index].data)
                raise SchemaValidationError(
                    exc.stream_name,
                    index,
                    exc.event_type,
                    exc.schema_version,
                    _without_personal(exc.errors, payload, fields),
                ) from None

    def append_to_stream(
        self, stream_name: str, events: Sequence[NewEvent], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        """Seal and append events to one stream (see `append_to_streams`)."""
        return self.append_to_streams([StreamAppend(stream_name, events, expected_version)])[0]

    # -- revealing -------------------------------------------------------------------------------

    def _keys(self, key_ids: set[str]) -> dict[str, tuple[bytes | None, int | None]]:
        """(secret, forgotten at) of keys: the secret of a live key; for a forgotten one None
        and the time it was forgotten; for one the store does not hold, (None, None)."""
        now = time.monotonic()
        found: dict[str, tuple[bytes | None, int | None]] = {}
        with self._lock:
            for key_id in key_ids:
                cached = self._cache.get(key_id)
                if cached is not None and now - cached[0] <= self.cache_seconds:
                    found[key_id] = (cached[1], cached[2])
        missing = sorted(key_ids - found.keys())
        if missing:
            statement = self._sql.keys_by_id.replace(
                "{marks}", ", ".join([self._mark] * len(missing))
            )
            rows = {str(r[0]): r for r in self.store.query(statement, missing)}
            with self._lock:
                for key_id in missing:
                    row = rows.get(key_id)
                    secret = None if row is None or row[1] is None else bytes(row[1])
                    forgotten = None if row is None or row[2] is None else int(row[2])
                    self._cache[key_id] = (now, secret, forgotten)
                    found[key_id] = (secret, forgotten)
        return found

    def reveal_data(self, data: Mapping[str, object]) -> dict[str, object]:
        """A payload with its sealed fields opened, or marked erased (see the module's
        docstring).

        Raises:
            AuditMismatchError: a sealed field does not open with its key (it was changed).
        """
        sealed: dict[str, _Sealed] = {}
        for name, value in data.items():
            if isinstance(value, dict) and SEALED in value and len(value) == 1:
                try:
                    sealed[name] = msgspec.convert(value[SEALED], _Sealed)
                except msgspec.ValidationError:
                    continue
        if not sealed:
            return dict(data)
        keys = self._keys({box.key for box in sealed.values()})
        opened = dict(data)
        for name, box in sealed.items():
            secret, forgotten = keys[box.key]
            if secret is None:
                when = None if forgotten is None else format_time(from_micros(forgotten))
                opened[name] = {ERASED: when}
                continue
            opened[name] = msgspec.json.decode(_open(secret, name, box))
        return opened

    def reveal(self, event: RecordedEvent) -> RecordedEvent:
        """An event read from the store with its sealed fields opened, or marked erased.

        Raises:
            AuditMismatchError: a sealed field does not open with its key.
        """
        if not any(isinstance(v, dict) and SEALED in v for v in event.data.values()):
            return event
        return msgspec.structs.replace(event, data=self.reveal_data(event.data))

    def reveal_payload(self, data: bytes) -> bytes:
        """Stored payload bytes with their sealed fields opened, or marked erased: what a
        typed event (`Erased` fields) decodes from. Bytes without sealed fields come back as
        they are, at the cost of one search.
        """
        if b'"$personal"' not in data:
            return data
        decoded = msgspec.json.decode(data)
        if not isinstance(decoded, dict):
            return data
        return msgspec.json.encode(self.reveal_data(decoded))

    # -- forgetting ------------------------------------------------------------------------------

    def forget(self, subject: str, *, actor: str, reason: str) -> Forgotten:
        """Destroy a subject's keys: every field sealed for it is erased, in the store and in
        every export, while every event, hash and proof stays valid.

        In one transaction: the keys are destroyed, what components derived from the streams
        that held sealed fields is deleted (`Component.on_stream_removal`: snapshots, which may
        hold the fields in the clear), and a `SubjectForgotten` event records who, when, what
        and why in `$removals`. Forgetting a subject again does nothing; a later event of the
        subject is sealed with a new key.

        Args:
            subject: the subject's id.
            actor: who forgets it, recorded.
            reason: why (an erasure request's reference), recorded.

        Returns:
            What was forgotten.

        Raises:
            SubjectNotFoundError: no field was ever sealed for the subject.
            InvalidArgumentError: an empty subject, actor or reason.
        """
        for name, value in (("subject", subject), ("actor", actor), ("reason", reason)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidArgumentError(name, value, "must be a non-empty str")
        present = set(self.store.component_versions())
        components = [c for c in known_components() if c.name in present and c.on_stream_removal]
        sql = self._sql

        def work(tx: Transaction) -> Forgotten:
            rows = tx.fetch(sql.subject_keys, (subject,))
            if not rows:
                raise SubjectNotFoundError(subject)
            live = sorted(str(row[0]) for row in rows if row[1] is not None)
            if not live:
                return Forgotten(subject, (), (), None)
            statement = sql.streams_of.replace("{marks}", ", ".join([self._mark] * len(live)))
            streams = tuple(str(row[0]) for row in tx.fetch(statement, live))
            record = tx.append_record(
                REMOVALS_STREAM,
                NewEvent(
                    FORGOTTEN_EVENT_TYPE,
                    {
                        "subject": subject,
                        "keys": live,
                        "streams": list(streams),
                        "actor": actor,
                        "reason": reason,
                    },
                    metadata={"actor": actor},
                ),
            )
            when = now_micros()
            for key_id in live:
                tx.execute(sql.forget, (when, record.global_position, key_id))
            for stream in streams:
                for component in components:
                    for statement in component.on_stream_removal.get(tx.dialect, ()):
                        tx.execute(statement, (stream,))
            return Forgotten(subject, tuple(live), streams, record.global_position)

        forgotten = self.store.run_transaction(work)
        with self._lock:
            for key_id in forgotten.keys:
                self._cache.pop(key_id, None)
        return forgotten


def _without_personal(
    errors: Sequence[tuple[str, str]], payload: Mapping[str, object], fields: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Schema violations with every reason about a personal field, or that quotes a personal
    value, replaced by one that shows none."""
    values = [payload[field] for field in fields if payload.get(field) is not None]
    shown = {msgspec.json.encode(value).decode() for value in values}
    shown |= {str(value) for value in values if str(value)}
    hidden = "does not match its schema (a personal field: its value is not shown)"
    redacted: list[tuple[str, str]] = []
    for pointer, reason in errors:
        personal = any(pointer == f"/{f}" or pointer.startswith(f"/{f}/") for f in fields)
        if personal or any(text in reason for text in shown):
            reason = hidden
        redacted.append((pointer, reason))
    return redacted


def _with_id(event: NewEvent) -> NewEvent:
    return NewEvent(
        event.event_type,
        event.data,
        metadata=event.metadata,
        event_id=new_event_id(),
        schema_version=event.schema_version,
    )


def _open(secret: bytes, field: str, box: _Sealed) -> bytes:
    from cryptography.exceptions import InvalidTag

    from eventvault.errors import AuditMismatchError

    try:
        raw = base64.b64decode(box.ciphertext, validate=True)
        return _aesgcm(secret).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(field, box.key)
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise AuditMismatchError(
            f"the personal field {field!r} sealed with key {box.key} does not open with it: "
            "its ciphertext was changed, or moved from another field"
        ) from exc


def copy_subject_keys(source: EventStore, target: EventStore) -> int:
    """Copy the subjects' keys of one store into another (after `copy_events`), so that the
    copy reads the personal fields the source reads, and erases those it erases.

    Exports never carry keys: a backup restored from an export reads every sealed field as
    erased until its keys are copied from the live store.

    Returns:
        The number of keys copied (none when the source keeps no keys).

    Raises:
        MigrationRequiredError: the target's key tables are missing and it may not migrate.
    """
    if AUDIT_KEYS.name not in source.component_versions():
        return 0
    rows = source.query(_STATEMENTS[source.dialect].all_keys)
    if not rows:
        return 0
    target.use(AUDIT_KEYS)
    statement = _STATEMENTS[target.dialect].copy_key
    target.run_transaction(lambda tx: tx.execute_many(statement, [tuple(row) for row in rows]))
    return len(rows)
