"""`eventvault.export`: writing a log as an export file that proves itself whole, and reading it
back, on every engine; and the format's specification, whose verifier runs against real files."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import EventStore, NewEvent, RawEvent, StreamAppend, StreamState
from eventvault.errors import (
    ExportFormatError,
    HashChainError,
    ImportFileError,
    IncompleteExportError,
    InvalidArgumentError,
    NotEmptyError,
    UnverifiableExportError,
)
from eventvault.export import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ExportEnd,
    ExportHeader,
    copy_events,
    load_export,
    read_export,
    write_export,
)
from eventvault.store.memory import MemoryEventStore
from eventvault.testing.contract import EngineSpec

from .contract import conftest as contract

engine = contract.engine
"""The contract suite's fixture: each test that asks for `engine` runs on every engine."""

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "export-format.md"
FORMAT_1_EXPORT = ROOT / "tests" / "fixtures" / "stores" / "sqlite-schema-1.export.jsonl"


def fill(store: EventStore, streams: int = 3, per_stream: int = 4) -> None:
    """Append `per_stream` events to each of `streams` streams, interleaved, with metadata."""
    for round_ in range(per_stream):
        store.append_to_streams(
            [
                StreamAppend(
                    f"account-{n}",
                    [
                        NewEvent(
                            "Deposited", {"amount": round_, "note": "é ✓"}, metadata={"actor": "t"}
                        )
                    ],
                    StreamState.ANY,
                )
                for n in range(streams)
            ]
        )


def exported(store: EventStore, *, after: int = 0) -> bytes:
    out = io.BytesIO()
    write_export(store, out, after=after)
    return out.getvalue()


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def read_all_of(data: bytes, **expect: int) -> list[RawEvent]:
    return list(read_export(io.BytesIO(data), **expect))


@pytest.fixture
def source() -> Iterator[EventStore]:
    """An in-memory store holding 12 events in 3 streams."""
    with eventvault.connect("memory://") as store:
        fill(store)
        yield store


@pytest.fixture
def export_file(source: EventStore) -> bytes:
    """The export of `source`."""
    return exported(source)


# -- writing, on every engine ----------------------------------------------------------------


def test_an_export_round_trips_every_byte_and_hash_between_engines(engine: EngineSpec) -> None:
    with engine.fresh() as store:
        fill(store)
        data = exported(store)
        with eventvault.connect("memory://") as copy:
            assert load_export(copy, io.BytesIO(data)) == 12
            assert list(copy.export_events()) == list(store.export_events())
    with eventvault.connect("memory://") as origin, engine.fresh() as target:
        fill(origin)
        assert load_export(target, io.BytesIO(exported(origin))) == 12
        assert list(target.export_events()) == list(origin.export_events())


def test_an_export_is_a_header_the_events_and_a_closing_record(engine: EngineSpec) -> None:
    with engine.fresh() as store:
        fill(store)
        out = io.BytesIO()
        summary = write_export(store, out)
        lines = lines_of(out.getvalue())
        header = msgspec.json.decode(lines[0], type=ExportHeader)
        assert header == summary.header
        assert (header.format, header.format_version) == (FORMAT_NAME, FORMAT_VERSION)
        assert (header.after, header.head) == (0, 12)
        assert header.eventvault_version == eventvault.__version__
        events = [msgspec.json.decode(line, type=RawEvent) for line in lines[1:-1]]
        assert events == list(store.export_events())
        end = msgspec.json.decode(lines[-1], type=ExportEnd)
        assert end == summary.end
        assert (end.event_count, end.first_position, end.last_position) == (12, 1, 12)
        assert end.sha256 == hashlib.sha256(b"".join(lines[:-1])).hexdigest()


def test_an_export_holds_the_log_as_it_was_when_it_began(engine: EngineSpec) -> None:
    with engine.fresh() as store:
        fill(store)

        class AppendingOnFirstWrite(io.BytesIO):
            """Appends to the store when the header is written: after the head was read."""

            appended = False

            def write(self, data: bytes) -> int:  # type: ignore[override]
                if not self.appended:
                    self.appended = True
                    store.append_to_stream(
                        "late-1", [NewEvent("Late", {})], expected_version=StreamState.ANY
                    )
                return super().write(data)

        out = AppendingOnFirstWrite()
        summary = write_export(store, out)
        assert out.appended and store.head_position() == 13
        assert (summary.header.head, summary.end.event_count) == (12, 12)
        assert [e.stream_name for e in read_all_of(out.getvalue())].count("late-1") == 0


def test_an_export_after_a_position_holds_the_tail_and_says_so(source: EventStore) -> None:
    data = exported(source, after=9)
    header = msgspec.json.decode(lines_of(data)[0], type=ExportHeader)
    assert (header.after, header.head) == (9, 12)
    assert [e.global_position for e in read_all_of(data)] == [10, 11, 12]


@pytest.mark.parametrize("after", [12, 15], ids=["new-streams-only", "no-events"])
def test_loading_the_tail_of_a_log_is_refused(source: EventStore, after: int) -> None:
    # Events 13 to 15 begin new streams, so every position check of a tail after 12 passes.
    for n in range(3):
        source.append_to_stream(
            f"new-{n}", [NewEvent("Opened", {})], expected_version=StreamState.NO_STREAM
        )
    data = exported(source, after=after)
    with eventvault.connect("memory://") as target:
        with pytest.raises(IncompleteExportError, match="line 1: the file holds the events after"):
            load_export(target, io.BytesIO(data))
        assert target.head_position() == 0


def test_an_export_reports_progress_every_thousand_events_and_at_the_end() -> None:
    with eventvault.connect("memory://") as store:
        store.append_to_stream(
            "s-1", [NewEvent("A", {}) for _ in range(2500)], expected_version=StreamState.ANY
        )
        calls: list[tuple[int, int]] = []
        write_export(store, io.BytesIO(), on_progress=lambda n, p: calls.append((n, p)))
    assert calls == [(1000, 1000), (2000, 2000), (2500, 2500)]


def test_an_export_with_a_bad_position_writes_nothing(source: EventStore) -> None:
    out = io.BytesIO()
    with pytest.raises(InvalidArgumentError, match="after"):
        write_export(source, out, after=-1)
    assert out.getvalue() == b""


class _LosingTheLast(MemoryEventStore):
    """A store whose exports lose their last event, as if it vanished while being read."""

    def export_events(self, *, after: int = 0, until: int | None = None) -> Iterator[RawEvent]:
        return iter(list(super().export_events(after=after, until=until))[:-1])


def test_an_export_whose_events_do_not_reach_the_head_writes_no_closing_record() -> None:
    with _LosingTheLast("memory://") as store:
        fill(store)
        out = io.BytesIO()
        with pytest.raises(IncompleteExportError, match="short of its head 12 when the export"):
            write_export(store, out)
    assert b'"record":"end"' not in out.getvalue()
    with pytest.raises(IncompleteExportError, match="the closing record is missing"):
        read_all_of(out.getvalue())


# -- reading ---------------------------------------------------------------------------------


def test_reading_a_whole_export_yields_its_events_and_tracks_where_it_is(
    export_file: bytes, source: EventStore
) -> None:
    reader = read_export(io.BytesIO(export_file))
    events = list(reader)
    assert events == list(source.export_events())
    assert (reader.line, reader.offset, reader.event_count) == (14, len(export_file), 12)
    assert reader.header is not None and reader.header.head == 12


def test_an_export_without_its_closing_record_is_refused_after_its_last_event(
    export_file: bytes,
) -> None:
    reader = read_export(io.BytesIO(b"".join(lines_of(export_file)[:-1])))
    got = [next(reader) for _ in range(12)]
    assert [e.global_position for e in got] == list(range(1, 13))
    with pytest.raises(IncompleteExportError) as caught:
        next(reader)
    assert str(caught.value) == (
        "the file ends after line 13, event at global position 12; the closing record is "
        "missing: the export was interrupted; the source's head was 12"
    )


def test_an_export_cut_after_its_header_is_refused(export_file: bytes) -> None:
    with pytest.raises(IncompleteExportError, match="ends after line 1, the header; the closing"):
        read_all_of(lines_of(export_file)[0])


@pytest.mark.parametrize("cut", [1, 100, 500, -80, -3, -2])
def test_an_export_cut_at_any_byte_is_refused(export_file: bytes, cut: int) -> None:
    with pytest.raises(IncompleteExportError, match="the closing record is missing"):
        read_all_of(export_file[:cut])


def test_a_closing_record_without_its_newline_is_still_whole(export_file: bytes) -> None:
    assert len(read_all_of(export_file.rstrip(b"\n"))) == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ls: ls[:5] + ls[6:], r"line 13: the closing record counts 12 events, the file h"),
        (lambda ls: ls[:1] + ls[-1:], r"line 2: the closing record counts 12 events, the file h"),
        (
            lambda ls: [*ls[:-1], ls[-1].replace(b'"event_count":12', b'"event_count":11')],
            r"line 14: the closing record counts 11 events, the file holds 12",
        ),
        (
            lambda ls: [*ls[:-1], ls[-1].replace(b'"last_position":12', b'"last_position":13')],
            r"says the events run from global position 1 to 13, the file's run from 1 to 12",
        ),
        (
            lambda ls: (
                [ls[0], ls[1].replace(b'"global_position":1,', b'"global_position": 1,'), *ls[2:]]
            ),
            r"line 14: the SHA-256 of the file before the closing record is [0-9a-f]{16}\.\.\.",
        ),
        (lambda ls: [*ls, b"\n"], r"line 15: something follows the closing record of line 14"),
        (lambda ls: [*ls, *ls], r"line 15: something follows the closing record of line 14"),
        (
            lambda ls: ls[:3] + ls,
            r"line 4: a second header \(the first is on line 1\): two exports were joined",
        ),
        (lambda ls: [b"\n", *ls], r"line 2: a header after the first line"),
        (lambda ls: ls[1:], r"line 1: the file has no header: it is an export of format 1"),
        (lambda ls: ls[-1:], r"line 1: a closing record without a header"),
    ],
    ids=[
        "event-removed",
        "every-event-removed",
        "count-changed",
        "position-changed",
        "line-changed-hashes-intact",
        "blank-line-after",
        "joined",
        "second-header",
        "line-before-header",
        "header-removed",
        "closing-record-only",
    ],
)
def test_an_export_that_is_not_whole_is_refused_naming_what_is_wrong(
    export_file: bytes, change: object, message: str
) -> None:
    assert callable(change)
    with pytest.raises(IncompleteExportError, match=message):
        read_all_of(b"".join(change(lines_of(export_file))))


def test_an_export_with_an_event_outside_its_header_bounds_is_refused(source: EventStore) -> None:
    tail = lines_of(exported(source, after=9))
    earlier = lines_of(exported(source))[5]
    with pytest.raises(IncompleteExportError, match="line 2: the event at global position 5 is"):
        read_all_of(b"".join([tail[0], earlier, *tail[1:]]))


def test_an_export_of_a_newer_format_version_is_refused_asking_for_an_upgrade(
    export_file: bytes,
) -> None:
    lines = lines_of(export_file)
    newer = lines[0].replace(b'"format_version":3', b'"format_version":4')
    with pytest.raises(ExportFormatError, match="line 1: export format version 4") as caught:
        read_all_of(b"".join([newer, *lines[1:]]))
    assert (caught.value.found, caught.value.supported) == (4, 3)
    # A newer header this version cannot even decode is named the same way.
    strange = b'{"record":"header2","format":"eventvault-export","format_version":7}\n'
    with pytest.raises(ExportFormatError, match="format version 7"):
        read_all_of(b"".join([strange, *lines[1:]]))


def test_a_header_of_another_format_is_refused(export_file: bytes) -> None:
    lines = lines_of(export_file)
    other = lines[0].replace(b'"eventvault-export"', b'"something-else"')
    with pytest.raises(ExportFormatError, match="names the format 'something-else'"):
        read_all_of(b"".join([other, *lines[1:]]))


def test_a_malformed_line_is_named(export_file: bytes) -> None:
    lines = lines_of(export_file)
    with pytest.raises(ImportFileError, match="line 3: not valid JSON"):
        read_all_of(b"".join([*lines[:2], b"{oops\n", *lines[2:]]))
    with pytest.raises(ImportFileError, match="line 2: not an exported event"):
        read_all_of(b"".join([lines[0], b'{"global_position": 1}\n', *lines[1:]]))


def test_lines_read_as_text_are_refused_saying_to_read_bytes(
    export_file: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "backup.jsonl"
    path.write_bytes(export_file)
    with path.open() as text, pytest.raises(InvalidArgumentError, match="opened 'rb'"):
        list(read_export(text))  # type: ignore[arg-type]


def test_expectations_must_be_positions(export_file: bytes) -> None:
    with pytest.raises(InvalidArgumentError, match="expect_head"):
        read_export(io.BytesIO(export_file), expect_head=-1)
    with pytest.raises(InvalidArgumentError, match="expect_count"):
        read_export(io.BytesIO(export_file), expect_count=True)


# -- format 1: the files eventvault 0.1 wrote ------------------------------------------------


def test_a_format_1_file_is_refused_without_a_statement_of_what_it_holds() -> None:
    with pytest.raises(UnverifiableExportError, match="line 1: the file has no header"):
        read_all_of(FORMAT_1_EXPORT.read_bytes())
    with pytest.raises(UnverifiableExportError, match="the file is empty"):
        read_all_of(b"")


@pytest.mark.parametrize(
    "expect", [{"expect_head": 7}, {"expect_count": 7}, {"expect_head": 7, "expect_count": 7}]
)
def test_a_format_1_file_that_matches_what_is_stated_is_read(expect: dict[str, int]) -> None:
    events = read_all_of(FORMAT_1_EXPORT.read_bytes(), **expect)
    assert [e.global_position for e in events] == list(range(1, 8))


@pytest.mark.parametrize(
    ("data", "expect", "message"),
    [
        (None, {"expect_head": 6}, "the file ends at global position 7, the source's head was"),
        (None, {"expect_count": 8}, "the file holds 7 events, 8 were expected"),
        (-1, {"expect_head": 7}, "the file ends at global position 6, the source's head was"),
        (0, {"expect_head": 7}, "the file holds no events, the source's head was expected at 7"),
    ],
)
def test_a_format_1_file_that_does_not_match_what_is_stated_is_refused(
    data: int | None, expect: dict[str, int], message: str
) -> None:
    lines = lines_of(FORMAT_1_EXPORT.read_bytes())
    kept = lines if data is None else lines[:data] if data else []
    with pytest.raises(IncompleteExportError, match=message):
        read_all_of(b"".join(kept), **expect)


def test_a_format_1_file_of_an_empty_store_is_read_when_stated_empty() -> None:
    assert read_all_of(b"", expect_head=0) == []
    assert read_all_of(b"\n\n", expect_count=0) == []


# -- loading into every engine ---------------------------------------------------------------


@pytest.mark.parametrize("events", [5, 1000, 2500])
def test_a_file_cut_short_leaves_every_engine_empty(engine: EngineSpec, events: int) -> None:
    with eventvault.connect("memory://") as origin:
        origin.append_to_stream(
            "s-1",
            [NewEvent("A", {"n": n}) for n in range(events)],
            expected_version=StreamState.ANY,
        )
        data = exported(origin)
    with engine.fresh() as target:
        with pytest.raises(IncompleteExportError, match="closing record is missing"):
            load_export(target, io.BytesIO(b"".join(lines_of(data)[:-1])))
        assert target.head_position() == 0
        assert load_export(target, io.BytesIO(data)) == events


def test_loading_names_the_line_of_an_event_that_fails_its_hash(export_file: bytes) -> None:
    lines = lines_of(export_file)
    lines[4] = lines[4].replace(b'"amount":1', b'"amount":9')
    with eventvault.connect("memory://") as target:
        with pytest.raises(ImportFileError, match="line 5: hash mismatch") as caught:
            load_export(target, io.BytesIO(b"".join(lines)))
        assert isinstance(caught.value.__cause__, HashChainError)
        assert target.head_position() == 0


def test_loading_names_the_line_of_an_event_out_of_position(export_file: bytes) -> None:
    lines = lines_of(export_file)
    lines[2], lines[3] = lines[3], lines[2]
    target = eventvault.connect("memory://")
    with (
        target,
        pytest.raises(
            ImportFileError,
            match=r"line 4: event \S+ at 'account-1'@0 \(global position 2\): global position 2 does "
            "not follow 3",
        ),
    ):
        load_export(target, io.BytesIO(b"".join(lines)))


def test_loading_into_a_store_with_events_is_refused(export_file: bytes) -> None:
    with eventvault.connect("memory://") as target:
        fill(target, streams=1, per_stream=1)
        with pytest.raises(NotEmptyError):
            load_export(target, io.BytesIO(export_file))
        assert target.head_position() == 1


def test_loading_reports_events_and_bytes_read() -> None:
    with eventvault.connect("memory://") as store, eventvault.connect("memory://") as target:
        store.append_to_stream(
            "s-1", [NewEvent("A", {}) for _ in range(1500)], expected_version=StreamState.ANY
        )
        data = exported(store)
        calls: list[tuple[int, int]] = []
        load_export(target, io.BytesIO(data), on_progress=lambda n, b: calls.append((n, b)))
    assert [n for n, _ in calls] == [1000, 1500]
    assert calls[-1][1] == len(data)
    assert 0 < calls[0][1] < len(data)


def test_loading_a_format_1_file_keeps_every_byte_of_it() -> None:
    with eventvault.connect("memory://") as target, FORMAT_1_EXPORT.open("rb") as lines:
        assert load_export(target, lines, expect_head=7) == 7
        written = FORMAT_1_EXPORT.read_bytes().splitlines()
        assert [msgspec.json.encode(e) for e in target.export_events()] == written


# -- copying between every engine ------------------------------------------------------------


def test_a_copy_keeps_every_event_on_every_engine(engine: EngineSpec) -> None:
    with engine.fresh() as origin, eventvault.connect("memory://") as target:
        fill(origin)
        assert copy_events(origin, target) == 12
        assert list(target.export_events()) == list(origin.export_events())
    with eventvault.connect("memory://") as origin, engine.fresh() as target:
        fill(origin)
        assert copy_events(origin, target) == 12
        assert list(target.export_events()) == list(origin.export_events())


def test_a_copy_whose_source_does_not_reach_its_head_leaves_the_target_empty(
    engine: EngineSpec,
) -> None:
    with _LosingTheLast("memory://") as origin, engine.fresh() as target:
        fill(origin)
        with pytest.raises(IncompleteExportError, match="short of its head 12 when the copy"):
            copy_events(origin, target)
        assert target.head_position() == 0


def test_a_copy_holds_the_source_as_it_was_when_it_began() -> None:
    with eventvault.connect("memory://") as origin:
        fill(origin)

        class AppendingToTheSource(MemoryEventStore):
            """A target that appends to the source before it reads the first event."""

            def import_events(
                self,
                events: Iterable[RawEvent],
                *,
                on_progress: Callable[[int], None] | None = None,
            ) -> int:
                origin.append_to_stream(
                    "late-1", [NewEvent("Late", {})], expected_version=StreamState.ANY
                )
                return super().import_events(events, on_progress=on_progress)

        with AppendingToTheSource("memory://") as target:
            assert copy_events(origin, target) == 12
            assert origin.head_position() == 13
            assert target.head_position() == 12


# -- the specification -----------------------------------------------------------------------


def _verifier_source() -> str:
    text = SPEC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python verifier\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/export-format.md holds one ```python verifier block"
    return str(blocks[0])


def _verify(tmp_path: Path, data: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "verify_export.py"
    script.write_text(_verifier_source(), encoding="utf-8")
    path = tmp_path / "backup.jsonl"
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-I", str(script), str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_specs_verifier_accepts_a_real_export(tmp_path: Path, engine: EngineSpec) -> None:
    with engine.fresh() as store:
        fill(store, streams=5, per_stream=30)
        data = exported(store)
    result = _verify(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "whole: 150 events, global positions 1 to 150, head 150"


@pytest.mark.parametrize(
    "change",
    [
        lambda ls: ls[:-1],
        lambda ls: ls[:7] + ls[8:],
        lambda ls: [ls[0], ls[2], ls[1], *ls[3:]],
        lambda ls: [*ls[:3], ls[3].replace(b'"amount":0', b'"amount":7'), *ls[4:]],
        lambda ls: [
            *ls[:3],
            ls[3].replace(b'"global_position":3', b'"global_position": 3'),
            *ls[4:],
        ],
        lambda ls: [*ls, ls[1]],
    ],
    ids=["cut", "line-removed", "reordered", "data-changed", "spacing-changed", "line-after"],
)
def test_the_specs_verifier_refuses_a_changed_export(
    tmp_path: Path, source: EventStore, change: object
) -> None:
    assert callable(change)
    data = b"".join(change(lines_of(exported(source))))
    result = _verify(tmp_path, data)
    assert result.returncode == 1
    assert result.stderr.startswith("not whole: ")


def test_the_specs_verifier_checks_a_format_1_file_against_a_stated_head(tmp_path: Path) -> None:
    data = FORMAT_1_EXPORT.read_bytes()
    assert _verify(tmp_path, data).returncode == 1
    assert _verify(tmp_path, data, "--expect-head", "7").returncode == 0
    assert _verify(tmp_path, data, "--expect-head", "6").returncode == 1


def test_the_specs_example_file_verifies_and_is_read_whole(tmp_path: Path) -> None:
    text = SPEC.read_text(encoding="utf-8")
    [example] = re.findall(r"```json export-example\n(.*?)```", text, flags=re.S)
    data = str(example).replace("\n ", "").encode()
    result = _verify(tmp_path, data)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "whole: 2 events, 1 registry changes, global positions 1 to 2, head 2"
    )
    reader = read_export(data.splitlines(keepends=True))
    events = list(reader)
    assert [(c.change_id, c.action, c.event_type, c.version) for c in reader.registry_changes] == [
        (1, "register", "AccountOpened", 1)
    ]
    assert [(e.stream_name, e.stream_position, e.event_type) for e in events] == [
        ("account-42", 0, "AccountOpened"),
        ("account-42", 1, "MoneyDeposited"),
    ]
