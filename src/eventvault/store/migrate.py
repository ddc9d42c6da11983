"""`migrate`: create or upgrade a store's tables and every component's, on any engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eventvault.store.base import EventStore
from eventvault.store.registry import ConnectOptions, open_url
from eventvault.store.seam import CORE_COMPONENT, Component, known_components
from eventvault.store.url import parse_url

__all__ = ["AppliedMigration", "MigrationResult", "migrate"]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """One version of one component's tables that `migrate` applied.

    Attributes:
        component: the component (`eventvault` for the store's own tables).
        version: the version applied.
    """

    component: str
    version: int


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What `migrate` did.

    Attributes:
        applied: the versions applied, in order; empty when everything was up to date.
        versions: every component's version once done (the store's own as `eventvault`).
    """

    applied: tuple[AppliedMigration, ...]
    versions: dict[str, int]


def _open_migrating(url: str) -> EventStore:
    """Open a store allowed to migrate its own tables (PostgreSQL: whatever its URL says)."""
    return open_url(parse_url(url), ConnectOptions(migrate=True))


def migrate(url: str, *, components: Sequence[Component] | None = None) -> MigrationResult:
    """Create or upgrade a store's own tables and those of its components.

    Safe to run at any time and from several processes at once: versions already applied are
    skipped, and concurrent runs wait for each other. `eventvault migrate URL` calls it.

    Args:
        url: the store, as `connect` takes it. A PostgreSQL store is migrated whatever its
            `auto_migrate` option says.
        components: the components to bring up to date; None for every registered one (the
            features imported so far register theirs: `eventvault.aggregates` registers
            `snapshots`).

    Returns:
        What was applied, and the versions of every component once done.

    Raises:
        InvalidURLError: the URL names no engine.
        SchemaVersionError: the store is newer than this eventvault knows.
        NotAnEventVaultDatabaseError: the database belongs to something else.
        StorageError: a migration failed; nothing of it was applied.
    """
    wanted = known_components() if components is None else list(components)
    store = _open_migrating(url)
    with store:
        applied = [AppliedMigration(CORE_COMPONENT, v) for v in store.core_migrations_applied]
        before = store.component_versions()
        for component in wanted:
            store.use(component)
        after = store.component_versions()
    for component in wanted:
        for version in range(before.get(component.name, 0) + 1, after.get(component.name, 0) + 1):
            applied.append(AppliedMigration(component.name, version))
    return MigrationResult(tuple(applied), after)
