"""Progress bars on stderr for the commands that move whole logs: export, import, copy.

The bar is drawn only when stderr is a terminal, so logs and pipes get the one-line summary each
command prints at the end, not the frames of an animation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from eventvault.cli.render import stderr_console

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar:
    """One task's bar: how far the work is, and how many events it has handled.

    Args:
        progress: the Rich progress display that draws it.
        task: the task's id in that display.
    """

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def update(self, *, completed: int | None = None, events: int | None = None) -> None:
        """Move the bar.

        Args:
            completed: how much of the total is done, in the bar's unit (global positions or
                bytes).
            events: how many events were handled so far.
        """
        if events is None:
            self._progress.update(self._task, completed=completed)
        else:
            self._progress.update(self._task, completed=completed, events=events)

    def events(self, count: int) -> None:
        """Show how many events were handled so far: an `on_progress` callback of the store.

        Args:
            count: the number of events.
        """
        self.update(events=count)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, *, start: int = 0) -> Iterator[ProgressBar]:
    """Show a progress bar on stderr while the block runs.

    Args:
        description: what is being done (`exporting`, `importing data.jsonl`).
        total: where the bar is full, in its unit; None for work of unknown size (a pipe).
        start: where the bar starts (the position an export starts after).

    Returns:
        A context manager giving the `ProgressBar` to move.
    """
    console = stderr_console()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[events]} events"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total, completed=start, events=0)
        yield ProgressBar(progress, task)
