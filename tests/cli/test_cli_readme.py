"""The README's "The command line" section runs as written, after the bank example of its "Two
commands" section, from the same folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cli_harness import Cli, head

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PLACEHOLDER = "postgresql://app@db.internal/bank"
"""The README's PostgreSQL URL: the reader puts their server's; the test puts the test server's."""


def command_line_section() -> list[str]:
    """The commands of the console block of README's "The command line", comments removed."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## The command line", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```console\n(.*?)```", section, flags=re.S)
    return [line[2:].split("  #", 1)[0].strip() for line in block.splitlines()]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The test server's URL, with a schema of its own, dropped afterwards."""
    server = os.environ.get("EVENTVAULT_TEST_POSTGRES_URL")
    if server is None:
        if os.environ.get("EVENTVAULT_REQUIRE_POSTGRES"):
            pytest.fail(
                "EVENTVAULT_REQUIRE_POSTGRES is set but EVENTVAULT_TEST_POSTGRES_URL is not"
            )
        pytest.skip("set EVENTVAULT_TEST_POSTGRES_URL to run the README's copy to PostgreSQL")
    schema = f"ev_readme_{uuid.uuid4().hex[:12]}"
    yield f"{server}{'&' if '?' in server else '?'}schema={schema}"
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_the_command_line_section_runs_as_written_after_the_bank_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "EVENTVAULT_URL"}
    bank = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bank" / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bank.returncode == 0, bank.stderr
    assert (tmp_path / "eventvault.db").is_file()
    monkeypatch.chdir(tmp_path)
    cli = Cli()
    commands = command_line_section()
    assert [c for c in commands if "--follow" in c] == ["eventvault log --follow"]
    for command in commands:
        if "--follow" in command:
            continue  # it tails the log until interrupted; test_cli_follow.py covers it
        argv = shlex.split(command.replace(PLACEHOLDER, postgres_url))
        assert argv[0] == "eventvault"
        result = cli(*argv[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"
    events = head("eventvault.db")
    assert events > 0
    assert head("restored.db") == events
    assert head(postgres_url) == events
