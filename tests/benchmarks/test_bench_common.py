"""The shared helpers of the benchmark scripts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _common


def test_interleave_rotates_the_order_of_contenders_from_round_to_round() -> None:
    order: list[str] = []

    def contender(name: str) -> Callable[[], float]:
        def sample() -> float:
            order.append(name)
            return 1.0

        return sample

    _common.interleave({"a": contender("a"), "b": contender("b"), "c": contender("c")}, 3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_interleave_returns_every_sample_of_each_contender_in_order() -> None:
    values = iter([1.0, 2.0, 3.0, 4.0])
    samples = _common.interleave({"a": lambda: next(values), "b": lambda: next(values)}, 2)
    assert samples == {"a": [1.0, 4.0], "b": [2.0, 3.0]}


def test_interleave_refuses_zero_rounds() -> None:
    with pytest.raises(ValueError, match="rounds"):
        _common.interleave({"a": lambda: 1.0}, 0)


def test_summarize_best_is_the_highest_sample() -> None:
    assert _common.summarize([3.0, 9.0, 5.0], "best") == 9.0


def test_summarize_median_is_the_middle_sample() -> None:
    assert _common.summarize([3.0, 9.0, 5.0], "median") == 5.0


def test_summarize_refuses_no_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        _common.summarize([], "best")


def test_bench_dir_is_removed_after_use(tmp_path: Path) -> None:
    with _common.bench_dir("x-", str(tmp_path), allow_memory_fs=True) as path:
        (path / "file.db").write_bytes(b"data")
        assert path.parent == tmp_path
    assert not path.exists()


def test_bench_dir_refuses_a_memory_file_system(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_common, "filesystem_type", lambda path: "tmpfs")
    with (
        pytest.raises(_common.BenchmarkSetupError, match="tmpfs"),
        _common.bench_dir("x-", str(tmp_path)),
    ):
        pass


def test_filesystem_type_of_the_root_is_known() -> None:
    if not Path("/proc/mounts").exists():
        pytest.skip("needs /proc/mounts")
    assert _common.filesystem_type("/")


def test_plain_table_aligns_numbers_right(capsys: pytest.CaptureFixture[str]) -> None:
    table = _common.Table(
        title="t",
        columns=("name", "rate"),
        rows=(("a", "1"), ("bb", "100")),
        right_aligned=frozenset({1}),
    )
    _common.print_table(table, plain=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == "a        1"
    assert lines[4] == "bb     100"


def test_print_table_refuses_a_row_of_the_wrong_length() -> None:
    table = _common.Table(title="t", columns=("a", "b"), rows=(("only one",),))
    with pytest.raises(ValueError, match="cells"):
        _common.print_table(table, plain=True)
