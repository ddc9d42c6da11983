"""How `eventvault` is started: the console script, `python -m`, `--version` and `--help`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import eventvault

from .cli_harness import Cli

COMMANDS = ["append", "read", "log", "streams", "stats", "export", "import", "copy", "migrate"]


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "EVENTVAULT_URL"}
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
    )


def test_python_m_eventvault_cli_appends_and_reads(tmp_path: Path) -> None:
    python = (sys.executable, "-m", "eventvault.cli")
    appended = run(
        *python, "append", "account-1", "AccountOpened", '{"owner": "Ada"}', cwd=tmp_path
    )
    assert appended.returncode == 0, appended.stderr
    assert "global position 1" in appended.stdout
    read = run(*python, "read", "account-1", "--json", cwd=tmp_path)
    assert '"owner":"Ada"' in read.stdout
    assert (tmp_path / "eventvault.db").exists()


def test_python_m_eventvault_cli_reports_an_error_with_its_exit_code(tmp_path: Path) -> None:
    result = run(sys.executable, "-m", "eventvault.cli", "read", "account-1", cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr.startswith("error: no eventvault store at './eventvault.db'")
    assert "Traceback" not in result.stderr


def test_a_stream_name_that_is_not_utf8_on_the_command_line_exits_2(tmp_path: Path) -> None:
    # A byte that is not UTF-8 reaches Python as a lone surrogate, which no engine can store.
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"eventvault.cli", b"append", b"account-\xff", b"Opened"],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert b"lone surrogates" in result.stderr
    assert b"Traceback" not in result.stderr


def test_console_script_prints_the_version(tmp_path: Path) -> None:
    script = shutil.which("eventvault") or str(Path(sys.executable).parent / "eventvault")
    if not Path(script).exists():
        pytest.skip("the eventvault console script is not installed")
    result = run(script, "--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"eventvault {eventvault.__version__}"


def test_version_option_prints_the_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"eventvault {eventvault.__version__}"


def test_help_of_the_app_lists_every_command_with_an_example(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    for command in COMMANDS:
        assert f" {command} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command_explains_it_with_an_example(cli: Cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"eventvault {command}" in result.stdout
    assert "Args:" not in result.stdout


def test_an_unknown_command_is_a_usage_error(cli: Cli) -> None:
    assert cli("delete-everything").exit_code == 2
