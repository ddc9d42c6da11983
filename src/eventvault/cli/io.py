"""JSON on the command line: arguments, JSON Lines output, and export files.

An export file holds one `RawEvent` per line, encoded by msgspec with `data` and `metadata` as
the exact stored bytes, so every hash still verifies after a round trip through the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import msgspec
import typer

from eventvault.cli.errors import CommandLineError
from eventvault.errors import ImportFileError
from eventvault.serialization import MAX_NESTING_DEPTH, nesting_depth
from eventvault.types import RawEvent, RecordedEvent, StreamInfo

__all__ = [
    "STDIO",
    "LineCursor",
    "decode_raw_events",
    "json_line",
    "open_input",
    "open_output",
    "parse_json_object",
    "stream_info_line",
]

STDIO: Final = "-"
"""The file name that means stdin (for input) or stdout (for output)."""

_QUOTING_HINT: Final = 'quote JSON for the shell, e.g. \'{"owner": "Ada"}\''
_encoder = msgspec.json.Encoder()
_raw_event_decoder = msgspec.json.Decoder(RawEvent)


def parse_json_object(text: str, argument: str) -> dict[str, object]:
    """Parse a JSON object given on the command line.

    Args:
        text: the text the user gave.
        argument: the argument's name as the user sees it (`DATA_JSON`, `--metadata`), for the
            error message.

    Returns:
        The object, as a dict.

    Raises:
        CommandLineError: the text is not JSON, not a JSON object, or nests objects and arrays
            deeper than an event may.
    """
    raw = text.encode("utf-8", "surrogateescape")
    # Checked before decoding: the decoder recurses, and a text thousands of levels deep
    # would exhaust it.
    depth = nesting_depth(raw)
    if depth > MAX_NESTING_DEPTH:
        raise CommandLineError(
            argument,
            f"nests objects and arrays {depth} levels deep, over the limit of "
            f"{MAX_NESTING_DEPTH} levels that an event's data and metadata may have",
        )
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise CommandLineError(
            argument, f"not valid JSON ({exc}): {_excerpt(text)}", hint=_QUOTING_HINT
        ) from None
    if not isinstance(value, dict):
        raise CommandLineError(
            argument, f"must be a JSON object such as {{}}, not {_json_kind(value)}"
        )
    return value


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def json_line(value: RecordedEvent | RawEvent) -> bytes:
    """One event as a line of JSON Lines, newline included.

    A `RawEvent` embeds its stored `data` and `metadata` bytes verbatim; a `RecordedEvent`
    encodes its decoded payload.

    Args:
        value: the event.

    Returns:
        The encoded line.
    """
    return _encoder.encode(value) + b"\n"


def stream_info_line(info: StreamInfo) -> bytes:
    """A stream's summary as a line of JSON Lines, newline included.

    Args:
        info: the stream's summary.

    Returns:
        `{"stream_name": ..., "event_count": ..., "version": ..., "last_global_position": ...}`.
    """
    return (
        _encoder.encode(
            {
                "stream_name": info.stream_name,
                "event_count": info.event_count,
                "version": info.version,
                "last_global_position": info.last_global_position,
            }
        )
        + b"\n"
    )


@dataclass(slots=True)
class LineCursor:
    """Where the reading of an import file is: its last line read and the bytes consumed.

    Attributes:
        line: the 1-based number of the last line read (0 before the first).
        offset: the bytes read so far.
    """

    line: int = 0
    offset: int = 0


def decode_raw_events(lines: Iterable[bytes], cursor: LineCursor) -> Iterator[RawEvent]:
    """Decode an export file lazily, one `RawEvent` per line; blank lines are skipped.

    Args:
        lines: the file's lines, as bytes.
        cursor: updated before each event is yielded, so an error raised while that event is
            checked can name its line.

    Returns:
        An iterator of the events, in the file's order.

    Raises:
        ImportFileError: a line is not JSON, misses a field, has a field of the wrong type, a
            timestamp without a time zone, or data or metadata that is not a JSON object or
            nests too deeply to decode; the error names the line.
    """
    for number, line in enumerate(lines, start=1):
        cursor.line = number
        cursor.offset += len(line)
        if not line.strip():
            continue
        try:
            event = _raw_event_decoder.decode(line)
        except msgspec.ValidationError as exc:
            raise ImportFileError(f"not an exported event: {exc}", line=number) from None
        except msgspec.DecodeError as exc:
            raise ImportFileError(f"not valid JSON: {exc}", line=number) from None
        except RecursionError:
            # The line holds the event's object around its data and metadata: one level more.
            raise ImportFileError(
                f"data or metadata nests objects and arrays {nesting_depth(line) - 1} levels "
                f"deep, over the limit of {MAX_NESTING_DEPTH} levels that appends accept",
                line=number,
            ) from None
        if event.recorded_at.tzinfo is None:
            raise ImportFileError("recorded_at has no time zone", line=number)
        for name, raw in (("data", event.data), ("metadata", event.metadata)):
            if not bytes(raw).startswith(b"{"):
                raise ImportFileError(f"{name} is not a JSON object", line=number)
        yield event


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """Open a file to read as bytes, or stdin for `-`.

    Args:
        path: the file, or `-`.

    Returns:
        A context manager giving the binary stream; a file is closed on exit, stdin is not.

    Raises:
        FileNotFoundError: the file does not exist.
        OSError: it cannot be read.
    """
    if path == STDIO:
        yield typer.get_binary_stream("stdin")
        return
    with open(path, "rb") as stream:
        yield stream


@contextlib.contextmanager
def open_output(path: str, *, overwrite: bool) -> Iterator[BinaryIO]:
    """Open a file to write as bytes, or stdout for `-`.

    A file is written under a temporary name beside it and renamed into place only when the
    block ends without an error, so an interrupted export never leaves a file that looks whole.

    Args:
        path: the file, or `-`.
        overwrite: replace the file if it exists.

    Returns:
        A context manager giving the binary stream.

    Raises:
        CommandLineError: the file exists and `overwrite` is false.
        OSError: it cannot be written.
    """
    if path == STDIO:
        stream = typer.get_binary_stream("stdout")
        yield stream
        stream.flush()
        return
    if os.path.exists(path) and not overwrite:
        raise CommandLineError("FILE", f"{path!r} exists; pass --force to replace it")
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
