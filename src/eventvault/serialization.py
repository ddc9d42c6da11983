"""Turning events into stored bytes and back, and the hash that chains them.

Every engine stores an event's `data` and `metadata` as the exact JSON bytes encoded here and
computes its hash with `event_hash`; the hash therefore survives a move between engines, and
`verify_chain` can check any sequence of stored events.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from eventvault._nesting import (
    MAX_NESTING_DEPTH,
    SHALLOW_BYTES,
    depth_over_limit,
    members,
    nesting_depth,
    object_depth,
    on_fresh_stack,
)
from eventvault.errors import (
    CorruptEventError,
    HashChainError,
    InvalidEventError,
    InvalidStreamNameError,
    PayloadTooDeepError,
    PayloadTooLargeError,
)
from eventvault.types import NewEvent, RawEvent, RecordedEvent

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "FORBIDDEN_NAME_CHARACTERS",
    "GENESIS_HASH",
    "MAX_NESTING_DEPTH",
    "MAX_SCHEMA_VERSION",
    "MAX_STREAM_NAME_LENGTH",
    "EncodedEvent",
    "canonical_json_problem",
    "decode_json_object",
    "encode_events",
    "event_hash",
    "from_micros",
    "nesting_depth",
    "new_event_id",
    "stored_payload",
    "to_micros",
    "validate_stream_name",
    "verify_chain",
]

MAX_STREAM_NAME_LENGTH: Final = 200
MAX_EVENT_TYPE_LENGTH: Final = 200
DEFAULT_MAX_EVENT_BYTES: Final = 1024 * 1024
MAX_POSITION: Final = 2**63 - 1
"""The largest global or stream position: a 64-bit signed integer on every engine."""
MAX_SCHEMA_VERSION: Final = 2**31 - 1
"""The largest schema version: it fits a 32-bit signed integer on every engine."""
GENESIS_HASH: Final = bytes(32)
"""The "previous hash" of a stream's first event."""

_HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
FORBIDDEN_NAME_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""What names (streams, event types) must not contain: control characters, and lone surrogates,
which a Python str may hold but UTF-8, and so no engine, cannot."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_Row = tuple[str, int, int, bytes, str, int, bytes, bytes, int, bytes]
"""An event as the engines read it (see `store._append.StoredRow`)."""
_EMPTY_OBJECT: Final = b"{}"
_encode = msgspec.json.encode
_decoder = msgspec.json.Decoder(dict[str, object])
_pack_header = struct.Struct(">QqIIIII").pack
_sha256 = hashlib.sha256
_time_ns = time.time_ns
_V7_VERSION: Final = 0x7 << 76
_V7_VARIANT: Final = 0b10 << 62


def validate_stream_name(stream_name: object) -> str:
    """Check a stream name against the rules of the data model.

    Args:
        stream_name: the value to check.

    Returns:
        The name, unchanged.

    Raises:
        InvalidStreamNameError: not a str, empty, over 200 characters, or has control characters
            or lone surrogates.
    """
    if type(stream_name) is not str:
        raise InvalidStreamNameError(
            stream_name, f"must be a str, not {type(stream_name).__name__}"
        )
    if not stream_name:
        raise InvalidStreamNameError(stream_name, "must not be empty")
    if len(stream_name) > MAX_STREAM_NAME_LENGTH:
        raise InvalidStreamNameError(
            stream_name[:40] + "...",
            f"is {len(stream_name)} characters, the limit is {MAX_STREAM_NAME_LENGTH}",
        )
    if FORBIDDEN_NAME_CHARACTERS.search(stream_name):
        raise InvalidStreamNameError(
            stream_name, "must not contain control characters or lone surrogates"
        )
    return stream_name


@dataclass(slots=True)
class EncodedEvent:
    """An event validated and encoded, ready to be given positions, a timestamp and a hash."""

    event_id: uuid.UUID
    id_given: bool
    event_type: str
    schema_version: int
    data: bytes
    metadata: bytes


def _non_finite(value: object, path: str) -> str | None:
    """The path of the first NaN or infinity in a payload, or None; walked without recursion,
    in the order the encoder writes it."""
    pending: list[tuple[object, str]] = [(value, path)]
    while pending:
        node, where = pending.pop()
        if type(node) is float:
            if not math.isfinite(node):
                return where
            continue
        found = members(node)
        if found is not None:
            pending.extend(reversed([(item, f"{where}[{key!r}]") for key, item in found]))
    return None


def _check_payload(value: object, encoded: bytes, what: str, index: int) -> None:
    """Refuse an encoded payload nested too deeply, or holding NaN or infinity.

    Called only for a payload long enough to be too deep, or holding "null".
    """
    depth = depth_over_limit(encoded)
    if depth is not None:
        raise PayloadTooDeepError(what, depth, MAX_NESTING_DEPTH, index=index)
    # JSON has no NaN or infinity: the encoder writes them as null, which would change the
    # payload silently. Only a payload whose encoding holds "null" can have one.
    if b"null" in encoded:
        found = _non_finite(value, what)
        if found is not None:
            raise InvalidEventError(
                f"{found} is NaN or infinite, which JSON cannot hold (store it as a string, "
                "or as null yourself)",
                index=index,
            )


def _encode_deep(value: object, what: str, index: int) -> bytes:
    """Encode a payload on which the encoder ran out of recursion: refuse it when it is too
    deep, else encode it on a fresh stack (the caller's was nearly used up)."""
    depth = object_depth(value)
    if depth > MAX_NESTING_DEPTH:
        raise PayloadTooDeepError(what, depth, MAX_NESTING_DEPTH, index=index)
    try:
        return on_fresh_stack(_encode, value)
    except RecursionError:
        # Nested deeper than the walk sees, through containers it does not know.
        raise InvalidEventError(
            f"{what} nests objects and arrays too deeply to encode, over the limit of "
            f"{MAX_NESTING_DEPTH} levels",
            index=index,
        ) from None


def _encode_object(value: object, what: str, index: int) -> bytes:
    if type(value) is dict or isinstance(value, msgspec.Struct):
        try:
            encoded = _encode(value)
        except RecursionError:
            encoded = _encode_deep(value, what, index)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidEventError(
                f"{what} cannot be encoded as JSON: {exc}", index=index
            ) from exc
        if type(value) is not dict and encoded[:1] != b"{":
            raise InvalidEventError(
                f"{what} must encode to a JSON object, {type(value).__name__} encodes to "
                f"{encoded[:20]!r}",
                index=index,
            )
        if len(encoded) >= SHALLOW_BYTES or b"null" in encoded:
            _check_payload(value, encoded, what, index)
        return encoded
    if isinstance(value, dict):
        return _encode_object(dict(value), what, index)
    raise InvalidEventError(
        f"{what} must be a JSON object (a dict), not {type(value).__name__}", index=index
    )


def _type_and_version_problem(event_type: object, version: object) -> str | None:
    """What is wrong with an event's type name or schema version, or None."""
    if (
        type(event_type) is not str
        or not event_type
        or len(event_type) > MAX_EVENT_TYPE_LENGTH
        or FORBIDDEN_NAME_CHARACTERS.search(event_type)
    ):
        shown = event_type
        if isinstance(event_type, str) and len(event_type) > 60:
            shown = f"{event_type[:40]}... ({len(event_type)} characters)"
        return (
            f"event_type must be a non-empty str of at most {MAX_EVENT_TYPE_LENGTH} "
            f"characters without control characters or lone surrogates, not {shown!r}"
        )
    if type(version) is not int or not 1 <= version <= MAX_SCHEMA_VERSION:
        return f"schema_version must be an int from 1 to {MAX_SCHEMA_VERSION}, not {version!r}"
    return None


def encode_events(events: Sequence[NewEvent], max_event_bytes: int) -> list[EncodedEvent]:
    """Validate and encode the events of one append.

    Args:
        events: the events, in order.
        max_event_bytes: the limit on one event's encoded data plus metadata.

    Returns:
        One `EncodedEvent` per event, in order.

    Raises:
        InvalidEventError: an event is not a `NewEvent`, has a bad type name or schema version,
            or its data or metadata is not a JSON object or cannot be encoded. Nothing is kept.
        PayloadTooLargeError: an event's encoded data and metadata exceed `max_event_bytes`.
    """
    if isinstance(events, (str, bytes, NewEvent)) or not isinstance(events, Sequence):
        raise InvalidEventError(f"events must be a list of NewEvent, not {type(events).__name__}")
    if not events:
        raise InvalidEventError("an append needs at least one event")
    encoded: list[EncodedEvent] = []
    for index, event in enumerate(events):
        if type(event) is not NewEvent:
            raise InvalidEventError(f"must be a NewEvent, not {type(event).__name__}", index=index)
        event_type = event.event_type
        version = event.schema_version
        problem = _type_and_version_problem(event_type, version)
        if problem is not None:
            raise InvalidEventError(problem, index=index)
        data = _encode_object(event.data, "data", index)
        meta = event.metadata
        metadata = _EMPTY_OBJECT if not meta else _encode_object(meta, "metadata", index)
        size = len(data) + len(metadata)
        if size > max_event_bytes:
            raise PayloadTooLargeError(size, max_event_bytes, index=index)
        event_id = event.event_id
        if event_id is None:
            encoded.append(EncodedEvent(new_event_id(), False, event_type, version, data, metadata))
        elif type(event_id) is uuid.UUID:
            encoded.append(EncodedEvent(event_id, True, event_type, version, data, metadata))
        else:
            raise InvalidEventError(
                f"event_id must be a uuid.UUID or None, not {type(event_id).__name__}",
                index=index,
            )
    return encoded


def event_hash(
    previous: bytes,
    stream_name: str,
    stream_position: int,
    event_id: bytes,
    event_type: str,
    schema_version: int,
    recorded_at_us: int,
    data: bytes,
    metadata: bytes,
) -> bytes:
    """The SHA-256 of one stored event, chained to the previous event of its stream.

    The input is the previous hash, a fixed header (stream position, timestamp in microseconds,
    schema version and the lengths of the variable fields), then the stream name, event id,
    event type, data and metadata bytes. Lengths make the framing unambiguous.

    Args:
        previous: the hash of the previous event in the stream (`GENESIS_HASH` for the first).
        stream_name: the event's stream.
        stream_position: its position in the stream.
        event_id: its id, as 16 bytes.
        event_type: its type name.
        schema_version: its schema version.
        recorded_at_us: its timestamp, in microseconds since the Unix epoch.
        data: the stored JSON bytes of the payload.
        metadata: the stored JSON bytes of the metadata.

    Returns:
        The 32-byte digest.
    """
    name = stream_name.encode()
    etype = event_type.encode()
    header = _pack_header(
        stream_position,
        recorded_at_us,
        schema_version,
        len(name),
        len(etype),
        len(data),
        len(metadata),
    )
    return hashlib.sha256(
        b"".join((previous, header, name, event_id, etype, data, metadata))
    ).digest()


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of microseconds since the Unix epoch."""
    # Positional: parsing the keyword costs a quarter of the call, twice per snapshot load.
    return _EPOCH + timedelta(0, 0, micros)


def now_micros() -> int:
    """The current time in microseconds since the Unix epoch."""
    return _time_ns() // 1000


def decode_json_object(raw: bytes) -> dict[str, object]:
    """Decode stored JSON bytes of a data or metadata object."""
    return _decoder.decode(raw)


def raw_event_hash(event: RawEvent, previous: bytes) -> bytes:
    """Recompute the hash of a `RawEvent` given the previous hash of its stream."""
    return _hash_of(event, previous, bytes(event.data), bytes(event.metadata))


def _hash_of(
    event: RawEvent | RecordedEvent, previous: bytes, data: bytes, metadata: bytes
) -> bytes:
    return event_hash(
        previous,
        event.stream_name,
        event.stream_position,
        event.event_id.bytes,
        event.event_type,
        event.schema_version,
        to_micros(event.recorded_at),
        data,
        metadata,
    )


def stored_payload(event: RawEvent | RecordedEvent) -> tuple[bytes, bytes]:
    """The JSON bytes of an event's data and metadata as its store holds them: what its hash
    covers.

    A `RawEvent` carries those bytes. A `RecordedEvent` carries them decoded, and encoding them
    again gives the same bytes: every payload a store holds is in the canonical form msgspec
    writes, since appends encode it so and `import_events` refuses any other (see
    `canonical_json_problem`). The one exception is a payload that embedded `msgspec.Raw`
    bytes of another form in an append; `export_events` gives the exact bytes of any event.

    Args:
        event: an event read from a store.

    Returns:
        (data, metadata); two empty byte strings for a removed event whose payload was erased
        (`RawEvent.erased`), which is all the store keeps of them.

    Raises:
        TypeError: `event` is neither a `RawEvent` nor a `RecordedEvent`.
    """
    if type(event) is RawEvent:
        data = bytes(event.data)
        if event.removed_by is not None and data == b"null":
            return b"", b""
        return data, bytes(event.metadata)
    if isinstance(event, RecordedEvent):
        return _encode(event.data), _encode(event.metadata)
    raise TypeError(
        "expected an event read from a store: a RecordedEvent (from read_stream or read_all) "
        f"or a RawEvent (from export_events), not a {type(event).__name__}: {event!r:.80}"
    )


def canonical_json_problem(raw: bytes) -> str | None:
    """What keeps the stored bytes of a data or metadata object from the canonical form, or None.

    The canonical form is what an append stores: msgspec's compact JSON of the decoded object.
    A store holds nothing else, so that a read event, encoded again, gives back the bytes its
    hash covers (`stored_payload`). Other bytes can only come from a hand-made import file.

    Args:
        raw: JSON bytes of an object.

    Returns:
        None when `raw` is canonical, else what is wrong, showing where it differs; also when
        it nests objects and arrays deeper than `MAX_NESTING_DEPTH`, which appends refuse so
        that every reader can decode every event (checked first, without recursion).
    """
    depth = depth_over_limit(raw)
    if depth is not None:
        return (
            f"nests objects and arrays {depth} levels deep, over the limit of "
            f"{MAX_NESTING_DEPTH} levels that appends accept"
        )
    try:
        canonical = _encode(_decoder.decode(raw))
    except msgspec.DecodeError as exc:
        return f"is not a JSON object eventvault can read: {exc}"
    if canonical == raw:
        return None
    at = next(
        (i for i, (a, b) in enumerate(zip(raw, canonical, strict=False)) if a != b),
        min(len(raw), len(canonical)),
    )
    start = max(0, at - 10)
    return (
        f"is not in the canonical form an append writes (msgspec's compact JSON: no spaces, "
        f"each key once, no needless escapes): from byte {at} it reads {raw[start : at + 10]!r}, "
        f"canonically {canonical[start : at + 10]!r}"
    )


class ChainVerifier:
    """Checks a sequence of events in global order: positions and every hash.

    The events are `RawEvent`s (from `export_events`) or `RecordedEvent`s (from `read_all`, or
    `read_stream` for one stream), whose payload is encoded again (see `stored_payload`).
    Memory grows with the number of streams, not the number of events.

    A removed event (`RawEvent.removed_by`) whose payload was erased cannot be hashed again: its
    stored hash is taken as the link its stream's next event chains to, which the next event's
    hash then confirms. Removals cover a prefix of a stream, so a removed event after one that
    is not is refused.

    Args:
        partial: the events are the tail of a log (an export with `after` > 0): the first
            event seen of each stream is taken as it is, since the hash it chains to came
            earlier; every later one is checked.
    """

    def __init__(self, *, partial: bool = False) -> None:
        # Per stream: its last position, its last hash, whether an event readers see came yet
        # (after which no removed event may follow), and its name's UTF-8.
        self._heads: dict[str, tuple[int, bytes, bool, bytes]] = {}
        self._last_global = 0
        self._partial = partial
        self.count = 0
        # What was checked once need not be again: the (type, version) pairs seen (with the
        # type's UTF-8), and the last timestamp (consecutive events of one commit share the
        # datetime object). Each head also keeps its stream name's UTF-8.
        self._known_types: dict[tuple[str, int], bytes] = {}
        self._moment: datetime | None = None
        self._micros = 0
        self.last_hash = GENESIS_HASH
        """The hash of the last event checked, as bytes."""

    def check(self, event: RawEvent | RecordedEvent) -> tuple[bytes, bytes]:
        """Check the next event.

        Returns:
            Its stored data and metadata bytes (`stored_payload`). Its hash, as bytes, is then
            `last_hash`.

        Raises:
            HashChainError: its hash does not match its bytes and the previous hash.
            CorruptEventError: its global position does not increase (or is past the largest a
                store holds), its stream position is not the next one of its stream, or a
                field has a value no append could have stored; the error names the event (also
                a `ValueError`).
            TypeError: it is neither a `RawEvent` nor a `RecordedEvent`.
        """
        if isinstance(event, RawEvent):
            # `stored_payload`, inline: the hot path of export, import and verify.
            data = bytes(event.data)
            removed_by = event.removed_by
            if removed_by is not None and data == b"null":
                data = metadata = b""
            else:
                metadata = bytes(event.metadata)
        else:
            data, metadata = stored_payload(event)
            removed_by = None
        position = event.global_position
        if position <= self._last_global:
            raise _corrupt(event, f"global position {position} does not follow {self._last_global}")
        if position > MAX_POSITION:
            raise _corrupt(event, f"global position {position} is past the largest, {MAX_POSITION}")
        kind = (event.event_type, event.schema_version)
        encoded_type = self._known_types.get(kind)
        if encoded_type is None:
            problem = _type_and_version_problem(*kind)
            if problem is not None:
                raise _corrupt(event, problem)
            encoded_type = self._known_types[kind] = kind[0].encode()
        name = event.stream_name
        head = self._heads.get(name)
        if head is None:  # a stream's name is checked when it is first seen
            try:
                validate_stream_name(name)
            except InvalidStreamNameError as exc:
                raise _corrupt(event, str(exc)) from exc
            encoded_name = name.encode()
        else:
            encoded_name = head[3]
        moment = event.recorded_at
        if moment is not self._moment:
            if moment.tzinfo is None:
                raise _corrupt(event, f"recorded_at {moment} has no time zone")
            self._moment, self._micros = moment, to_micros(moment)
        erased = removed_by is not None and not data
        if removed_by is not None and removed_by <= position:
            raise _corrupt(
                event,
                f"removed by the record at global position {removed_by}, which does not follow "
                "the event",
            )
        if not erased and (data[:1] != b"{" or metadata[:1] != b"{"):
            which = "data" if data[:1] != b"{" else "metadata"
            raise _corrupt(event, f"{which} is not a JSON object")
        stream_position = event.stream_position
        if head is None:
            next_position = stream_position if self._partial else 0
            previous: bytes | None = None if self._partial else GENESIS_HASH
            seen_live = False
        else:
            next_position, previous, seen_live = head[0] + 1, head[1], head[2]
        if stream_position != next_position:
            if head is None:
                raise _corrupt(
                    event,
                    f"the stream starts at position {stream_position}, not 0: this is part of a "
                    "log (exported from a later position), which cannot be imported on its own",
                )
            raise _corrupt(event, f"position {stream_position} where {next_position} was due")
        if removed_by is not None and seen_live:
            raise _corrupt(
                event,
                "removed, after an event of its stream that is not: removals take the first "
                "events of a stream",
            )
        if erased or previous is None:
            if not _HEX_DIGEST.fullmatch(event.hash):
                raise _corrupt(
                    event, f"hash {event.hash!r:.80} is not 64 lowercase hexadecimal digits"
                )
            digest = bytes.fromhex(event.hash)
        else:
            # `event_hash`, with the stream name and type encoded once per stream and type.
            header = _pack_header(
                stream_position,
                self._micros,
                kind[1],
                len(encoded_name),
                len(encoded_type),
                len(data),
                len(metadata),
            )
            digest = _sha256(
                b"".join(
                    (
                        previous,
                        header,
                        encoded_name,
                        event.event_id.bytes,
                        encoded_type,
                        data,
                        metadata,
                    )
                )
            ).digest()
            if digest.hex() != event.hash:
                raise HashChainError(name, stream_position, digest.hex(), event.hash)
        self._heads[name] = (stream_position, digest, seen_live or removed_by is None, encoded_name)
        self._last_global = position
        self.last_hash = digest
        self.count += 1
        return data, metadata


def _corrupt(event: RawEvent | RecordedEvent, reason: str) -> CorruptEventError:
    return CorruptEventError(
        event.stream_name,
        event.stream_position,
        reason,
        global_position=event.global_position,
        event_id=event.event_id,
    )


def verify_chain(events: Iterable[RawEvent | RecordedEvent]) -> int:
    """Verify positions and hashes of events given in global order.

    ::

        verify_chain(store.read_stream("account-42"))  # one stream, from its first event
        verify_chain(store.read_all())                 # the whole log
        verify_chain(store.export_events())            # the whole log, its exact stored bytes

    Args:
        events: events from the start of each of their streams, in global order: one stream
            read forwards from position 0, or the log from its start without filters.
            `RecordedEvent`s are checked by encoding their payload again (see
            `stored_payload`); `RawEvent`s by their stored bytes.

    Returns:
        The number of events checked.

    Raises:
        HashChainError: an event's hash does not match.
        CorruptEventError: positions are out of order or have gaps within a stream, a stream
            does not start at position 0, or a field holds a value no append could have stored
            (also a `ValueError`).
        TypeError: `events` is not an iterable of `RecordedEvent` or `RawEvent`; the message
            says what to pass.
    """
    if isinstance(events, (RawEvent, RecordedEvent)) or not isinstance(events, Iterable):
        raise TypeError(
            "verify_chain takes an iterable of events read from a store, such as "
            "store.read_stream(name), store.read_all() or store.export_events(), not "
            f"{type(events).__name__}"
        )
    verifier = ChainVerifier()
    for event in events:
        verifier.check(event)
    return verifier.count


_new_object = object.__new__
_set_attribute = object.__setattr__
_UUID = uuid.UUID
_SAFE_UNKNOWN = uuid.SafeUUID.unknown
_from_bytes = int.from_bytes


def uuid_from_bytes(raw: bytes) -> uuid.UUID:
    """A UUID from its 16 stored bytes, without the argument checks of `uuid.UUID()`.

    The bytes come from the store, which only ever stored 16-byte ids.
    """
    value = _new_object(_UUID)
    _set_attribute(value, "int", _from_bytes(raw))
    _set_attribute(value, "is_safe", _SAFE_UNKNOWN)
    return value


def _decode_rows(rows: Sequence[_Row]) -> list[RecordedEvent]:
    decode = _decoder.decode
    recorded = RecordedEvent
    make_uuid = uuid_from_bytes
    epoch = _EPOCH
    delta = timedelta
    events: list[RecordedEvent] = []
    add = events.append
    micros = -1
    when = epoch
    # The hot loop of every read indexes rows by literal position, the `StoredRow` column order
    # (stream_name 0, stream_position 1, global_position 2, event_id 3, event_type 4,
    # schema_version 5, data 6, metadata 7, recorded_at 8, hash 9): faster than unpacking, and
    # PostgreSQL's reads carry one more column (whether the row is deliverable).
    try:
        for row in rows:
            if row[8] != micros:
                micros = row[8]
                when = epoch + delta(microseconds=micros)
            add(
                recorded(
                    row[0],
                    row[1],
                    row[2],
                    make_uuid(row[3]),
                    row[4],
                    row[5],
                    decode(row[6]),
                    decode(row[7]),
                    when,
                    row[9].hex(),
                )
            )
    except msgspec.DecodeError as exc:
        row = rows[len(events)]
        raise CorruptEventError(
            row[0],
            row[1],
            f"the stored data or metadata is not a JSON object ({exc})",
            global_position=row[2],
        ) from exc
    return events


def decode_rows(rows: Sequence[_Row]) -> list[RecordedEvent]:
    """Turn stored rows into `RecordedEvent`: the hot loop of every read.

    Events committed together share their `recorded_at`, and a `datetime` is immutable, so
    consecutive rows with the same timestamp share one object: building it is the costliest
    step of a row after its payload.

    Raises:
        CorruptEventError: a row's data or metadata does not decode to a JSON object, or nests
            deeper than this Python can decode (possible only for events stored before appends
            refused payloads nested beyond `MAX_NESTING_DEPTH`); it names the stream and
            position.
    """
    try:
        return _decode_rows(rows)
    except RecursionError:
        pass
    # The caller's stack was nearly used up (see _nesting.on_fresh_stack).
    try:
        return on_fresh_stack(_decode_rows, rows)
    except RecursionError:
        row = max(rows, key=lambda row: max(nesting_depth(row[6]), nesting_depth(row[7])))
        depth = max(nesting_depth(row[6]), nesting_depth(row[7]))
        raise CorruptEventError(
            row[0],
            row[1],
            f"its data or metadata nests objects and arrays {depth} levels deep, deeper than "
            f"this Python can decode (appends refuse more than {MAX_NESTING_DEPTH} levels)",
            global_position=row[2],
        ) from None


_NULL: Final = msgspec.Raw(b"null")


def _blob(value: bytes | str | memoryview) -> bytes:
    """Stored bytes as bytes: a column changed behind the store's back may hold text."""
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def raw_rows(rows: Iterable[Sequence[Any]], removed_at: int | None = None) -> list[RawEvent]:
    """Turn stored rows into `RawEvent`, keeping the stored bytes: the hot loop of export.

    Consecutive rows with the same timestamp share one `datetime` (see `decode_rows`).

    Args:
        rows: rows in `StoredRow` column order.
        removed_at: the column that holds `removed_by`, if the rows have one. An erased
            payload (stored as empty bytes) becomes JSON `null`.
    """
    events: list[RawEvent] = []
    add = events.append
    raw = msgspec.Raw
    null = _NULL
    make_uuid = uuid_from_bytes
    epoch = _EPOCH
    delta = timedelta
    micros = -1
    when = epoch
    for row in rows:
        if row[8] != micros:
            micros = row[8]
            when = epoch + delta(microseconds=micros)
        data, metadata = row[6], row[7]
        if type(data) is not bytes or type(metadata) is not bytes:
            data, metadata = _blob(data), _blob(metadata)
        removed_by = None if removed_at is None else row[removed_at]
        add(
            RawEvent(
                row[2],
                row[0],
                row[1],
                make_uuid(row[3]),
                row[4],
                row[5],
                raw(data) if data else null,
                raw(metadata) if metadata else null,
                when,
                row[9].hex(),
                None if removed_by is None else int(removed_by),
            )
        )
    return events


def new_event_id() -> uuid.UUID:
    """A new event id: a time-ordered UUID (version 7, RFC 9562).

    48 bits of Unix milliseconds, 12 bits of the sub-millisecond fraction, 62 random bits. Ids
    made one after another sort together, so the unique index on `event_id` grows at its right
    edge: a commit dirties one or two of its pages instead of one random page per event, which
    halves the cost of a small group commit in a large store. The time it reveals is the
    event's `recorded_at`, give or take a commit.
    """
    ms, sub = divmod(_time_ns(), 1_000_000)
    value = _new_object(_UUID)
    _set_attribute(
        value,
        "int",
        (ms << 80)
        | _V7_VERSION
        | ((sub * 4096 // 1_000_000) << 64)
        | _V7_VARIANT
        | (_random_word() >> 2),
    )
    _set_attribute(value, "is_safe", _SAFE_UNKNOWN)
    return value


_RANDOM_WORDS: Final = 512
_words: Iterator[tuple[int]] = iter(())


def _random_word() -> int:
    """64 bits from the operating system's CSPRNG, drawn 512 words per call of `os.urandom`.

    `os.urandom` lets go of the interpreter lock for its system call, and an event loop that
    lets go of it once per event (the server's, making the ids of the events it receives) waits
    each time for the thread committing the previous batch to hand it back. Taking a word is
    one `next` of a C iterator, which two threads cannot interleave: no word is used twice.
    """
    global _words
    try:
        return next(_words)[0]
    except StopIteration:
        _words = struct.iter_unpack("<Q", os.urandom(8 * _RANDOM_WORDS))
        return next(_words)[0]


def _forget_words() -> None:
    # A forked child must never make the ids its parent will make from the same words.
    global _words
    _words = iter(())


if hasattr(os, "register_at_fork"):  # POSIX: there is no fork() elsewhere
    os.register_at_fork(after_in_child=_forget_words)
