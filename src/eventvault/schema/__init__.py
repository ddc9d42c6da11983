"""The schema registry: event types, their JSON Schema versions and compatibility modes, kept
by the store itself; validated appends; upcasting on read.

::

    from eventvault.schema import SchemaRegistry, Upcasters

    upcasters = Upcasters()

    @upcasters.upcaster("AccountOpened", from_version=1, examples=[{"owner": "Ada"}])
    def add_currency(data):
        return {**data, "currency": "EUR"}

    schemas = SchemaRegistry(store)
    schemas.sync(events, upcasters=upcasters)  # events: the application's EventRegistry
    schemas.enforce()                          # appends to `store` are validated from now on

docs/schema-registry.md is the guide; ADR 0010 the decisions.
"""

from eventvault.schema.compatibility import (
    BreakingChange,
    Change,
    Difference,
    Mode,
    breaking_changes,
    compare,
)
from eventvault.schema.documents import (
    DRAFT_2020_12,
    canonical_json,
    checked_schema,
    class_schema,
    fingerprint,
    parse_schema,
)
from eventvault.schema.registry import (
    SCHEMAS,
    CheckReport,
    EventClass,
    EventClasses,
    Registration,
    SchemaRegistry,
    SyncReport,
    default_actor,
)
from eventvault.schema.state import RegistryChange, RegistryState, SchemaVersion, Unregistered
from eventvault.schema.upcasting import UpcastChain, Upcaster, Upcasters, UpcastFunction
from eventvault.schema.validation import CompiledSchema, SchemaEnforcer, compile_schema

__all__ = [
    "DRAFT_2020_12",
    "SCHEMAS",
    "BreakingChange",
    "Change",
    "CheckReport",
    "CompiledSchema",
    "Difference",
    "EventClass",
    "EventClasses",
    "Mode",
    "Registration",
    "RegistryChange",
    "RegistryState",
    "SchemaEnforcer",
    "SchemaRegistry",
    "SchemaVersion",
    "SyncReport",
    "Unregistered",
    "UpcastChain",
    "UpcastFunction",
    "Upcaster",
    "Upcasters",
    "breaking_changes",
    "canonical_json",
    "checked_schema",
    "class_schema",
    "compare",
    "compile_schema",
    "default_actor",
    "fingerprint",
    "parse_schema",
]
