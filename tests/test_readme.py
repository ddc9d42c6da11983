"""The README's quickstart runs as written, and its set-up commands are the two promised ones.

Every ```python block of README.md is executed in order, in one namespace, in a fresh working
directory, so the quickstart cannot drift from the code. Blocks marked ```python no-test are
shown to readers but not run.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from eventvault import EventStore, Subscription

README = Path(__file__).resolve().parent.parent / "README.md"

SETUP_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[cli]' "
    "&& .venv/bin/python examples/bank/app.py",
    "bash scripts/test",
]

_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a Markdown text.

    Attributes:
        language: the first word of the fence's info string (`python`, `bash`, ...).
        flags: the further words of the info string (`no-test`).
        body: the block's text.
        line: the 1-based line of the opening fence.
    """

    language: str
    flags: tuple[str, ...]
    body: str
    line: int


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block of a Markdown text, in order.

    Args:
        markdown: the text.

    Returns:
        The blocks, each with its language, flags, body and line number.
    """
    blocks = []
    for match in _FENCE.finditer(markdown):
        words = match.group("info").split()
        line = markdown.count("\n", 0, match.start()) + 1
        language = words[0] if words else ""
        blocks.append(CodeBlock(language, tuple(words[1:]), match.group("body"), line))
    return blocks


def runnable_python(blocks: list[CodeBlock]) -> list[CodeBlock]:
    """The ```python blocks that are not marked no-test, in order."""
    return [b for b in blocks if b.language == "python" and "no-test" not in b.flags]


def run_blocks(blocks: list[CodeBlock], namespace: dict[str, object]) -> None:
    """Execute blocks in order in one namespace, naming the block that failed.

    Args:
        blocks: the blocks to run.
        namespace: the globals they share.

    Raises:
        AssertionError: a block raised; the message gives its line and the exception.
    """
    for block in blocks:
        code = compile(block.body, f"README.md:{block.line}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            raise AssertionError(
                f"README.md block at line {block.line} failed: {type(exc).__name__}: {exc}"
            ) from exc


def _close_stores(namespace: dict[str, object]) -> None:
    """Close what a failed block may have left open, so that no thread keeps waiting."""
    for value in namespace.values():
        if isinstance(value, (EventStore, Subscription)):
            value.close()


def test_readme_python_blocks_run_in_order_in_a_fresh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = runnable_python(code_blocks(README.read_text(encoding="utf-8")))
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        run_blocks(blocks, namespace)
    finally:
        _close_stores(namespace)


def test_readme_quickstart_writes_its_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = runnable_python(code_blocks(README.read_text(encoding="utf-8")))
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        run_blocks(blocks, namespace)
    finally:
        _close_stores(namespace)
    assert (tmp_path / "quickstart.db").is_file()


def test_readme_has_several_python_blocks_to_run() -> None:
    blocks = runnable_python(code_blocks(README.read_text(encoding="utf-8")))
    assert len(blocks) >= 5


def test_readme_lists_exactly_the_two_setup_commands_each_in_its_own_bash_block() -> None:
    blocks = code_blocks(README.read_text(encoding="utf-8"))
    bash = [block.body.strip() for block in blocks if block.language == "bash"]
    assert bash == SETUP_COMMANDS


def test_code_blocks_reads_language_flags_body_and_line() -> None:
    text = "intro\n\n```python no-test\nx = 1\n```\n\n```bash\nls\n```\n"
    assert code_blocks(text) == [
        CodeBlock("python", ("no-test",), "x = 1\n", 3),
        CodeBlock("bash", (), "ls\n", 7),
    ]


def test_runnable_python_skips_blocks_marked_no_test_and_other_languages() -> None:
    text = textwrap.dedent(
        """\
        ```python
        a = 1
        ```
        ```python no-test
        raise SystemExit
        ```
        ```console
        $ eventvault log
        ```
        ```python
        b = a + 1
        ```
        """
    )
    assert [b.body for b in runnable_python(code_blocks(text))] == ["a = 1\n", "b = a + 1\n"]


def test_run_blocks_shares_one_namespace_between_blocks_in_order() -> None:
    blocks = runnable_python(code_blocks("```python\na = 2\n```\n```python\nb = a * 3\n```\n"))
    namespace: dict[str, object] = {}
    run_blocks(blocks, namespace)
    assert namespace["b"] == 6


def test_run_blocks_fails_naming_the_line_of_a_block_that_raises() -> None:
    text = "# title\n\n```python\nok = True\n```\n\n```python\nraise ValueError('boom')\n```\n"
    blocks = runnable_python(code_blocks(text))
    with pytest.raises(AssertionError, match=r"line 7 failed: ValueError: boom"):
        run_blocks(blocks, {})
