"""How deep a payload nests, found without recursion, and a stack to decode it on.

msgspec, like every C JSON codec in CPython, recurses once per level of nesting: each level
takes about 430 bytes of C stack and, on Python 3.11, one unit of the recursion limit that the
caller's own frames also use. A payload nested deeper than a reader can decode would make every
page that holds it unreadable, for ever; so appends and imports refuse payloads nested deeper
than `MAX_NESTING_DEPTH`, and the check that refuses them must not itself recurse.

Measured with msgspec 0.23 on CPython 3.11 (x86-64 Linux), a read of one event decodes about
60 levels on a thread with a 32 KiB stack (the smallest `threading.stack_size` allows), 136
with 64 KiB and 288 with 128 KiB, on every engine; the main thread decodes (and encodes) up to
the recursion limit, about 995 levels at the default of 1,000. `json.loads` manages 210 levels
with 32 KiB. 32 levels leave room on all of them, and no event of a real application comes
near.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Final, TypeVar

import msgspec

__all__ = [
    "MAX_NESTING_DEPTH",
    "SHALLOW_BYTES",
    "depth_over_limit",
    "members",
    "nesting_depth",
    "object_depth",
    "on_fresh_stack",
]

MAX_NESTING_DEPTH: Final = 32
"""The deepest an event's data or metadata may nest objects and arrays; its own object is
level 1, so `{"a": [1]}` nests 2 levels."""

SHALLOW_BYTES: Final = 2 * (MAX_NESTING_DEPTH + 1)
"""A JSON text nested deeper than the limit has an opening and a closing bracket per level: it
is at least this long."""
_SMALL_TEXT: Final = 4096
"""Up to this length, counting brackets with `translate` is cheaper than searching for them."""
_NOT_OPENERS: Final = bytes(byte for byte in range(256) if byte not in b"{[")
_BRACKETS: Final = bytes.maketrans(b"{[}]", b"(())")
_NOT_STRUCTURE: Final = bytes(byte for byte in range(256) if byte not in b'"{}[]')
_STEP: Final = [0] * 256
_STEP[ord("(")] = 1
_STEP[ord(")")] = -1

_Argument = TypeVar("_Argument")
_Result = TypeVar("_Result")


def _structure(raw: bytes) -> bytes:
    """The brackets of a JSON text that lie outside its strings, as `(` and `)`.

    Every step runs over the whole text in C (`replace`, `translate`, `split`), so the cost is
    a few passes over the bytes and never a Python loop per byte.
    """
    if b"\\" in raw:
        # An escaped backslash, then an escaped quote, must not be read as a string's end.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # What is left of each string is its quotes around the brackets it holds. Removing `""`
    # removes a string without brackets, or joins two strings with no bracket between them:
    # either way every bracket stays inside or outside a string as it was.
    structure = raw.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:
        structure = b"".join(structure.split(b'"')[::2])
    return structure


def nesting_depth(raw: bytes) -> int:
    """How deep a JSON text nests objects and arrays, found without recursion.

    Args:
        raw: a JSON text, as UTF-8 bytes.

    Returns:
        The number of objects and arrays around its innermost value: 0 for a scalar, 1 for
        `{}` or `[1]`, 2 for `{"a": [1]}`. For a text that is not JSON, a number without
        meaning.
    """
    return max(itertools.accumulate(map(_STEP.__getitem__, _structure(raw))), default=0)


def _few_openers(raw: bytes) -> bool:
    """Whether a JSON text opens at most `MAX_NESTING_DEPTH` objects and arrays, strings
    included: then it cannot nest deeper."""
    if len(raw) <= _SMALL_TEXT:
        return len(raw.translate(None, _NOT_OPENERS)) <= MAX_NESTING_DEPTH
    # A long text is mostly strings: `find` skips them at memchr speed, and stops counting
    # after the limit.
    found = 0
    for opener in (b"{", b"["):
        at = raw.find(opener)
        while at >= 0:
            found += 1
            if found > MAX_NESTING_DEPTH:
                return False
            at = raw.find(opener, at + 1)
    return True


def depth_over_limit(raw: bytes) -> int | None:
    """The nesting depth of a JSON text when it is over `MAX_NESTING_DEPTH`.

    Cheap for the texts appends meet: a short text, or one with few brackets, cannot be too
    deep and is not scanned.

    Args:
        raw: a JSON text, as UTF-8 bytes.

    Returns:
        Its depth when that is over the limit; None when it is within.
    """
    if len(raw) < SHALLOW_BYTES or _few_openers(raw):
        return None
    structure = _structure(raw)
    # Each pass removes the innermost level everywhere: a payload within the limit is gone
    # after at most MAX_NESTING_DEPTH passes, most of them after two or three.
    for _ in range(MAX_NESTING_DEPTH):
        if not structure:
            return None
        structure = structure.replace(b"()", b"")
    if not structure:
        return None
    return MAX_NESTING_DEPTH + max(itertools.accumulate(map(_STEP.__getitem__, structure)))


def members(value: object) -> Iterable[tuple[object, object]] | None:
    """The (key or index, member) pairs of a value that the JSON encoder writes as an object
    or array: a dict, list, tuple, set, `msgspec.Struct` or dataclass instance.

    Args:
        value: any value of a payload.

    Returns:
        Its members, or None for a value that holds none.
    """
    if isinstance(value, dict):
        return value.items()
    if isinstance(value, (list, tuple)):
        return enumerate(value)
    if isinstance(value, msgspec.Struct):
        return ((name, getattr(value, name)) for name in value.__struct_fields__)
    if isinstance(value, (set, frozenset)):
        return enumerate(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((field.name, getattr(value, field.name)) for field in dataclasses.fields(value))
    return None


def object_depth(value: object) -> int:
    """How deep a payload nests objects and arrays, found by walking it without recursion.

    Args:
        value: the payload, before encoding.

    Returns:
        The depth, counted as `nesting_depth` counts it in the encoded text.
    """
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        found = members(node)
        if found is None:
            continue
        deepest = max(deepest, depth)
        pending.extend((member, depth + 1) for _, member in found)
    return deepest


def on_fresh_stack(function: Callable[[_Argument], _Result], argument: _Argument) -> _Result:
    """Run a recursive encoder or decoder on a new thread, whose recursion count starts at 0.

    On Python 3.11 the frames of the caller count against the recursion limit that msgspec
    checks, so a payload within `MAX_NESTING_DEPTH` fails to decode when the caller is already
    deep in its stack. A new thread starts with an empty stack; its size is the one
    `threading.stack_size` sets, which holds `MAX_NESTING_DEPTH` levels even at its minimum.

    Args:
        function: the encoder or decoder.
        argument: what to give it.

    Returns:
        What `function` returned; what it raised is raised here.
    """
    results: list[_Result] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(function(argument))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="eventvault-json", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
