"""Export files: a store's log and schema registry as JSON Lines that prove themselves whole
(format 3).

A file is a header line, one line per change of the store's schema registry (its whole history,
so an import rebuilds the same registry), one line per event, and a closing line. Each event line is a `RawEvent`
(ids, positions, time, hash, and data and metadata as the exact stored bytes, so every hash still
verifies in another store). The header says which part of which log the file holds: the events
after `after` up to `head`, the source's head when the export began. The closing line counts the
events and registry changes, names the first and last global positions, and holds the SHA-256
of every byte before it. An export interrupted at any point has no closing line; a file with lines removed, added,
changed or reordered fails the count, the positions or the digest. `read_export` refuses both at
the end of the events, so an import that consumes it rolls back. docs/export-format.md is the
specification.

Files of format 2 (the same without registry lines) are read as they are. Files of format 1
(eventvault 0.1: event lines only) cannot prove themselves whole; they are read only when the
caller says what they must hold (`expect_head`, `expect_count`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, BinaryIO, Final, Literal, Self

import msgspec

from eventvault.errors import (
    ExportFormatError,
    HashChainError,
    ImportFileError,
    IncompleteExportError,
    InvalidArgumentError,
    UnverifiableExportError,
)
from eventvault.schema.state import RegistryChange
from eventvault.schema.transfer import (
    check_history,
    check_registry_empty,
    import_registry,
    registry_history,
)
from eventvault.serialization import MAX_NESTING_DEPTH, nesting_depth
from eventvault.store.base import EventStore
from eventvault.types import RawEvent

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ExportEnd",
    "ExportHeader",
    "ExportReader",
    "ExportSummary",
    "copy_events",
    "load_export",
    "read_export",
    "write_export",
]

FORMAT_NAME: Final = "eventvault-export"
"""The `format` of an export file's header."""
FORMAT_VERSION: Final = 3
"""The format version this module writes; it reads this one, format 2 and format 1."""
FIRST_HEADED_FORMAT: Final = 2
"""The first format version with a header and a closing record."""
PROGRESS_EVERY: Final = 1000
"""Events between two calls of an `on_progress` callback."""

Progress = Callable[[int, int], None]
"""A progress callback: called with a number of events and a position (see each function)."""

_Position = Annotated[int, msgspec.Meta(ge=0)]
_Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class ExportHeader(msgspec.Struct, frozen=True, kw_only=True, tag_field="record", tag="header"):
    """The first line of an export file: what the file holds.

    Attributes:
        format: always `eventvault-export`.
        format_version: the format version (3; 2 for files without registry lines).
        eventvault_version: the version of eventvault that wrote the file (informative).
        after: the file holds the events after this global position (0: the whole log).
        head: the source's head position when the export began: the file holds every event
            after `after` up to and including `head`, and no later one.
        created_at: when the export began (UTC).
    """

    format: str
    format_version: int
    eventvault_version: str
    after: _Position
    head: _Position
    created_at: datetime


class ExportEnd(msgspec.Struct, frozen=True, kw_only=True, tag_field="record", tag="end"):
    """The closing line of an export file: the proof that nothing before it is missing.

    Attributes:
        event_count: the number of event lines.
        first_position: the global position of the first event, None when there is none.
        last_position: the global position of the last event, None when there is none.
        sha256: the SHA-256, in lowercase hex, of every byte of the file before this line.
        registry_changes: the number of registry change lines (format 3; 0 in format 2).
    """

    event_count: _Position
    first_position: _Position | None
    last_position: _Position | None
    sha256: _Digest
    registry_changes: _Position = 0


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What `write_export` wrote.

    Attributes:
        header: the file's first line.
        end: the file's closing line.
    """

    header: ExportHeader
    end: ExportEnd


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(RawEvent)
_record_decoder: msgspec.json.Decoder[ExportHeader | ExportEnd | RegistryChange] = (
    msgspec.json.Decoder(ExportHeader | ExportEnd | RegistryChange)
)


def _eventvault_version() -> str:
    # Imported when called: the package's __init__ may import this module before it defines
    # __version__, the one place the version is written (`eventvault --version` prints it).
    from eventvault import __version__

    return __version__


class _FormatProbe(msgspec.Struct):
    """The two fields of a header that every format version keeps."""

    format: str
    format_version: int


_probe_decoder = msgspec.json.Decoder(_FormatProbe)


def _check_newer_format(line: bytes) -> None:
    """Raise `ExportFormatError` when a first line that is not a header this module knows is the
    header of a newer format version."""
    try:
        probe = _probe_decoder.decode(line)
    except msgspec.DecodeError:
        return
    if probe.format == FORMAT_NAME and probe.format_version > FORMAT_VERSION:
        raise ExportFormatError(
            f"export format version {probe.format_version}; this eventvault reads versions 1 "
            f"to {FORMAT_VERSION}",
            found=probe.format_version,
            supported=FORMAT_VERSION,
        )


def _check_expectation(name: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise InvalidArgumentError(name, value, f"must be an int >= 0 or None, not {value!r}")


def _log_until_head(
    store: EventStore, after: int, what: Literal["export", "copy"]
) -> tuple[int, Iterator[RawEvent]]:
    """The store's head now, and its events after `after` up to that head.

    The iterator raises `IncompleteExportError` after its last event when the events do not end
    exactly at the head: events the head promised were not there to read.
    """
    head = store.head_position()
    events = store.export_events(after=after, until=head)

    def ending_at_head() -> Iterator[RawEvent]:
        last = after
        for event in events:
            last = event.global_position
            yield event
        if head > after and last != head:
            raise IncompleteExportError(
                f"the source's events end at global position {last}, short of its head {head} "
                f"when the {what} began: events were removed from the source during the {what}"
            )

    return head, ending_at_head()


def write_export(
    store: EventStore,
    out: BinaryIO,
    *,
    after: int = 0,
    on_progress: Progress | None = None,
) -> ExportSummary:
    """Write a store's log and schema registry to a binary stream as an export file (format 3).

    The registry's whole history comes first (it is small, and read when the export begins);
    then the events. The export is bounded by the store's head when it begins: events appended while it runs are
    not half-included, they are for the next export. The closing record is written last, so a
    file cut short at any point (a killed process, a full disk, a pipe that stopped) is refused
    by `read_export`.

    Args:
        store: the store to export.
        out: where to write (a file opened `wb`, stdout's buffer); only `write` is called, and
            flushing, syncing and closing are the caller's.
        after: export only the events after this global position (0: the whole log). A later
            position gives the tail of the log, for inspection or incremental archives; an
            import takes whole logs only.
        on_progress: called with the number of events written and the global position of the
            last one, every 1,000 events and once at the end.

    Returns:
        The header and closing record written.

    Raises:
        InvalidArgumentError: `after` is not an int >= 0 (nothing is written).
        IncompleteExportError: the store's events did not reach the head it had when the export
            began; no closing record was written.
        OSError: `out` cannot be written.
        StorageError: the store failed while being read.
    """
    head, events = _log_until_head(store, after, "export")
    header = ExportHeader(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        eventvault_version=_eventvault_version(),
        after=after,
        head=head,
        created_at=datetime.now(UTC),
    )
    digest = hashlib.sha256()
    encode = _encoder.encode

    def write(line: bytes) -> None:
        digest.update(line)
        out.write(line)

    write(encode(header) + b"\n")
    changes = registry_history(store)
    for change in changes:
        write(encode(change) + b"\n")
    count = 0
    first: int | None = None
    last: int | None = None
    for event in events:
        write(encode(event) + b"\n")
        count += 1
        last = event.global_position
        if first is None:
            first = last
        if on_progress is not None and count % PROGRESS_EVERY == 0:
            on_progress(count, last)
    end = ExportEnd(
        event_count=count,
        first_position=first,
        last_position=last,
        sha256=digest.hexdigest(),
        registry_changes=len(changes),
    )
    out.write(encode(end) + b"\n")
    if on_progress is not None:
        on_progress(count, after if last is None else last)
    return ExportSummary(header, end)


class ExportReader:
    """The events of an export file, decoded lazily, raising at the end unless the file is whole.

    Returned by `read_export`; iterate it once. Each line is decoded and checked as it is read
    and the file's digest computed on the way; the closing record is checked against everything
    before it. When the file cannot be proven whole, the iterator raises after its last event,
    so a store's `import_events` consuming it rolls back and stores nothing.

    Attributes:
        line: the 1-based number of the last line read (0 before the first).
        offset: the bytes read so far.
        event_count: the events yielded so far.
        header: the file's header; None for a file of format 1, or before the first line.
        registry_changes: the registry changes read so far (they precede the events).
        last_position: the global position of the last event yielded, None before the first.
    """

    def __init__(
        self,
        lines: Iterable[bytes],
        *,
        expect_head: int | None = None,
        expect_count: int | None = None,
    ) -> None:
        _check_expectation("expect_head", expect_head)
        _check_expectation("expect_count", expect_count)
        self.line = 0
        self.offset = 0
        self.event_count = 0
        self.header: ExportHeader | None = None
        self.registry_changes: list[RegistryChange] = []
        self.last_position: int | None = None
        self._first_position: int | None = None
        self._expect_head = expect_head
        self._expect_count = expect_count
        self._events = self._read(lines)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> RawEvent:
        return next(self._events)

    # -- reading -----------------------------------------------------------------------------

    def _read(self, lines: Iterable[bytes]) -> Iterator[RawEvent]:
        digest = hashlib.sha256()
        end_line = 0
        for number, line in enumerate(lines, start=1):
            if number == 1 and not isinstance(line, bytes):
                raise InvalidArgumentError(
                    "lines",
                    line,
                    f"must be bytes (a file opened 'rb'), not {type(line).__name__}: the digest "
                    "covers a file's exact bytes",
                )
            self.line = number
            self.offset += len(line)
            if end_line:
                raise IncompleteExportError(
                    f"something follows the closing record of line {end_line}: an export ends "
                    "with its closing record (were two exports joined, or lines added?)",
                    line=number,
                )
            if not line.strip():
                # Format 1 allowed blank lines; in format 2 the digest covers them, so one that
                # was added fails the digest.
                digest.update(line)
                continue
            record = self._decode(line, number)
            if isinstance(record, RawEvent):
                digest.update(line)
                self._take(record, number)
                yield record
            elif isinstance(record, ExportHeader):
                self._check_header(record, number)
                self.header = record
                digest.update(line)
            elif isinstance(record, RegistryChange):
                self._take_change(record, number)
                digest.update(line)
            else:
                self._check_end(record, number, digest.hexdigest())
                end_line = number
        self._check_complete(end_line)

    def _take_change(self, change: RegistryChange, number: int) -> None:
        header = self.header
        if header is None or header.format_version < FORMAT_VERSION:
            raise ImportFileError(
                "a registry change in a file without registry lines (format 1 or 2)", line=number
            )
        if self.event_count:
            raise ImportFileError(
                "a registry change after the events: the registry's history comes first",
                line=number,
            )
        expected = len(self.registry_changes) + 1
        if change.change_id != expected:
            raise IncompleteExportError(
                f"registry change {change.change_id} where change {expected} belongs: lines "
                "were removed, added or reordered",
                line=number,
            )
        self.registry_changes.append(change)

    def _decode(
        self, line: bytes, number: int
    ) -> RawEvent | ExportHeader | ExportEnd | RegistryChange:
        try:
            return _event_decoder.decode(line)
        except msgspec.ValidationError as exc:
            try:
                return _record_decoder.decode(line)
            except msgspec.DecodeError:
                if number == 1:
                    _check_newer_format(line)
                raise ImportFileError(f"not an exported event: {exc}", line=number) from None
        except msgspec.DecodeError as exc:
            if not line.endswith(b"\n"):
                raise self._cut_short(f"in the middle of line {number}") from None
            raise ImportFileError(f"not valid JSON: {exc}", line=number) from None
        except RecursionError:
            # The line holds the event's object around its data and metadata: one level more.
            raise ImportFileError(
                f"data or metadata nests objects and arrays {nesting_depth(line) - 1} levels "
                f"deep, over the limit of {MAX_NESTING_DEPTH} levels that appends accept",
                line=number,
            ) from None

    def _take(self, event: RawEvent, number: int) -> None:
        if self.header is None and self.event_count == 0:
            self._check_format_1(number)
        if event.recorded_at.tzinfo is None:
            raise ImportFileError("recorded_at has no time zone", line=number)
        for name, raw in (("data", event.data), ("metadata", event.metadata)):
            if not bytes(raw).startswith(b"{"):
                raise ImportFileError(f"{name} is not a JSON object", line=number)
        position = event.global_position
        header = self.header
        if header is not None and not header.after < position <= header.head:
            raise IncompleteExportError(
                f"the event at global position {position} is outside the export, which holds "
                f"the events after {header.after} up to the head {header.head}",
                line=number,
            )
        if self._first_position is None:
            self._first_position = position
        self.last_position = position
        self.event_count += 1

    # -- checks ------------------------------------------------------------------------------

    def _check_format_1(self, number: int) -> None:
        if self._expect_head is None and self._expect_count is None:
            raise UnverifiableExportError(
                "the file has no header: it is an export of format 1 (eventvault 0.1), which "
                "has no closing record and so cannot show that it is whole; to import it, state "
                "the source's head position or number of events (expect_head, expect_count) "
                "and the file must match them exactly",
                line=number,
            )

    def _check_header(self, header: ExportHeader, number: int) -> None:
        if self.header is not None:
            raise IncompleteExportError(
                "a second header (the first is on line 1): two exports were joined", line=number
            )
        if number != 1:
            raise IncompleteExportError(
                "a header after the first line: lines were added before it, or two exports "
                "were joined",
                line=number,
            )
        if header.format != FORMAT_NAME:
            raise ExportFormatError(
                f"not an eventvault export: the header names the format {header.format!r}",
                found=None,
                supported=FORMAT_VERSION,
            )
        if header.format_version > FORMAT_VERSION:
            raise ExportFormatError(
                f"export format version {header.format_version} (written by eventvault "
                f"{header.eventvault_version}); this eventvault reads versions 1 to "
                f"{FORMAT_VERSION}",
                found=header.format_version,
                supported=FORMAT_VERSION,
            )
        if header.format_version < FIRST_HEADED_FORMAT:
            raise ExportFormatError(
                f"the header gives format version {header.format_version}, which has no "
                "header (format 1 files are event lines only)",
                found=header.format_version,
                supported=FORMAT_VERSION,
            )

    def _check_end(self, end: ExportEnd, number: int, digest: str) -> None:
        header = self.header
        if header is None:
            raise IncompleteExportError(
                "a closing record without a header: the lines before it are not one export",
                line=number,
            )
        count = self.event_count
        if end.event_count != count:
            raise IncompleteExportError(
                f"the closing record counts {end.event_count} events, the file holds {count}: "
                "lines were removed or added",
                line=number,
            )
        first, last = self._first_position, self.last_position
        if (end.first_position, end.last_position) != (first, last):
            raise IncompleteExportError(
                f"the closing record says the events run from global position "
                f"{end.first_position} to {end.last_position}, the file's run from {first} to "
                f"{last}: lines were removed, added or reordered",
                line=number,
            )
        if end.registry_changes != len(self.registry_changes):
            raise IncompleteExportError(
                f"the closing record counts {end.registry_changes} registry changes, the file "
                f"holds {len(self.registry_changes)}: lines were removed or added",
                line=number,
            )
        if end.sha256 != digest:
            raise IncompleteExportError(
                f"the SHA-256 of the file before the closing record is {digest[:16]}..., the "
                f"closing record says {end.sha256[:16]}...: lines were removed, reordered or "
                "changed",
                line=number,
            )
        if header.head > header.after and last != header.head:
            raise IncompleteExportError(
                f"the export ends at global position {last}, the source's head was "
                f"{header.head} when it began: the writer stopped short",
                line=number,
            )
        self._check_expected(
            f"was written up to the source's head {header.head}", header.head, number
        )

    def _check_complete(self, end_line: int) -> None:
        if end_line:
            return
        if self.header is not None:
            raise self._cut_short(f"after line {self.line}")
        if self._expect_head is None and self._expect_count is None:
            raise UnverifiableExportError(
                "the file is empty: no header, no events, no closing record; an export of an "
                "empty store of format 1 (eventvault 0.1) is empty too: to import it, state the "
                "source's head position or number of events (expect_head=0, expect_count=0)"
            )
        last = self.last_position
        reached = "holds no events" if last is None else f"ends at global position {last}"
        self._check_expected(reached, last or 0, None)

    def _check_expected(self, reached: str, head: int, number: int | None) -> None:
        """Check the file against what the caller said the source held.

        Args:
            reached: how far the file goes, for the message (`ends at global position 7`).
            head: the source's head the file shows.
            number: the line to name, or None.
        """
        expected_head, expected_count = self._expect_head, self._expect_count
        count = self.event_count
        if expected_count is not None and count != expected_count:
            raise IncompleteExportError(
                f"the file holds {count} events, {expected_count} were expected", line=number
            )
        if expected_head is not None and head != expected_head:
            raise IncompleteExportError(
                f"the file {reached}, the source's head was expected at {expected_head}",
                line=number,
            )

    def _cut_short(self, where: str) -> IncompleteExportError:
        last = self.last_position
        if last is not None:
            before = f"event at global position {last}"
        elif self.header is not None:
            before = "the header"
        else:
            before = "before its first line is complete"
        if self.header is None:
            source = "the file has no header (format 1) to say what the source's head was"
        else:
            source = f"the source's head was {self.header.head}"
        return IncompleteExportError(
            f"the file ends {where}, {before}; the closing record is missing: the export was "
            f"interrupted; {source}"
        )


def read_export(
    lines: Iterable[bytes],
    *,
    expect_head: int | None = None,
    expect_count: int | None = None,
) -> ExportReader:
    """Read an export file's events lazily, refusing at the end a file not proven whole.

    A file of format 2 proves itself whole by its header and closing record. A file of format 1
    (eventvault 0.1: event lines only, blank lines skipped) cannot, and is refused unless
    `expect_head` or `expect_count` says what it must hold; it is then accepted only when it
    matches exactly. Given with a file of format 2, they are checked against its header and
    closing record too.

    Args:
        lines: the file's lines as bytes, newlines included (a file opened `rb`, stdin's
            buffer).
        expect_head: the source's head position when the file was written: the file's last
            event must be at this global position (0: the file holds no events).
        expect_count: the number of events the file must hold.

    Returns:
        An iterator of the file's events in the file's order (see `ExportReader` for where it
        is in the file). It raises, after its last event, when the file is not whole.

    Raises:
        InvalidArgumentError: `expect_head` or `expect_count` is not an int >= 0 (at the call).

    The iterator raises:
        InvalidArgumentError: the lines are not bytes (a file opened in text mode).
        ImportFileError: a line is not JSON, not an event or record of the format, or its event
            has a time without a zone or data or metadata that is not a JSON object; the error
            names the line.
        IncompleteExportError: the closing record is missing (the export was interrupted) or
            does not match the lines before it (count, positions, digest), something follows
            it, a second header, or the file does not match `expect_head` or `expect_count`.
        UnverifiableExportError: a file of format 1, or an empty file, without `expect_head`
            or `expect_count`.
        ExportFormatError: the header names another format or a newer version.
    """
    return ExportReader(lines, expect_head=expect_head, expect_count=expect_count)


def load_export(
    store: EventStore,
    lines: Iterable[bytes],
    *,
    expect_head: int | None = None,
    expect_count: int | None = None,
    on_progress: Progress | None = None,
) -> int:
    """Import an export file into an empty store: its events, all or nothing, then its
    schema registry.

    The file is read with `read_export` and its events given to `store.import_events`, which
    recomputes every hash and checks every position, in one transaction: a file that is
    malformed, changed, or not proven whole leaves the store as empty as it was. Errors about an
    event name the line it was read from. The registry's history is replayed once the events
    are committed, in a transaction of its own (`SchemaRegistry.import_history`); the target's
    registry is checked to be empty before anything is written.

    Args:
        store: the empty store to load into.
        lines: the file's lines as bytes, newlines included.
        expect_head: as for `read_export`.
        expect_count: as for `read_export`.
        on_progress: called with the number of events read and the bytes of the file read so
            far, every 1,000 events and once at the end.

    Returns:
        The number of events imported.

    Raises:
        NotEmptyError: the store holds events, or its schema registry holds changes.
        ImportFileError: the file is malformed, its events fail a position check, or it cannot
            be proven whole (the subclasses `IncompleteExportError`, `UnverifiableExportError`,
            `ExportFormatError` of `read_export`); the error names the line where it can.
        IncompleteExportError: the file is the tail of a log (written with `after` > 0).
        InvalidArgumentError: `expect_head` or `expect_count` is not an int >= 0.
    """
    reader = read_export(lines, expect_head=expect_head, expect_count=expect_count)
    check_registry_empty(store)

    def reported() -> Iterator[RawEvent]:
        # The registry's lines come before the events: a history that could not have been
        # made is refused here, inside the import's transaction, so nothing is stored.
        for event in reader:
            if reader.event_count == 1:
                _refuse_a_tail(reader.header)
                check_history(reader.registry_changes)
            yield event
            if on_progress is not None and reader.event_count % PROGRESS_EVERY == 0:
                on_progress(reader.event_count, reader.offset)
        _refuse_a_tail(reader.header)
        if reader.event_count == 0:
            check_history(reader.registry_changes)

    try:
        count = store.import_events(reported())
    except HashChainError as exc:
        raise ImportFileError(str(exc), line=reader.line) from exc
    except ImportFileError as exc:
        # The store's own checks do not know lines; the reader's errors already name theirs.
        if type(exc) is not ImportFileError or exc.line is not None:
            raise
        raise ImportFileError(exc.reason, line=reader.line) from exc
    import_registry(store, reader.registry_changes)
    if on_progress is not None:
        on_progress(count, reader.offset)
    return count


def _refuse_a_tail(header: ExportHeader | None) -> None:
    # A tail whose streams all began after `after` passes every position check, and would give
    # a store that silently lacks the start of the log.
    if header is not None and header.after > 0:
        raise IncompleteExportError(
            f"the file holds the events after global position {header.after}, not a whole "
            "log: this is part of a log (exported from a later position), which cannot be "
            "imported on its own; export again without --after",
            line=1,
        )


def copy_events(
    source: EventStore, target: EventStore, *, on_progress: Callable[[int], None] | None = None
) -> int:
    """Copy every event of one store into another, empty one, of any engine, all or nothing,
    and then its schema registry with its history.

    The copy is bounded by the source's head when it begins (events appended to the source
    while it runs are not copied), and proves that it is whole: if the events read do not end
    exactly at that head, it raises before the target commits. Every hash and position is
    checked by `target.import_events`, in one transaction.

    Args:
        source: the store to read.
        target: the empty store to write.
        on_progress: called with the number of events copied so far, every 1,000 events and
            once at the end.

    Returns:
        The number of events copied.

    Raises:
        NotEmptyError: the target holds events, or its schema registry holds changes.
        HashChainError: an event of the source fails its hash check.
        ImportFileError: the source's positions are out of order.
        IncompleteExportError: the source's events did not reach the head it had when the copy
            began; the target is left empty.
    """
    check_registry_empty(target)
    changes = registry_history(source)
    _, events = _log_until_head(source, 0, "copy")
    count = target.import_events(events, on_progress=on_progress)
    import_registry(target, changes)
    return count
