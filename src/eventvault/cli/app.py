"""The `eventvault` command: its Typer application, the commands it holds, and `main`."""

from __future__ import annotations

from typing import Annotated

import typer

import eventvault
from eventvault.cli import admin, projections, reading, schema, server, transfer, writing
from eventvault.cli.errors import reporting_errors

__all__ = ["app", "main"]

app = typer.Typer(
    name="eventvault",
    help=(
        "eventvault: an append-only, tamper-evident event store on SQLite, PostgreSQL or in "
        "memory.\n\n"
        "Every command opens the store named by --url, or EVENTVAULT_URL, or ./eventvault.db.\n\n"
        "Example:\n\n"
        '    eventvault append account-42 AccountOpened \'{"owner": "Ada"}\'\n\n'
        "    eventvault read account-42\n\n"
        "    eventvault log --follow"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"eventvault {eventvault.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_show_version,
            is_eager=True,
            help="Print eventvault's version and exit.",
        ),
    ] = False,
) -> None:
    """Options that come before the command."""


app.command("append", rich_help_panel="Write")(reporting_errors(writing.append))
app.command("read", rich_help_panel="Read")(reporting_errors(reading.read))
app.command("log", rich_help_panel="Read")(reporting_errors(reading.log))
app.command("streams", rich_help_panel="Read")(reporting_errors(reading.streams))
app.command("stats", rich_help_panel="Read")(reporting_errors(reading.stats))
app.command("export", rich_help_panel="Move")(reporting_errors(transfer.export))
app.command("import", rich_help_panel="Move")(reporting_errors(transfer.import_))
app.command("copy", rich_help_panel="Move")(reporting_errors(transfer.copy))
app.command("migrate", rich_help_panel="Administer")(reporting_errors(admin.migrate))
app.add_typer(schema.app, name="schema", rich_help_panel="Administer")
app.add_typer(projections.app, name="projections", rich_help_panel="Projections")
app.command("serve", rich_help_panel="Serve")(reporting_errors(server.serve))
app.add_typer(server.token_app, rich_help_panel="Serve")


def main() -> None:
    """Run the `eventvault` command line with the process's arguments, then exit.

    The console script `eventvault` and `python -m eventvault.cli` both call this.
    """
    app(prog_name="eventvault")
