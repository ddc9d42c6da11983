"""One benchmark script's figures for an earlier eventvault beside those of this working tree.

Usage:
    python benchmarks/compare_versions.py [--base REV] [--rounds N] [--json PATH]
                                          [--work-dir DIR] [--keep] [--plain]
                                          [--max-load LOAD [--max-wait SECONDS]]
                                          SCRIPT [-- SCRIPT_ARGS ...]

    python benchmarks/compare_versions.py bench_core.py
    python benchmarks/compare_versions.py --rounds 5 bench_aggregates.py -- --repeat 7
    python benchmarks/compare_versions.py bench_postgres.py -- --url postgresql://...

It checks REV (default c69a5d9, the commit before the store's internals were restructured) out
as a git worktree under `benchmarks/.work/`, then runs this tree's copy of SCRIPT 2N times: with
REV's `src` first on the import path (`PYTHONPATH`) and with this tree's `src`, the two taking
turns within each round and swapping which goes first from one round to the next, so that a busy
phase of the shared machine falls on both alike. Only eventvault changes between the two sides:
the script, its baselines, Python and every other package are the same. Each run writes its
figures as JSON (the script's `--json`) and the file it imported eventvault from, which must lie
in the tree it was given.

Per figure it prints the median of each side's runs with their range, the change of the median
in percent, in how many rounds the current side did worse than the base, and a verdict: `slower`
or `faster` when the two sides' ranges do not overlap (every run of one side beat every run of
the other), `noise` when they do, `-` with fewer than 3 rounds. With 3 rounds, two versions of equal
speed give disjoint ranges with a chance of 1 in 10 for each figure, so among some twenty
figures one or two come out `slower` or `faster` by chance: a figure that really dropped comes
out `slower` in every repeated comparison, not in one. The JSON (`--json`, by default beside the
runs' logs) keeps every run's figures and rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypedDict

from _common import Table, format_bytes, print_table, write_json

DEFAULT_BASE = "c69a5d9"
"""The commit before the store's internals were restructured (issue 9)."""

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent

MIN_ROUNDS = 3
"""Rounds needed for a verdict: with 2 runs a side, two versions of equal speed give disjoint
ranges one time in 3; with 3, one time in 10; with 5, one time in 126."""

Verdict = Literal["slower", "faster", "noise", "-"]
SideName = Literal["base", "current"]


class FigureRecord(TypedDict):
    """A figure as a script's JSON lists it (`_common.Figure`)."""

    key: str
    label: str
    value: float
    unit: str
    higher_is_better: bool
    samples: list[float]


class CompareError(Exception):
    """The comparison cannot run: an unknown revision, a failed run, the wrong tree imported."""


@dataclass(frozen=True, slots=True)
class Side:
    """One version of eventvault under comparison.

    Attributes:
        name: `base` or `current`.
        label: the revision, for people (`c69a5d9`, `ead92c7 + changes`).
        commit: the full commit id (for `current`, the working tree's HEAD).
        src: the folder put first on the import path.
    """

    name: SideName
    label: str
    commit: str
    src: Path


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the script with one side's eventvault.

    Attributes:
        round: the round, from 1.
        side: `base` or `current`.
        seconds: its wall-clock duration.
        load_before: the load average (1, 5, 15 minutes) as it started.
        load_after: the load average as it ended.
        imported: the file eventvault was imported from.
        figures: the script's figures, key to value.
    """

    round: int
    side: SideName
    seconds: float
    load_before: tuple[float, ...]
    load_after: tuple[float, ...]
    imported: str
    figures: dict[str, float]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure of both sides, round by round.

    Attributes:
        key: the figure's key in the script's JSON.
        label: what it measures.
        unit: its unit.
        higher_is_better: false for costs (memory).
        base: the base side's figure in each round.
        current: the current side's figure in each round.
    """

    key: str
    label: str
    unit: str
    higher_is_better: bool
    base: tuple[float, ...]
    current: tuple[float, ...]

    @property
    def change(self) -> float:
        """The current median over the base median, minus 1 (0.05 is 5 % higher)."""
        base = statistics.median(self.base)
        return statistics.median(self.current) / base - 1 if base else float("nan")

    def worse(self, current: float, base: float) -> bool:
        """Whether `current` is worse than `base` for this figure."""
        return current < base if self.higher_is_better else current > base

    @property
    def rounds_worse(self) -> int:
        """In how many rounds the current side did worse than the base side."""
        return sum(self.worse(now, then) for now, then in zip(self.current, self.base, strict=True))

    @property
    def verdict(self) -> Verdict:
        """`slower` or `faster` when every run of one side beat every run of the other, `noise`
        when the ranges overlap, `-` with fewer than `MIN_ROUNDS` rounds."""
        if min(len(self.base), len(self.current)) < MIN_ROUNDS:
            return "-"
        if all(self.worse(now, then) for now in self.current for then in self.base):
            return "slower"
        if all(self.worse(then, now) for now in self.current for then in self.base):
            return "faster"
        return "noise"


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
        )
    except FileNotFoundError as exc:
        raise CompareError("git is not installed") from exc
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)} in {cwd} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def base_tree(revision: str, work_dir: Path) -> tuple[Side, bool]:
    """A worktree of `revision` under `work_dir`: made now, or one left by an earlier run.

    Args:
        revision: any revision git knows (a commit id, a tag, `HEAD~3`).
        work_dir: the folder for the worktree.

    Returns:
        The base side, and whether the worktree was made now (and so is removed afterwards).

    Raises:
        CompareError: the revision is unknown, or the folder holds something else.
    """
    try:
        commit = _git(REPOSITORY, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except CompareError as exc:
        raise CompareError(
            f"revision {revision!r} is not a commit of {REPOSITORY} (a shallow clone? fetch "
            "it, or give another with --base)"
        ) from exc
    tree = work_dir / f"base-{commit[:12]}"
    side = Side("base", revision, commit, tree / "src")
    if tree.exists():
        if _git(tree, "rev-parse", "HEAD") != commit or _git(tree, "status", "--porcelain"):
            raise CompareError(
                f"{tree} is not a clean checkout of {commit}: remove it with "
                f"`git worktree remove --force {tree}`"
            )
        return side, False
    work_dir.mkdir(parents=True, exist_ok=True)
    _git(REPOSITORY, "worktree", "add", "--detach", str(tree), commit)
    return side, True


def current_tree() -> Side:
    """This working tree, uncommitted changes included."""
    commit = _git(REPOSITORY, "rev-parse", "HEAD")
    changed = bool(_git(REPOSITORY, "status", "--porcelain", "--", "src"))
    label = f"{commit[:7]}{' + changes' if changed else ''}"
    return Side("current", label, commit, REPOSITORY / "src")


def _load() -> tuple[float, ...]:
    try:
        return tuple(round(load, 2) for load in os.getloadavg())
    except OSError:
        return ()


def run_once(
    side: Side, round_number: int, script: Path, script_args: Sequence[str], runs_dir: Path
) -> tuple[Run, list[FigureRecord]]:
    """Run the script once with `side`'s eventvault first on the import path.

    Args:
        side: whose `src` to import.
        round_number: the round, from 1, for the names of the run's files.
        script: the benchmark script.
        script_args: its arguments (without `--json`).
        runs_dir: where the run's JSON and output go.

    Returns:
        The run, and its figures as the script described them (key, label, unit, ...).

    Raises:
        CompareError: the script failed or wrote no figures, or imported eventvault from
            somewhere other than `side.src`.
    """
    stem = runs_dir / f"{round_number:02d}-{side.name}"
    figures_path, log_path = stem.with_suffix(".json"), stem.with_suffix(".log")
    figures_path.unlink(missing_ok=True)
    inherited = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(side.src), inherited]))}
    command = [sys.executable, str(script), *script_args, "--json", str(figures_path)]
    load_before = _load()
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    # A script may exit 1 for a missed target (bench_aggregates); its figures still count.
    if done.returncode not in (0, 1) or not figures_path.is_file():
        tail = "".join(log_path.read_text(encoding="utf-8").splitlines(keepends=True)[-20:])
        raise CompareError(
            f"{script.name} with the {side.name} side ({side.label}) exited "
            f"{done.returncode}; the end of {log_path}:\n{tail}"
        )
    payload = json.loads(figures_path.read_text(encoding="utf-8"))
    described: list[FigureRecord] = payload["figures"]
    imported = str(payload.get("imported", {}).get("eventvault", ""))
    if not Path(imported).resolve().is_relative_to(side.src.resolve()):
        raise CompareError(
            f"the {side.name} run imported eventvault from {imported or 'nowhere known'}, not "
            f"from {side.src}: is eventvault installed so that PYTHONPATH cannot override it?"
        )
    return Run(
        round=round_number,
        side=side.name,
        seconds=round(seconds, 1),
        load_before=load_before,
        load_after=_load(),
        imported=imported,
        figures={figure["key"]: figure["value"] for figure in described},
    ), described


def compare(runs: Sequence[Run], described: Sequence[FigureRecord]) -> list[Comparison]:
    """Each figure of both sides, in the script's order.

    Args:
        runs: every run, both sides, in the order taken.
        described: the figures of one run as the script wrote them (key, label, unit,
            higher_is_better), for their descriptions.

    Returns:
        One comparison per figure that every run reported.
    """
    comparisons = []
    for figure in described:
        key = figure["key"]
        if not all(key in run.figures for run in runs):
            continue
        by_round = sorted(runs, key=lambda run: run.round)
        comparisons.append(
            Comparison(
                key=key,
                label=figure["label"],
                unit=figure["unit"],
                higher_is_better=figure["higher_is_better"],
                base=tuple(run.figures[key] for run in by_round if run.side == "base"),
                current=tuple(run.figures[key] for run in by_round if run.side == "current"),
            )
        )
    return comparisons


def _value(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "bytes":
        return format_bytes(value)
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _summary(values: Sequence[float], unit: str) -> str:
    median = _value(statistics.median(values), unit)
    if len(values) < 2:
        return median
    return f"{median} ({_value(min(values), unit)} to {_value(max(values), unit)})"


def table(comparisons: Sequence[Comparison], base: Side, current: Side) -> Table:
    """The comparison as a table: one row per figure."""
    rows = tuple(
        (
            item.label,
            item.unit,
            _summary(item.base, item.unit),
            _summary(item.current, item.unit),
            f"{item.change:+.1%}",
            f"{item.rounds_worse}/{len(item.current)}",
            item.verdict,
        )
        for item in comparisons
    )
    return Table(
        title=f"{base.label} (base) against {current.label} (current): medians and ranges",
        columns=("figure", "unit", "base", "current", "change", "worse in", "verdict"),
        rows=rows,
        right_aligned=frozenset({2, 3, 4, 5}),
    )


def wait_for_quiet(max_load: float, max_wait: float) -> float:
    """Wait until the 1-minute load average is at most `max_load`, or `max_wait` seconds.

    A shared machine's load comes and goes; a round that starts in a quiet moment is less
    likely to be disturbed half-way, and both its runs are.

    Returns:
        The seconds waited.
    """
    start = time.monotonic()
    while True:
        load = _load()
        waited = time.monotonic() - start
        if not load or load[0] <= max_load or waited >= max_wait:
            return waited
        print(f"load {load[0]:.2f} > {max_load}: waiting ({waited:.0f} s so far)", flush=True)
        time.sleep(min(15.0, max_wait - waited))


def _first(load: tuple[float, ...]) -> str:
    return f"{load[0]:.2f}" if load else "?"


def _resolve_script(name: str) -> Path:
    for candidate in (Path(name), BENCHMARKS / name):
        if candidate.is_file():
            return candidate.resolve()
    raise CompareError(f"no benchmark script {name!r} (looked in . and {BENCHMARKS})")


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    own, script_args = list(argv), []
    if "--" in own:
        cut = own.index("--")
        own, script_args = own[:cut], own[cut + 1 :]
    parser = argparse.ArgumentParser(
        description="A benchmark's figures for an earlier eventvault beside this tree's.",
        epilog="Arguments after -- go to the script.",
    )
    parser.add_argument("script", help="a benchmark script: bench_core.py, bench_aggregates.py…")
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help=f"the revision to compare with ({DEFAULT_BASE})"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--json", metavar="PATH", help="where to write the comparison as JSON")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=BENCHMARKS / ".work",
        help="where the base's worktree and the runs' files go (default benchmarks/.work)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the base's worktree for the next comparison"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        metavar="LOAD",
        help="before each round, wait until the 1-minute load average is at most LOAD",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=900,
        metavar="SECONDS",
        help="how long a round waits for --max-load before it runs anyway (default 900)",
    )
    parser.add_argument("--plain", action="store_true", help="plain-text table, without Rich")
    args = parser.parse_args(own)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.max_load is not None and args.max_load <= 0:
        parser.error("--max-load must be above 0")
    if any(arg == "--json" or arg.startswith("--json=") for arg in script_args):
        parser.error("the comparison gives the script its own --json; leave it out")
    return args, script_args


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: see the module's docstring.

    Args:
        argv: the arguments; None for `sys.argv[1:]`.

    Returns:
        The exit status: 0, or 2 when the comparison cannot run.
    """
    args, script_args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args, script_args)
    except CompareError as exc:
        print(f"compare_versions: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace, script_args: list[str]) -> int:
    script = _resolve_script(args.script)
    work_dir = args.work_dir.resolve()
    current = current_tree()
    base, made = base_tree(args.base, work_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_dir = work_dir / "runs" / f"{stamp}-{script.stem}"
    runs_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{script.name} {' '.join(script_args)}: {base.label} ({base.commit[:12]}, {base.src}) "
        f"against {current.label} ({current.src}), {args.rounds} rounds; output in {runs_dir}",
        flush=True,
    )
    runs: list[Run] = []
    described: list[FigureRecord] = []
    try:
        for index in range(args.rounds):
            if args.max_load is not None:
                wait_for_quiet(args.max_load, args.max_wait)
            # The side that runs first swaps from round to round.
            order = (base, current) if index % 2 == 0 else (current, base)
            for side in order:
                run, described = run_once(side, index + 1, script, script_args, runs_dir)
                runs.append(run)
                print(
                    f"round {index + 1}/{args.rounds} {side.name:<7} {run.seconds:6.1f} s, "
                    f"load {_first(run.load_before)} -> {_first(run.load_after)}, "
                    f"eventvault from {run.imported}",
                    flush=True,
                )
    finally:
        if made and not args.keep:
            _git(REPOSITORY, "worktree", "remove", "--force", str(base.src.parent))
    comparisons = compare(runs, described)
    print_table(table(comparisons, base, current), plain=args.plain)
    verdicts = [item.verdict for item in comparisons]
    print(
        f"{len(comparisons)} figures: {verdicts.count('slower')} slower, "
        f"{verdicts.count('faster')} faster, {verdicts.count('noise')} within the noise "
        "(slower/faster: the two sides' ranges do not overlap)",
        flush=True,
    )
    target = Path(args.json) if args.json else runs_dir / "comparison.json"
    write_json(
        target,
        {
            "script": script.name,
            "script_args": script_args,
            "rounds": args.rounds,
            "base": {**asdict(base), "src": str(base.src)},
            "current": {**asdict(current), "src": str(current.src)},
            "runs": [asdict(run) for run in runs],
            "figures": [
                {
                    **asdict(item),
                    "change": item.change,
                    "rounds_worse": item.rounds_worse,
                    "verdict": item.verdict,
                }
                for item in comparisons
            ],
        },
    )
    print(f"comparison written to {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
