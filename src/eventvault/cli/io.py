"""Files and JSON on the command line: arguments, JSON Lines output, and files written safely.

A file a command writes (an export, a new store) is built under a random temporary name beside
it and moved into place only when complete; the format of export files is `eventvault.export`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO, Final

import msgspec
import typer

from eventvault.cli.errors import CommandLineError
from eventvault.serialization import MAX_NESTING_DEPTH, nesting_depth
from eventvault.types import RecordedEvent, StreamInfo

__all__ = [
    "STDIO",
    "create_beside",
    "json_line",
    "new_file_folder",
    "open_input",
    "open_output",
    "parse_json_object",
    "publish",
    "stream_info_line",
    "temporary_name",
]

STDIO: Final = "-"
"""The file name that means stdin (for input) or stdout (for output)."""

_QUOTING_HINT: Final = 'quote JSON for the shell, e.g. \'{"owner": "Ada"}\''
_encoder = msgspec.json.Encoder()
_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NAME_ATTEMPTS: Final = 100


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


def json_line(value: RecordedEvent) -> bytes:
    """One event as a line of JSON Lines, newline included, with its decoded payload.

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

    A file is written under a new temporary name beside it (created exclusively, with a random
    name, so a symlink planted at any name is never followed), synced, and moved into place only
    when the block ends without an error; on an error it is removed. An interrupted export
    never leaves a file that looks whole, and errors name `path`, never the temporary name.

    Args:
        path: the file, or `-`.
        overwrite: replace the file if it exists.

    Returns:
        A context manager giving the binary stream.

    Raises:
        CommandLineError: the file exists and `overwrite` is false, `path` is a folder, or its
            folder does not exist.
        OSError: it cannot be written.
    """
    if path == STDIO:
        stream = typer.get_binary_stream("stdout")
        yield stream
        stream.flush()
        return
    folder = new_file_folder(path, "FILE")
    if not overwrite and os.path.lexists(path):
        raise CommandLineError("FILE", f"{path!r} exists; pass --force to replace it")
    descriptor, temporary = create_beside(path, folder)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        publish(temporary, path, "FILE", overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def new_file_folder(path: str, argument: str) -> str:
    """The folder a new file at `path` goes into, checked.

    Args:
        path: the file as the user typed it.
        argument: the argument that named it (`FILE`, `--url`), for the error.

    Returns:
        The folder (`.` for a bare file name).

    Raises:
        CommandLineError: `path` is a folder, or its folder does not exist or is not a folder;
            the message names what the user typed.
    """
    if os.path.isdir(path):
        raise CommandLineError(
            argument,
            f"{path!r} is a folder; name a file in it, e.g. {os.path.join(path, 'backup.jsonl')!r}",
        )
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise CommandLineError(argument, f"{folder!r} is not a folder")
        raise CommandLineError(
            argument,
            f"folder {folder!r} does not exist",
            hint=f"create it first (mkdir -p {folder}), or name a file in a folder that exists",
        )
    return folder


def temporary_name(path: str, folder: str) -> str:
    """A random, hidden name beside `path` for the file that becomes `path` when complete.

    Args:
        path: the file to be written.
        folder: its folder, from `new_file_folder`.

    Returns:
        `folder/.NAME.RANDOM.partial`; 64 random bits make it unguessable.
    """
    name = os.path.basename(path)[:100]
    return os.path.join(folder, f".{name}.{secrets.token_hex(8)}.partial")


def create_beside(path: str, folder: str) -> tuple[int, str]:
    """Create a new, empty temporary file beside `path`, exclusively: never through a symlink,
    never over an existing file.

    Args:
        path: the file to be written, as the user typed it.
        folder: its folder, from `new_file_folder`.

    Returns:
        The open file descriptor (write only) and the temporary file's path.

    Raises:
        OSError: the folder cannot be written; the error names `path`.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
    for _ in range(_NAME_ATTEMPTS):
        temporary = temporary_name(path, folder)
        try:
            # O_CREAT | O_EXCL fails on any existing name, a symlink included; 0o666 lets the
            # umask set the permissions, as for any new file the user writes.
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, path) from None
    raise OSError(errno.EEXIST, "no free temporary name beside it", path)


def publish(temporary: str, path: str, argument: str, *, overwrite: bool) -> None:
    """Move a complete temporary file to its name, and sync the folder so the name is durable.

    Args:
        temporary: the complete file, from `create_beside` or `temporary_name`.
        path: its final name.
        argument: the argument that named `path`, for errors.
        overwrite: replace a file at `path`; without it a file that appeared there meanwhile is
            never replaced.

    Raises:
        CommandLineError: `path` exists and `overwrite` is false.
        OSError: the move failed; the error names `path`.
    """
    try:
        if overwrite:
            os.replace(temporary, path)
        else:
            _move_without_replacing(temporary, path, argument)
        _sync_folder(os.path.dirname(path) or ".")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from exc


def _move_without_replacing(temporary: str, path: str, argument: str) -> None:
    exists = CommandLineError(
        argument, f"{path!r} was created by another program meanwhile; it was left as it is"
    )
    try:
        # A hard link fails when the name exists, where a rename would replace it.
        os.link(temporary, path, follow_symlinks=False)
    except FileExistsError:
        raise exists from None
    except OSError:
        # A file system without hard links: check, then rename (a narrow race, not a symlink).
        if os.path.lexists(path):
            raise exists from None
        os.replace(temporary, path)
        return
    os.remove(temporary)


def _sync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself was synced
    finally:
        os.close(descriptor)
