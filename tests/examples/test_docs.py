"""The tutorial's code blocks run, in order, as one program, and print what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def test_the_tutorial_runs_from_top_to_bottom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(DOCS / "tutorial.md")
    assert len(blocks) > 10
    namespace: dict[str, object] = {"__name__": "tutorial"}
    for block in blocks:
        exec(compile(block, "docs/tutorial.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "0 CartCreated {'customer': 'ada'}" in out
    assert "conflict: stream 'cart-2'" in out
    assert "{'book': 1500, 'pen': 200, 'lamp': 3000}" in out
    assert "250 250" in out
    assert (tmp_path / "tutorial.db").exists()


def test_the_testing_how_to_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "howto"}
    for block in _python_blocks(DOCS / "howto-testing-aggregates.md"):
        exec(compile(block, "docs/howto-testing-aggregates.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        assert callable(test)
        test()


def test_the_projections_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "projections_guide"}
    blocks = _python_blocks(DOCS / "projections.md")
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "docs/projections.md", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        assert callable(test)
        test()
