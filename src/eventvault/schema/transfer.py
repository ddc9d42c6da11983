"""The registry in exports, imports and copies: its history read from one store and replayed
into another, so that the new store holds the same registry with the same history (who, when,
what), change for change.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventvault.errors import NotEmptyError
from eventvault.schema.registry import SCHEMAS, SchemaRegistry, read_history
from eventvault.schema.state import RegistryChange, RegistryState
from eventvault.store.base import EventStore

__all__ = ["check_history", "check_registry_empty", "import_registry", "registry_history"]


def registry_history(store: EventStore) -> list[RegistryChange]:
    """Every change of a store's registry, oldest first; empty when the store has none.

    A store whose registry table was never created is not given one: exporting leaves the
    source as it was.
    """
    if SCHEMAS.name not in store.component_versions():
        return []
    return read_history(store)


def check_history(changes: Sequence[RegistryChange]) -> None:
    """Check that a history is one the registry could have made, before anything is written.

    Raises:
        ImportFileError: a change out of order, a version out of order, a schema the registry
            would refuse, a mode or policy that does not exist.
    """
    state = RegistryState()
    for change in changes:
        state.apply(change)


def check_registry_empty(store: EventStore) -> None:
    """Refuse a target whose registry holds changes, before an import or copy writes anything.

    Raises:
        NotEmptyError: the target's registry holds changes.
    """
    changes = registry_history(store)
    if changes:
        raise NotEmptyError(store.url, 0, registry_changes=len(changes))


def import_registry(store: EventStore, changes: Sequence[RegistryChange]) -> int:
    """Replay a registry's history into a store (see `SchemaRegistry.import_history`); a
    history with no changes creates nothing.

    Returns:
        The number of changes imported.

    Raises:
        ImportFileError: a change is out of order or not one the registry could have made.
        NotEmptyError: the target's registry holds changes.
    """
    if not changes:
        return 0
    return SchemaRegistry(store).import_history(changes)
