"""compare_versions.py runs a benchmark with an earlier eventvault and with this tree's, in turns.

The end-to-end test compares HEAD with the working tree on tiny sizes: it checks the method
(each side imports its own tree, the sides alternate, every figure has a value per run), not
any speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import compare_versions
from compare_versions import BENCHMARKS, REPOSITORY, CompareError, Comparison, Side


def _in_a_git_checkout() -> bool:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=REPOSITORY,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        return False
    return done.returncode == 0


needs_git = pytest.mark.skipif(not _in_a_git_checkout(), reason="needs a git checkout")


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "compare_versions.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _worktrees() -> str:
    return subprocess.run(
        ["git", "worktree", "list", "--porcelain"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@needs_git
def test_each_side_runs_from_its_own_tree_taking_turns_and_every_figure_is_compared(
    tmp_path: Path,
) -> None:
    work, out = tmp_path / "work", tmp_path / "comparison.json"
    done = _compare(
        "--base", "HEAD", "--rounds", "2", "--work-dir", str(work), "--json", str(out), "--plain",
        "bench_aggregates.py", "--",
        "--events", "20", "--repeat", "1", "--saves", "4", "--threads", "2",
        "--dir", str(tmp_path), "--allow-tmpfs",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    payload = json.loads(out.read_text(encoding="utf-8"))
    runs = payload["runs"]
    assert [(run["round"], run["side"]) for run in runs] == [
        (1, "base"),
        (1, "current"),
        (2, "current"),
        (2, "base"),
    ]
    base_src = Path(payload["base"]["src"])
    assert base_src.is_relative_to(work)
    for run in runs:
        tree = base_src if run["side"] == "base" else REPOSITORY / "src"
        assert Path(run["imported"]) == tree / "eventvault" / "__init__.py"
        assert run["imported"] in done.stdout
    keys = {figure["key"] for figure in payload["figures"]}
    assert {"a_ev", "a_es", "a_raw", "a_ev/raw", "b_ev", "c_ev", "c_ev/es", "c1_ev", "d_ev"} <= keys
    for figure in payload["figures"]:
        assert len(figure["base"]) == len(figure["current"]) == 2
        assert figure["verdict"] == "-"  # two rounds are too few to judge
    assert "(a) load, no snapshot: eventvault" in done.stdout
    # The worktree it made is gone, from the folder and from git's list.
    assert not base_src.parent.exists()
    assert str(base_src.parent) not in _worktrees()


@needs_git
def test_an_unknown_base_revision_is_refused_naming_it(tmp_path: Path) -> None:
    done = _compare("--base", "no-such-revision", "--work-dir", str(tmp_path), "bench_core.py")
    assert done.returncode == 2
    assert "'no-such-revision' is not a commit" in done.stderr
    assert not any(tmp_path.iterdir())


def test_a_json_argument_for_the_script_is_refused() -> None:
    done = _compare("bench_core.py", "--", "--quick", "--json", "x.json")
    assert done.returncode == 2
    assert "leave it out" in done.stderr


def test_an_unknown_script_is_refused() -> None:
    done = _compare("bench_nothing.py")
    assert done.returncode == 2
    assert "no benchmark script 'bench_nothing.py'" in done.stderr


def test_a_run_that_imports_eventvault_from_another_tree_is_refused(tmp_path: Path) -> None:
    # The side's src holds no eventvault, so the script finds the installed one instead.
    script = tmp_path / "bench_fake.py"
    script.write_text(
        "import json, sys, eventvault\n"
        "with open(sys.argv[-1], 'w') as out:\n"
        "    json.dump({'imported': {'eventvault': eventvault.__file__}, 'figures': []}, out)\n",
        encoding="utf-8",
    )
    side = Side("base", "empty", "0" * 40, tmp_path / "src")
    (tmp_path / "src").mkdir()
    with pytest.raises(CompareError, match=r"imported eventvault from .*, not from"):
        compare_versions.run_once(side, 1, script, [], tmp_path)


def test_a_failing_run_is_reported_with_the_end_of_its_output(tmp_path: Path) -> None:
    script = tmp_path / "bench_fails.py"
    script.write_text("raise SystemExit('the disk is on fire')\n", encoding="utf-8")
    side = Side("current", "here", "0" * 40, REPOSITORY / "src")
    with pytest.raises(CompareError, match=r"(?s)exited 1.*the disk is on fire"):
        compare_versions.run_once(side, 1, script, [], tmp_path)


def _rates(base: tuple[float, ...], current: tuple[float, ...], higher: bool = True) -> Comparison:
    return Comparison("k", "a figure", "ev/s", higher, base, current)


def test_a_figure_is_slower_only_when_every_current_run_is_below_every_base_run() -> None:
    assert _rates((100, 102, 101), (97, 99, 98)).verdict == "slower"
    assert _rates((100, 102, 101), (97, 100.5, 98)).verdict == "noise"
    assert _rates((100, 102, 101), (103, 104, 110)).verdict == "faster"


def test_a_cost_is_slower_when_it_grows() -> None:
    assert _rates((10, 11, 12), (13, 14, 15), higher=False).verdict == "slower"
    assert _rates((10, 11, 12), (13, 14, 15), higher=True).verdict == "faster"


def test_fewer_than_three_rounds_give_no_verdict() -> None:
    assert _rates((100, 101), (50, 51)).verdict == "-"


def test_the_change_is_between_medians_and_worse_rounds_are_counted_in_pairs() -> None:
    comparison = _rates((100, 200, 110), (90, 210, 99))
    assert comparison.change == pytest.approx(99 / 110 - 1)
    assert comparison.rounds_worse == 2
