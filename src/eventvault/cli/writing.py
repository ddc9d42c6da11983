"""`eventvault append`: write one event from the command line."""

from __future__ import annotations

import sys
import uuid
from typing import Annotated

import msgspec
import typer
from rich.markup import escape

from eventvault.cli.io import STDIO, parse_json_object
from eventvault.cli.options import StoreURL, parse_expected_version
from eventvault.cli.render import stdout_console
from eventvault.cli.schema import enforce_registry
from eventvault.cli.stores import DEFAULT_URL, open_store
from eventvault.serialization import DEFAULT_MAX_EVENT_BYTES
from eventvault.types import NewEvent

__all__ = ["append"]


def append(
    stream: Annotated[
        str, typer.Argument(metavar="STREAM", help="The stream to append to, e.g. account-42.")
    ],
    event_type: Annotated[
        str,
        typer.Argument(
            metavar="EVENT_TYPE", help="The event's registered type name, e.g. AccountOpened."
        ),
    ],
    data: Annotated[
        str,
        typer.Argument(
            metavar="DATA_JSON",
            help="The payload, a JSON object; - reads it from stdin.",
            show_default=False,
        ),
    ] = "{}",
    metadata: Annotated[
        str | None,
        typer.Option(
            "--metadata",
            "-m",
            metavar="JSON",
            help="Metadata, a JSON object (correlation_id, causation_id, actor, tenant...).",
        ),
    ] = None,
    expected_version: Annotated[
        str,
        typer.Option(
            "--expected-version",
            "-e",
            metavar="any|no-stream|exists|N",
            help="Append only if the stream is in this state, or its last event is at position N.",
        ),
    ] = "any",
    event_id: Annotated[
        uuid.UUID | None,
        typer.Option(
            "--event-id",
            help="The event's id (idempotency key); re-sending the same id does not append twice.",
        ),
    ] = None,
    schema_version: Annotated[
        int,
        typer.Option("--schema-version", min=1, help="The schema version the payload conforms to."),
    ] = 1,
    max_event_bytes: Annotated[
        int,
        typer.Option(
            "--max-event-bytes",
            min=1,
            metavar="N",
            help="The largest encoded data plus metadata the event may have, in bytes.",
        ),
    ] = DEFAULT_MAX_EVENT_BYTES,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the positions as a JSON object.")
    ] = False,
    url: StoreURL = DEFAULT_URL,
) -> None:
    """Append one event to a stream and print where it landed.

    The store is created when it does not exist yet. DATA_JSON defaults to {}.

    Example:

        eventvault append account-42 AccountOpened '{"owner": "Ada"}' -e no-stream

        echo '{"amount": 10}' | eventvault append account-42 Deposited - -e 0
    \f
    Args:
        stream: the stream's name.
        event_type: the event's type name.
        data: the payload as JSON text, or `-` for stdin.
        metadata: the metadata as JSON text.
        expected_version: `any`, `no-stream`, `exists` or a stream position.
        event_id: the event's id.
        schema_version: the payload's schema version.
        max_event_bytes: the store's limit on the event's size.
        json_output: print JSON instead of a sentence.
        url: the store.

    Raises:
        CommandLineError: DATA_JSON, --metadata or --expected-version is malformed.
        WrongExpectedVersionError: the stream is not in the expected state.
        InvalidStreamNameError, InvalidEventError: the store refused the event.
        SchemaValidationError, UnregisteredSchemaError: the store has a schema registry and
            the event does not match it.
    """
    text = sys.stdin.read() if data == STDIO else data
    payload = parse_json_object(text, "DATA_JSON" if data != STDIO else "DATA_JSON (stdin)")
    meta = None if metadata is None else parse_json_object(metadata, "--metadata")
    expected = parse_expected_version(expected_version)
    event = NewEvent(
        event_type, payload, metadata=meta, event_id=event_id, schema_version=schema_version
    )
    with open_store(url, read_only=False, max_event_bytes=max_event_bytes) as store:
        # A store with a schema registry holds every producer to it, this one too.
        enforce_registry(store)
        result = store.append_to_stream(stream, [event], expected_version=expected)
    if json_output:
        sys.stdout.write(
            msgspec.json.encode(
                {
                    "stream_name": stream,
                    "stream_position": result.stream_position,
                    "global_position": result.global_position,
                }
            ).decode()
            + "\n"
        )
        return
    stdout_console().print(
        f"appended to [magenta]{escape(stream)}[/] at position "
        f"[bold]{result.stream_position}[/] (global position [cyan]{result.global_position}[/])"
    )
