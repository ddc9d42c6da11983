"""Errors of the domain layer: event registration, aggregates, the repository, snapshots.

They live in `eventvault.errors` with every other error; this module re-exports them for
`from eventvault.aggregates.errors import ...`.
"""

from eventvault.errors import (
    AggregateDefinitionError,
    AggregateNotFoundError,
    AggregateQueryError,
    EventDecodeError,
    EventRegistrationError,
    MissingHandlerError,
    UnknownEventTypeError,
    UnregisteredEventError,
)

__all__ = [
    "AggregateDefinitionError",
    "AggregateNotFoundError",
    "AggregateQueryError",
    "EventDecodeError",
    "EventRegistrationError",
    "MissingHandlerError",
    "UnknownEventTypeError",
    "UnregisteredEventError",
]
