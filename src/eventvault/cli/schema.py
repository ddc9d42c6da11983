"""`eventvault schema ...`: the store's schema registry from the command line.

Reading commands (`list`, `show`, `diff`, `history`) never create the registry's table; a store
without one shows an empty registry. `check` exits with 7 when a schema breaks its type's
compatibility mode, so a CI pipeline can run it on every change of a schema file.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from eventvault.aggregates import EventRegistry
from eventvault.cli.errors import CommandLineError, ExitCode, reporting_errors
from eventvault.cli.io import open_input
from eventvault.cli.options import StoreURL
from eventvault.cli.render import format_time, stderr_console, stdout_console
from eventvault.cli.stores import DEFAULT_URL, open_store
from eventvault.schema import (
    SCHEMAS,
    CheckReport,
    Difference,
    Mode,
    RegistryState,
    SchemaRegistry,
    Upcasters,
    checked_schema,
    parse_schema,
)
from eventvault.store.base import EventStore

__all__ = ["app", "enforce_registry"]

app = typer.Typer(
    name="schema",
    help=(
        "The store's schema registry: event types, their JSON Schema versions and "
        "compatibility modes. Appends of registered types are validated.\n\n"
        "Example:\n\n"
        "    eventvault schema register AccountOpened account_opened.json\n\n"
        "    eventvault schema check AccountOpened account_opened_v2.json\n\n"
        "    eventvault schema sync --module bank.events"
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Actor = Annotated[
    str | None,
    typer.Option("--actor", help="Who the change is recorded as (default: user@host)."),
]
TypeName = Annotated[
    str, typer.Argument(metavar="TYPE", help="The event type, e.g. AccountOpened.")
]
SchemaFile = Annotated[
    str,
    typer.Argument(metavar="FILE", help="A JSON Schema file (draft 2020-12); - reads stdin."),
]


def enforce_registry(store: EventStore) -> bool:
    """Hold a store's appends to its schema registry, when it has one.

    Returns:
        Whether the store has a registry (and now enforces it).
    """
    if SCHEMAS.name not in store.component_versions():
        return False
    SchemaRegistry(store).enforce()
    return True


@contextmanager
def _registry(url: str, *, changes: bool, actor: str | None = None) -> Iterator[SchemaRegistry]:
    with open_store(url, read_only=not changes) as store:
        yield SchemaRegistry(store, actor=actor)


def _state(url: str) -> RegistryState:
    """The registry of a store as it is, without creating its table."""
    with open_store(url, read_only=True) as store:
        if SCHEMAS.name not in store.component_versions():
            return RegistryState()
        return SchemaRegistry(store).state()


def _read_schema(path: str, event_type: str) -> dict[str, object]:
    with open_input(path) as stream:
        return parse_schema(stream.read(), event_type)


@app.command("list")
@reporting_errors
def list_(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per type.")
    ] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """List the registered event types with their versions and modes.

    Example:

        eventvault schema list --url bank.db
    """
    state = _state(url)
    if json_output:
        for name in sorted(state.types):
            entry = state.types[name]
            line = {
                "event_type": name,
                "versions": sorted(entry.versions),
                "mode": entry.mode.value,
            }
            sys.stdout.write(json.dumps(line) + "\n")
        return
    console = stdout_console()
    if not state.types:
        console.print("no schema is registered; `eventvault schema register TYPE FILE` adds one")
    else:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("type", style="green")
        table.add_column("versions", justify="right")
        table.add_column("latest", justify="right", style="cyan")
        table.add_column("mode")
        table.add_column("changed (UTC)", style="dim", no_wrap=True)
        for name in sorted(state.types):
            entry = state.types[name]
            versions = sorted(entry.versions)
            table.add_row(
                Text(name),
                _ranges(versions) or "-",
                str(versions[-1]) if versions else "-",
                entry.mode.value,
                format_time(entry.updated_at, precision="milliseconds"),
            )
        console.print(table)
    console.print(f"types without a schema: {state.unregistered}")


def _ranges(versions: list[int]) -> str:
    if len(versions) > 2 and versions == list(range(versions[0], versions[-1] + 1)):
        return f"{versions[0]}-{versions[-1]}"
    return ", ".join(str(v) for v in versions)


@app.command("show")
@reporting_errors
def show(
    event_type: TypeName,
    version: Annotated[
        int | None, typer.Argument(metavar="[VERSION]", help="The version; default the newest.")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the schema, as JSON.")
    ] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show one version of a type's schema (the newest by default).

    Example:

        eventvault schema show AccountOpened 2

        eventvault schema show AccountOpened --json > account_opened.json
    """
    with open_store(url, read_only=True) as store:
        if SCHEMAS.name not in store.component_versions():
            raise CommandLineError("TYPE", f"no schema is registered for {event_type!r}")
        registry = SchemaRegistry(store)
        found = registry.get(event_type, version)
        mode = registry.mode(event_type)
    if json_output:
        sys.stdout.write(found.schema_json() + "\n")
        return
    console = stdout_console()
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("type", Text(found.event_type, style="green"))
    table.add_row("version", str(found.version))
    table.add_row("mode", mode.value)
    table.add_row("registered", f"{format_time(found.registered_at)} by {found.registered_by}")
    table.add_row("fingerprint", found.fingerprint)
    console.print(table)
    console.print()
    console.print(Text(found.schema_json()))


@app.command("register")
@reporting_errors
def register(
    event_type: TypeName,
    path: SchemaFile,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="The version to register; default the next one."),
    ] = None,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Register a JSON Schema as the next version of a type, if it keeps the type's mode.

    Registering a schema that is registered already changes nothing. A schema that breaks
    the type's compatibility mode is refused with every breaking change (exit code 7).

    Example:

        eventvault schema register AccountOpened account_opened.json --url bank.db
    """
    schema = _read_schema(path, event_type)
    with _registry(url, changes=True, actor=actor) as registry:
        result = registry.register(event_type, schema, version=version)
    console = stdout_console()
    if result.created:
        console.print(
            f"registered [green]{escape(event_type)}[/] version [bold]{result.version}[/]"
        )
    else:
        console.print(
            f"[green]{escape(event_type)}[/] version [bold]{result.version}[/] holds this schema "
            "already; nothing written"
        )


@app.command("check")
@reporting_errors
def check(
    event_type: TypeName,
    path: SchemaFile,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="The version it would get; default the next one."),
    ] = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Check whether a schema could be registered, without registering it.

    Exits 0 when it keeps the type's compatibility mode (or is registered already), 7 when it
    breaks it, printing each breaking change with its JSON path: run it in CI on every change
    of a schema file.

    Example:

        eventvault schema check AccountOpened account_opened.json --url "$EVENTVAULT_URL"
    """
    schema = _read_schema(path, event_type)
    with open_store(url, read_only=True) as store:
        if SCHEMAS.name in store.component_versions():
            report = SchemaRegistry(store).check(event_type, schema, version=version)
        else:
            # No registry yet: any usable schema would be the type's first version.
            checked_schema(schema, event_type)
            report = CheckReport(event_type, version or 1, Mode.BACKWARD, False, [])
    console = stdout_console()
    if report.registered:
        console.print(
            f"[green]{escape(event_type)}[/] version {report.version} holds this schema already"
        )
        return
    if report.compatible:
        console.print(
            f"compatible: it would be [green]{escape(event_type)}[/] version {report.version} "
            f"({report.mode.value})"
        )
        return
    table = Table(
        title=(
            f"{event_type} version {report.version} breaks {report.mode.value}: "
            f"{len(report.breaking)} change(s)"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("against", justify="right")
    table.add_column("direction")
    table.add_column("path", style="magenta")
    table.add_column("change")
    table.add_column("rule", style="dim")
    for change in report.breaking:
        detail = f" ({change.detail})" if change.detail else ""
        table.add_row(
            str(change.version),
            change.direction,
            Text(change.path),
            Text(change.change.description + detail),
            change.change.rule,
        )
    console.print(table)
    raise typer.Exit(ExitCode.INCOMPATIBLE)


@app.command("diff")
@reporting_errors
def diff(
    event_type: TypeName,
    old: Annotated[int, typer.Argument(metavar="V1", min=1, help="One version.")],
    new: Annotated[int, typer.Argument(metavar="V2", min=1, help="Another version.")],
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show the differences between two versions of a type's schema, both ways.

    The first table is what a reader of V2 meets in data written under V1 (BACKWARD), the
    second what a reader of V1 meets in data written under V2 (FORWARD).

    Example:

        eventvault schema diff AccountOpened 1 2
    """
    with open_store(url, read_only=True) as store:
        if SCHEMAS.name not in store.component_versions():
            raise CommandLineError("TYPE", f"no schema is registered for {event_type!r}")
        backward, forward = SchemaRegistry(store).diff(event_type, old, new)
    console = stdout_console()
    console.print(_differences(f"version {new} reading data of version {old}", backward))
    console.print(_differences(f"version {old} reading data of version {new}", forward))


def _differences(title: str, differences: list[Difference]) -> Table | str:
    if not differences:
        return f"{title}: no differences"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("path", style="magenta")
    table.add_column("change")
    table.add_column("reads", no_wrap=True)
    for difference in differences:
        detail = f" ({difference.detail})" if difference.detail else ""
        table.add_row(
            Text(difference.path),
            Text(difference.change.description + detail),
            Text("yes", style="green") if difference.compatible else Text("no", style="red"),
        )
    return table


@app.command("mode")
@reporting_errors
def mode(
    event_type: TypeName,
    new_mode: Annotated[
        str | None,
        typer.Argument(
            metavar="[MODE]",
            help="BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, "
            "FULL_TRANSITIVE or NONE; omit it to show the mode.",
        ),
    ] = None,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show or set a type's compatibility mode (BACKWARD unless set).

    Example:

        eventvault schema mode AccountOpened FULL_TRANSITIVE
    """
    console = stdout_console()
    if new_mode is None:
        console.print(_state(url).mode(event_type).value)
        return
    with _registry(url, changes=True, actor=actor) as registry:
        changed = registry.set_mode(event_type, new_mode)
    chosen = Mode(new_mode.upper())
    if changed:
        console.print(f"[green]{escape(event_type)}[/] is now {chosen.value}")
    else:
        console.print(f"[green]{escape(event_type)}[/] is {chosen.value} already; nothing written")


@app.command("unregistered")
@reporting_errors
def unregistered(
    policy: Annotated[
        str | None,
        typer.Argument(
            metavar="[allow|refuse]", help="The policy to set; omit it to show the policy."
        ),
    ] = None,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Show or set what appends of types without a schema do: allow (stored unchecked, the
    default) or refuse.

    Example:

        eventvault schema unregistered refuse
    """
    console = stdout_console()
    if policy is None:
        console.print(_state(url).unregistered)
        return
    if policy not in ("allow", "refuse"):
        raise CommandLineError("POLICY", f"allow or refuse, not {policy!r}")
    chosen: Literal["allow", "refuse"] = "allow" if policy == "allow" else "refuse"
    with _registry(url, changes=True, actor=actor) as registry:
        changed = registry.set_unregistered(chosen)
    console.print(f"types without a schema: {chosen}" + ("" if changed else " (already)"))


@app.command("history")
@reporting_errors
def history(
    event_type: Annotated[
        str | None, typer.Argument(metavar="[TYPE]", help="Only the changes of this type.")
    ] = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """List every change of the registry: who made it, when, and what.

    Example:

        eventvault schema history AccountOpened
    """
    with open_store(url, read_only=True) as store:
        if SCHEMAS.name not in store.component_versions():
            changes = []
        else:
            changes = SchemaRegistry(store).history(event_type)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("#", justify="right", style="cyan")
    table.add_column("changed (UTC)", style="dim", no_wrap=True)
    table.add_column("by")
    table.add_column("change")
    for change in changes:
        if change.action == "register":
            what = f"registered {change.event_type} version {change.version}"
        elif change.action == "mode":
            what = f"set {change.event_type} to {change.value}"
        else:
            what = f"types without a schema: {change.value}"
        table.add_row(
            str(change.change_id),
            format_time(change.changed_at, precision="milliseconds"),
            Text(change.changed_by),
            Text(what),
        )
    stdout_console().print(table if changes else "no registry change")


@app.command("sync")
@reporting_errors
def sync(
    module: Annotated[
        str,
        typer.Option(
            "--module",
            "-m",
            metavar="MODULE[:NAME]",
            help="The module that declares the application's EventRegistry (and its "
            "Upcasters, if any), e.g. bank.events or bank.events:registry.",
        ),
    ],
    upcasters_name: Annotated[
        str | None,
        typer.Option(
            "--upcasters",
            metavar="NAME",
            help="The module's Upcasters to check, when it holds several.",
        ),
    ] = None,
    actor: Actor = None,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Register the schema of every event class an application declares, as the
    application's own start-up call `SchemaRegistry.sync` does.

    The module is imported (the current folder is on the path) and its EventRegistry found:
    the one it holds, or the one named after a colon. Its Upcasters, if it holds any, are
    checked too. Nothing is written unless every class and upcaster passes.

    Example:

        eventvault schema sync --module bank.events --url bank.db
    """
    events, upcasters = _application(module, upcasters_name)
    with _registry(url, changes=True, actor=actor) as registry:
        report = registry.sync(events, upcasters=upcasters)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("type", style="green")
    table.add_column("version", justify="right")
    table.add_column("")
    for name, number in report.registered:
        table.add_row(Text(name), str(number), "registered")
    for name, number in report.unchanged:
        table.add_row(Text(name), str(number), Text("unchanged", style="dim"))
    console = stdout_console()
    console.print(table)
    console.print(
        f"{len(report.registered)} registered, {len(report.unchanged)} unchanged, "
        f"{report.upcasters} upcaster(s) checked"
    )


def _application(spec: str, upcasters_name: str | None) -> tuple[EventRegistry, Upcasters | None]:
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        loaded = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandLineError(
            "--module",
            f"cannot import {module_name!r}: {exc}",
            hint="run from the folder that holds the package, or set PYTHONPATH",
        ) from None
    members = vars(loaded)
    events: EventRegistry
    if attribute:
        named = members.get(attribute)
        if not isinstance(named, EventRegistry):
            raise CommandLineError("--module", f"{module_name}.{attribute} is not an EventRegistry")
        events = named
    else:
        found = [value for value in members.values() if isinstance(value, EventRegistry)]
        if len(found) != 1:
            raise CommandLineError(
                "--module",
                f"{module_name!r} holds {len(found)} EventRegistry objects: name one, "
                f"{module_name}:NAME",
            )
        events = found[0]
    upcasters: Upcasters | None = None
    if upcasters_name is not None:
        chosen = members.get(upcasters_name)
        if not isinstance(chosen, Upcasters):
            raise CommandLineError(
                "--upcasters", f"{module_name}.{upcasters_name} is not Upcasters"
            )
        upcasters = chosen
    else:
        all_upcasters = [value for value in members.values() if isinstance(value, Upcasters)]
        if len(all_upcasters) > 1:
            raise CommandLineError(
                "--upcasters", f"{module_name!r} holds {len(all_upcasters)} Upcasters: name one"
            )
        upcasters = all_upcasters[0] if all_upcasters else None
    stderr_console().print(
        f"{module_name}: {len(events)} event class(es), "
        f"{len(upcasters) if upcasters else 0} upcaster(s)"
    )
    return events, upcasters
