"""The layers of DESIGN.md section 2 are a checked rule: `lint-imports` (in scripts/check)
passes on the tree, and fails, naming the rule, on each kind of violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(source_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_layer_contract() -> None:
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("aggregates/registry.py", "import sqlite3", "Features reach storage only through"),
        ("aggregates/repository.py", "import psycopg", "Features reach storage only through"),
        (
            "aggregates/aggregate.py",
            "from eventvault.store.sqlite import SQLiteEventStore",
            "Features reach storage only through",
        ),
        (
            "aggregates/snapshots.py",
            "from eventvault.store.postgres import _writer",
            "Features reach storage only through",
        ),
        ("projections/runner.py", "import sqlite3", "Features reach storage only through"),
        (
            "projections/state.py",
            "from eventvault.store.postgres import database",
            "Features reach storage only through",
        ),
        ("aggregates/registry.py", "import eventvault.projections", "Layers"),
        ("store/base.py", "import eventvault.aggregates", "Layers"),
        ("store/seam.py", "import eventvault.cli.app", "Layers"),
        ("errors.py", "import eventvault.serialization", "Layers"),
        ("store/base.py", "from eventvault.store.memory import MemoryEventStore", "name no engine"),
    ],
)
def test_a_deliberate_violation_fails_the_check_naming_the_rule(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(ROOT / "src" / "eventvault", tmp_path / "eventvault")
    target = tmp_path / "eventvault" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    broken_section = result.stdout.split("Broken contracts", 1)[1]
    assert broken in broken_section
