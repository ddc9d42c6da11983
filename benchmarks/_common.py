"""Shared helpers of the benchmark scripts: timing, interleaved rounds, tables, temp dirs.

A script imports this module as `_common` (it sits beside the scripts, so running
`python benchmarks/bench_x.py` puts it on the path). Nothing here knows about eventvault.

On a shared, noisy machine a figure is only as good as its method: run the contenders of one
measure in interleaved rounds (`interleave`), rotating their order so that neither always runs
first, and compare a statistic of their samples (`summarize`) as a ratio.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "MEMORY_FILESYSTEMS",
    "BenchmarkSetupError",
    "Figure",
    "Stat",
    "Table",
    "bench_dir",
    "filesystem_type",
    "format_bytes",
    "format_rate",
    "format_ratio",
    "imported_from",
    "interleave",
    "machine_info",
    "print_table",
    "summarize",
    "timed",
    "write_json",
]

Stat = Literal["best", "median"]
"""How the samples of one contender become one figure: the highest, or the median."""

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs"})
"""File systems that never reach a disk: a durability benchmark must not run on them."""


class BenchmarkSetupError(Exception):
    """The benchmark cannot run as asked (a bad directory, a missing dependency)."""


def timed(action: Callable[[], object]) -> float:
    """Run an action once and return its wall-clock duration.

    Args:
        action: the work to time.

    Returns:
        Seconds elapsed, from `time.perf_counter`.
    """
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def interleave(
    contenders: Mapping[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    """Run every contender once per round, rotating the order from round to round.

    Slow phases of a shared machine then hit every contender alike, instead of whichever
    happened to run while the neighbour was busy.

    Args:
        contenders: name to a callable that runs one sample and returns its figure (a rate:
            higher is better).
        rounds: how many samples to take of each.

    Returns:
        Name to its samples, in the order taken.

    Raises:
        ValueError: `rounds` is below 1 or there are no contenders.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, not {rounds}")
    if not contenders:
        raise ValueError("interleave needs at least one contender")
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(contenders[name]())
    return samples


def summarize(samples: Sequence[float], stat: Stat) -> float:
    """Reduce the samples of one contender to one figure.

    Args:
        samples: rates (higher is better).
        stat: `best` for the highest sample (the run least disturbed by other load), `median`
            for the middle one.

    Returns:
        The figure.

    Raises:
        ValueError: no samples, or an unknown statistic.
    """
    if not samples:
        raise ValueError("no samples to summarize")
    if stat == "best":
        return max(samples)
    if stat == "median":
        return statistics.median(samples)
    raise ValueError(f"stat must be 'best' or 'median', not {stat!r}")


def format_rate(rate: float, unit: str = "ev/s") -> str:
    """A rate with thousands separators, such as `12,345 ev/s`."""
    return f"{rate:,.0f} {unit}"


def format_ratio(ratio: float) -> str:
    """A ratio such as `0.83x`."""
    return f"{ratio:.2f}x"


def format_bytes(size: float) -> str:
    """A size in mebibytes, such as `12.3 MiB`."""
    return f"{size / (1024 * 1024):,.1f} MiB"


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """The type of the file system that holds a path, from /proc/mounts (Linux only).

    Returns:
        The type (`ext4`, `tmpfs`, ...), or None where /proc/mounts cannot be read.
    """
    target = os.path.realpath(path)
    best_mount, best_type = "", None
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount_point = fields[1].replace("\\040", " ")
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best_mount):
                    best_mount, best_type = mount_point, fields[2]
    except OSError:
        return None
    return best_type


@contextlib.contextmanager
def bench_dir(
    prefix: str, base: str | None = None, *, allow_memory_fs: bool = False
) -> Iterator[Path]:
    """A fresh directory on disk for a benchmark's files, removed afterwards.

    Args:
        prefix: the start of the directory's name.
        base: where to create it; by default `$EVENTVAULT_BENCH_DIR`, else the system's
            temporary directory.
        allow_memory_fs: accept a memory file system (for smoke tests, whose figures do not
            count).

    Yields:
        The directory.

    Raises:
        BenchmarkSetupError: the base directory is missing or lies on a memory file system
            (tmpfs), where a sync costs nothing and a durability benchmark would mislead.
    """
    root = base or os.environ.get("EVENTVAULT_BENCH_DIR") or tempfile.gettempdir()
    if not os.path.isdir(root):
        raise BenchmarkSetupError(f"benchmark directory {root!r} does not exist")
    kind = filesystem_type(root)
    if kind in MEMORY_FILESYSTEMS and not allow_memory_fs:
        raise BenchmarkSetupError(
            f"benchmark directory {root!r} is on {kind}, which never syncs to a disk; "
            "choose one on a disk with --dir or EVENTVAULT_BENCH_DIR"
        )
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def machine_info(path: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """What a reader of the figures needs to know about the machine that produced them.

    Args:
        path: a directory the benchmark writes to; its file system type is reported.

    Returns:
        Python and SQLite versions, platform, processor count, load average and, when `path`
        is given, its file system.
    """
    info: dict[str, object] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["load_average"] = [round(load, 2) for load in os.getloadavg()]
    if path is not None:
        info["filesystem"] = filesystem_type(path)
    return info


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a run, as every script's JSON lists it under `figures`.

    `compare_versions.py` matches the figures of two runs by `key`, so a key names the same
    work in every version of a script.

    Attributes:
        key: a stable identifier, such as `append_one` or `append_one/ratio`.
        label: what was measured and whose figure it is, for people.
        value: the figure.
        unit: its unit (`ev/s`, `bytes`, `x` for a ratio).
        higher_is_better: false for costs such as memory or time.
        samples: the rounds the figure was reduced from; empty for a figure computed from
            others, such as a ratio.
    """

    key: str
    label: str
    value: float
    unit: str
    higher_is_better: bool = True
    samples: tuple[float, ...] = ()


def imported_from(module: str) -> str:
    """The file a module was imported from, so that a run's JSON shows which copy it measured.

    Args:
        module: an importable module name.

    Returns:
        Its `__file__`, or an empty string for a module without one.
    """
    return str(getattr(importlib.import_module(module), "__file__", None) or "")


def write_json(path: str | os.PathLike[str], payload: Mapping[str, object]) -> None:
    """Write figures as indented JSON, creating the parent directory when missing."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Table:
    """A table of text to print.

    Attributes:
        title: printed above the table.
        columns: the column headings.
        rows: one tuple of cells per row, as many as there are columns.
        right_aligned: indexes of the columns to align right (numbers).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right_aligned: frozenset[int] = frozenset()


def _plain(table: Table) -> str:
    widths = [len(column) for column in table.columns]
    for row in table.rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[index]) if index in table.right_aligned else cell.ljust(widths[index])
            for index, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([table.title, line(table.columns), rule, *(line(row) for row in table.rows)])


def print_table(table: Table, *, plain: bool = False) -> None:
    """Print a table: with Rich when it is installed and `plain` is false, else as plain text.

    Rich never folds a cell: when standard output is not a terminal the table is printed at
    a width that fits it, so that logs and tests see each row on one line.

    Args:
        table: what to print.
        plain: force plain text.

    Raises:
        ValueError: a row does not have one cell per column.
    """
    for row in table.rows:
        if len(row) != len(table.columns):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(table.columns)} columns")
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table as RichTable
        except ImportError:
            plain = True
    if plain:
        print(_plain(table), flush=True)
        return
    rich_table = RichTable(title=table.title, title_justify="left")
    for index, column in enumerate(table.columns):
        rich_table.add_column(
            column, justify="right" if index in table.right_aligned else "left", no_wrap=True
        )
    for row in table.rows:
        rich_table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        widest = max(len(line) for line in _plain(table).splitlines())
        console = Console(width=max(widest + 4 * len(table.columns), 120))
    console.print(rich_table)
    sys.stdout.flush()
