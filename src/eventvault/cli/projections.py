"""`eventvault projections ...`: run, watch, rebuild and repair an application's projections.

The commands need the application's projections: `--module myapp.projections` (or
`EVENTVAULT_PROJECTIONS`) names a module whose `PROJECTIONS` list holds them (instances, or
classes made without arguments); `--module myapp.reports:ALL` names another attribute. The
current directory is importable, as with `python -m`.
"""

from __future__ import annotations

import getpass
import importlib
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Final

import msgspec
import typer
from rich import box
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from eventvault.cli.errors import CommandLineError, reporting_errors
from eventvault.cli.options import JsonOutput, StoreURL
from eventvault.cli.render import stderr_console, stdout_console
from eventvault.cli.stores import DEFAULT_URL, open_store
from eventvault.errors import UnknownProjectionError
from eventvault.projections import (
    DEFAULT_LEASE_SECONDS,
    Projection,
    ProjectionBase,
    ProjectionRunner,
    ProjectionState,
    ProjectionStatus,
    StatusReader,
)
from eventvault.projections import (
    reset as reset_projection,
)
from eventvault.projections import (
    retry as retry_projection,
)
from eventvault.projections import (
    skip as skip_projection,
)
from eventvault.store.base import EventStore

__all__ = ["app", "load_projections"]

MODULE_ENV: Final = "EVENTVAULT_PROJECTIONS"
"""The environment variable that names the module of projections when `--module` is not given."""
DEFAULT_ATTRIBUTE: Final = "PROJECTIONS"

app = typer.Typer(
    name="projections",
    help=(
        "Read models kept current from the log: run them, watch their health, rebuild and "
        "repair them.\n\n"
        "Every command needs the application's projections: --module myapp.projections (or "
        f"{MODULE_ENV}) names a module whose PROJECTIONS list holds them.\n\n"
        "Example:\n\n"
        "    eventvault projections run --module bank.projections\n\n"
        "    eventvault projections status --module bank.projections --watch"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Module = Annotated[
    str,
    typer.Option(
        "--module",
        "-m",
        envvar=MODULE_ENV,
        show_envvar=True,
        help="The module of the application's projections: package.module (its PROJECTIONS "
        "list) or package.module:ATTRIBUTE.",
    ),
]
Names = Annotated[
    list[str] | None,
    typer.Argument(metavar="[NAME]...", help="Only these projections (default: all)."),
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The projection's name.")]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")
]

_STATE_STYLES: Final = {
    ProjectionState.LIVE: "green",
    ProjectionState.CATCHING_UP: "yellow",
    ProjectionState.RUNNING: "yellow",
    ProjectionState.STOPPED: "dim",
    ProjectionState.FAILED: "bold red",
}


def load_projections(module: str) -> list[ProjectionBase]:
    """The projections a module lists.

    Args:
        module: `package.module` (its `PROJECTIONS`) or `package.module:ATTRIBUTE`.

    Returns:
        Projection instances, in the module's order.

    Raises:
        CommandLineError: the module cannot be imported, or lists no projections.
    """
    path, _, attribute = module.partition(":")
    attribute = attribute or DEFAULT_ATTRIBUTE
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        loaded = importlib.import_module(path)
    except ImportError as exc:
        raise CommandLineError(
            "--module",
            f"cannot import {path!r}: {exc}",
            hint="run from the folder your application imports from, or set PYTHONPATH",
        ) from exc
    listed = getattr(loaded, attribute, None)
    if isinstance(listed, str) or not isinstance(listed, Sequence) or not listed:
        raise CommandLineError(
            "--module",
            f"{path!r} has no {attribute} list of projections",
            hint=f"add {attribute} = [MyProjection(), ...] to the module, or name the list "
            "with --module module:ATTRIBUTE",
        )
    projections: list[ProjectionBase] = []
    for item in listed:
        if isinstance(item, type) and issubclass(item, ProjectionBase):
            item = item()
        if not isinstance(item, ProjectionBase):
            raise CommandLineError(
                "--module", f"{path}.{attribute} holds {item!r}, which is not a projection"
            )
        projections.append(item)
    return projections


def _select(projections: list[ProjectionBase], names: Sequence[str] | None) -> list[ProjectionBase]:
    if not names:
        return projections
    by_name = {p.name: p for p in projections}
    for name in names:
        if name not in by_name:
            raise UnknownProjectionError(name, sorted(by_name))
    return [by_name[name] for name in names]


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def status_table(statuses: Sequence[ProjectionStatus]) -> Table:
    """The status of projections as a table: one row each, the error beneath a failed one.

    Args:
        statuses: the statuses.

    Returns:
        The table.
    """
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("projection", style="bold", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("state", no_wrap=True)
    table.add_column("checkpoint", justify="right", style="cyan")
    table.add_column("lag", justify="right")
    table.add_column("lag time", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("ETA", justify="right")
    table.add_column("owner", style="dim")
    for status in statuses:
        version = str(status.version)
        if status.active_version not in (None, status.version):
            version += f" (queries: {status.active_version})"
        table.add_row(
            status.name,
            version,
            Text(status.state.value, style=_STATE_STYLES[status.state]),
            str(status.checkpoint),
            f"{status.lag_events:,}",
            _duration(status.lag_seconds) if status.lag_events else "-",
            f"{status.events_per_second:,.0f}" if status.events_per_second else "-",
            _duration(status.eta_seconds),
            status.owner or "-",
        )
        if status.failure is None and status.runner_error is not None:
            table.add_row(
                "", "", Text(f"runner: {status.runner_error}", style="yellow"), end_section=True
            )
        if status.failure is not None:
            failure = status.failure
            table.add_row(
                "",
                "",
                Text(
                    f"stopped at {failure.stream_name}@{failure.stream_position} (global "
                    f"{failure.global_position}, {failure.event_type}): {failure.error}",
                    style="red",
                ),
                end_section=True,
            )
    return table


def _print_json(statuses: Sequence[ProjectionStatus]) -> None:
    out = typer.get_binary_stream("stdout")
    for status in statuses:
        out.write(msgspec.json.encode(status.to_dict()) + b"\n")
    out.flush()


@contextmanager
def _opened(
    url: str, module: str, names: Sequence[str] | None
) -> Iterator[tuple[EventStore, list[ProjectionBase]]]:
    projections = _select(load_projections(module), names)
    with open_store(url, read_only=False, must_exist=True) as store:
        yield store, projections


def list_(module: Module, url: StoreURL = DEFAULT_URL) -> None:
    """List the application's projections: version, kind, events handled, where they live.

    Example:

        eventvault projections list --module bank.projections
    \f
    Args:
        module: the module of projections.
        url: the store.
    """
    projections = load_projections(module)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("projection", "version", "kind", "handles", "categories", "read model in"):
        table.add_column(column, style="bold" if column == "projection" else None)
    for projection in projections:
        where = "-"
        if isinstance(projection, Projection):
            where = projection.database or f"the store ({', '.join(projection.tables)})"
        table.add_row(
            projection.name,
            str(projection.version),
            "projection" if isinstance(projection, Projection) else "sink",
            ", ".join(projection.event_types),
            ", ".join(projection.categories) or "all",
            where,
        )
    stdout_console().print(table)


def status(
    module: Module,
    names: Names = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh the table until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between refreshes (--watch).")
    ] = 1.0,
    json_output: JsonOutput = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show each projection's health: state, lag, rate, owner, the error it stopped at.

    Columns: state, checkpoint, lag in events and in time, events per second, ETA, owner; a
    failed projection's event and error beneath it. States: running (a runner holds it, starting), catching up, live, stopped (no runner holds
    it), failed (see `retry` and `skip`). Any process can ask; the figures come from the
    database.

    Example:

        eventvault projections status --module bank.projections --watch
    \f
    Args:
        module: the module of projections.
        names: only these projections.
        watch: refresh until Ctrl-C.
        interval: seconds between refreshes.
        json_output: JSON Lines.
        url: the store.
    """
    with (
        _opened(url, module, names) as (store, projections),
        StatusReader(store, projections) as reader,
    ):
        if json_output:
            _print_json(reader.read())
            return
        if not watch:
            stdout_console().print(status_table(reader.read()))
            return
        with Live(
            status_table(reader.read()), console=stdout_console(), auto_refresh=False
        ) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(status_table(reader.read()), refresh=True)
            except KeyboardInterrupt:
                return


def run(
    module: Module,
    names: Names = None,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            min=0.5,
            help="Seconds a lease lasts unrenewed: another runner takes over a projection "
            "this long after this one dies.",
        ),
    ] = DEFAULT_LEASE_SECONDS,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Keep projections current until SIGTERM or Ctrl-C (each stops after its current batch).

    Run as many as you like, on one machine or several (PostgreSQL): each projection is applied
    by one runner at a time, and another takes over within about --lease seconds when it dies.
    On a terminal the status table refreshes on stderr; otherwise events are logged.

    Example:

        eventvault projections run --module bank.projections --url postgresql://app@db/bank
    \f
    Args:
        module: the module of projections.
        names: only these projections.
        lease: the lease's length in seconds.
        url: the store.
    """
    import logging

    console = stderr_console()
    if not console.is_terminal:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with _opened(url, module, names) as (store, projections):
        runner = ProjectionRunner(store, projections, lease_seconds=lease)
        if not console.is_terminal:
            runner.run()
            return
        runner.start()
        reader = StatusReader(store, projections, databases=runner.databases)
        try:
            with Live(status_table(reader.read()), console=console, auto_refresh=False) as live:
                while not runner.stopping:
                    time.sleep(1.0)
                    live.update(status_table(reader.read()), refresh=True)
        except KeyboardInterrupt:
            pass
        finally:
            runner.stop()
            runner.join()
        console.print("stopped after the current batch")


def _confirm(yes: bool, question: str) -> None:
    if not yes and not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def reset(module: Module, name: Name, yes: Yes = False, url: StoreURL = DEFAULT_URL) -> None:
    """Empty a projection's tables and move its checkpoint back to the start of the log.

    Queries see the tables empty until a runner has applied the log again (downtime); for a
    rebuild without downtime, deploy a new version of the projection instead. A running
    runner notices and starts over.

    Example:

        eventvault projections reset balances --module bank.projections --yes
    \f
    Args:
        module: the module of projections.
        name: the projection.
        yes: do not ask.
        url: the store.
    """
    with _opened(url, module, [name]) as (store, [projection]):
        _confirm(yes, f"empty the read model of {projection.describe()}?")
        with StatusReader(store, [projection]) as reader:
            before = reset_projection(reader.database_for(projection), projection, actor=_actor())
        stdout_console().print(f"{projection.describe()}: reset (its checkpoint was {before})")


def rebuild(module: Module, name: Name, yes: Yes = False, url: StoreURL = DEFAULT_URL) -> None:
    """Reset a projection, then apply the whole log to it now, with progress and an ETA.

    The read model is empty until the rebuild ends (downtime); for a rebuild without downtime,
    deploy a new version of the projection instead. If another runner holds the projection, it
    rebuilds it and this command shows its progress.

    Example:

        eventvault projections rebuild daily-totals --module bank.projections --yes
    \f
    Args:
        module: the module of projections.
        name: the projection.
        yes: do not ask.
        url: the store.
    """
    with _opened(url, module, [name]) as (store, [projection]):
        _confirm(yes, f"rebuild {projection.describe()} from the start of the log?")
        runner = ProjectionRunner(store, [projection])
        runner.start()
        reader = StatusReader(store, [projection], databases=runner.databases)
        try:
            reset_projection(reader.database_for(projection), projection, actor=_actor())
            target = store.head_position()
            progress = Progress(
                TextColumn("{task.description}", style="bold"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=stderr_console(),
                disable=not stderr_console().is_terminal,
            )
            with progress:
                task = progress.add_task(f"rebuilding {projection.describe()}", total=target)
                while True:
                    [current] = reader.read()
                    progress.update(task, completed=min(current.checkpoint, target))
                    if current.state is ProjectionState.FAILED or (
                        # Applied here, or by the runner that holds the projection.
                        current.checkpoint >= target
                        and current.active_version == projection.version
                    ):
                        break
                    runner.wait_until_caught_up(0.2, position=target)
            [final] = reader.read()
        finally:
            runner.stop()
            runner.join()
        console = stdout_console()
        if final.state is ProjectionState.FAILED:
            console.print(status_table([final]))
            raise typer.Exit(1)
        console.print(f"{projection.describe()}: rebuilt up to position {final.checkpoint}")


def retry(module: Module, name: Name, url: StoreURL = DEFAULT_URL) -> None:
    """Let a failed projection apply the event it stopped at again, after a fix.

    Deploy the fixed handler (or fix the data it tripped on) first; its runner resumes at once.
    The retry is recorded in the projection's history.

    Example:

        eventvault projections retry balances --module bank.projections
    \f
    Args:
        module: the module of projections.
        name: the projection.
        url: the store.
    """
    with (
        _opened(url, module, [name]) as (store, [projection]),
        StatusReader(store, [projection]) as reader,
    ):
        failure = retry_projection(reader.database_for(projection), projection, actor=_actor())
    stdout_console().print(
        f"{projection.describe()}: retrying {failure.stream_name}@{failure.stream_position} "
        f"(global {failure.global_position}); it had failed with {failure.error}"
    )


def skip(
    module: Module,
    name: Name,
    position: Annotated[
        int | None,
        typer.Option(
            "--position",
            min=1,
            help="The global position of the event to skip: refused unless it is the one the "
            "projection failed at (a guard against skipping the wrong event).",
        ),
    ] = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Pass over the event a failed projection stopped at; the skip is recorded.

    The read model never gets that event's effect: use it for an event the projection should
    not have handled. `status` shows the event; the history keeps who skipped what.

    Example:

        eventvault projections skip balances --module bank.projections --position 4711
    \f
    Args:
        module: the module of projections.
        name: the projection.
        position: the event's global position, as a guard.
        url: the store.
    """
    with (
        _opened(url, module, [name]) as (store, [projection]),
        StatusReader(store, [projection]) as reader,
    ):
        failure = skip_projection(
            reader.database_for(projection), projection, actor=_actor(), position=position
        )
    stdout_console().print(
        f"{projection.describe()}: skipped {failure.event_type} {failure.stream_name}@"
        f"{failure.stream_position} (global {failure.global_position}, id {failure.event_id})"
    )


app.command("list")(reporting_errors(list_))
app.command("status")(reporting_errors(status))
app.command("run")(reporting_errors(run))
app.command("rebuild")(reporting_errors(rebuild))
app.command("reset")(reporting_errors(reset))
app.command("retry")(reporting_errors(retry))
app.command("skip")(reporting_errors(skip))
