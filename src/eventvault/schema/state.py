"""The registry as a history of changes, and the state that history folds into.

Every change to the registry (a version registered, a type's compatibility mode set, the store's
policy for unregistered types set) is a `RegistryChange`, numbered from 1 and never rewritten:
who made it, when, and what. The registry's state (the types, their versions and schemas, their
modes, the policy) is the fold of those changes in order, so the history is the registry: an
export carries it, an import replays it, and the same fold serves both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

import msgspec

from eventvault.errors import ImportFileError, InvalidSchemaError, SchemaRegistrationError
from eventvault.schema.compatibility import Mode
from eventvault.schema.documents import checked_schema, fingerprint
from eventvault.serialization import FORBIDDEN_NAME_CHARACTERS, MAX_SCHEMA_VERSION

__all__ = [
    "DEFAULT_MODE",
    "MAX_TYPE_NAME_LENGTH",
    "Action",
    "RegistryChange",
    "RegistryState",
    "SchemaVersion",
    "TypeState",
    "Unregistered",
    "check_type_name",
    "check_version",
]

Action: TypeAlias = Literal["register", "mode", "unregistered"]
"""What a change did: registered a schema version, set a type's mode, set the store's policy
for unregistered types."""
Unregistered: TypeAlias = Literal["allow", "refuse"]
"""What a store that enforces its schemas does with an event of a type that has none."""

DEFAULT_MODE: Final = Mode.BACKWARD
MAX_TYPE_NAME_LENGTH: Final = 200


class RegistryChange(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="record", tag="registry_change"
):
    """One change of the registry, as the history table and an export file hold it (where
    its line carries `"record": "registry_change"`).

    Attributes:
        change_id: its number: 1 for a registry's first change, then 2, 3, ... without gaps.
        changed_at: when it was made (UTC).
        changed_by: who made it (an actor name: by default `user@host`).
        action: `register`, `mode` or `unregistered`.
        event_type: the type it concerns (None for `unregistered`).
        version: the version registered (`register` only).
        value: the schema (`register`), the mode's name (`mode`), or `allow` / `refuse`
            (`unregistered`).
    """

    change_id: int
    changed_at: datetime
    changed_by: str
    action: Action
    event_type: str | None = None
    version: int | None = None
    value: Any


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One registered version of a type's schema.

    Attributes:
        event_type: the type.
        version: the version.
        schema: the JSON Schema (draft 2020-12).
        fingerprint: the SHA-256 of its canonical JSON.
        registered_at: when it was registered.
        registered_by: who registered it.
        change_id: the registry change that registered it.
    """

    event_type: str
    version: int
    schema: dict[str, Any]
    fingerprint: str
    registered_at: datetime
    registered_by: str
    change_id: int

    def schema_json(self, *, indent: int | None = 2) -> str:
        """The schema as JSON text, keys in their stored (sorted) order."""
        return json.dumps(self.schema, indent=indent, sort_keys=True, ensure_ascii=False)


@dataclass(slots=True)
class TypeState:
    """A type in the registry: its mode and its versions, oldest first.

    Attributes:
        event_type: the type.
        mode: its compatibility mode (BACKWARD unless set).
        versions: version number to `SchemaVersion`, in ascending order.
        updated_at: when the type last changed.
    """

    event_type: str
    mode: Mode = DEFAULT_MODE
    versions: dict[int, SchemaVersion] = field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def latest(self) -> SchemaVersion | None:
        """The newest version, or None when only a mode is set."""
        return self.versions[max(self.versions)] if self.versions else None


def check_type_name(event_type: object) -> str:
    """Check an event type name against the store's naming rules.

    Raises:
        SchemaRegistrationError: not a str, empty, longer than 200 characters, or with control
            characters or lone surrogates.
    """
    if (
        type(event_type) is not str
        or not event_type
        or len(event_type) > MAX_TYPE_NAME_LENGTH
        or FORBIDDEN_NAME_CHARACTERS.search(event_type)
    ):
        shown = event_type
        if isinstance(event_type, str) and len(event_type) > 60:
            shown = f"{event_type[:40]}... ({len(event_type)} characters)"
        raise SchemaRegistrationError(
            None,
            f"an event type is a non-empty str of at most {MAX_TYPE_NAME_LENGTH} characters "
            f"without control characters or lone surrogates, not {shown!r}",
        )
    return event_type


def check_version(event_type: str, version: object) -> int:
    """Check a schema version number.

    Raises:
        SchemaRegistrationError: not an int from 1 to 2,147,483,647.
    """
    if type(version) is not int or not 1 <= version <= MAX_SCHEMA_VERSION:
        raise SchemaRegistrationError(
            event_type,
            f"a schema version is an int from 1 to {MAX_SCHEMA_VERSION}, not {version!r}",
        )
    return version


class RegistryState:
    """The fold of a registry's history: what the registry holds after its last change.

    Attributes:
        last_change: the number of the last change folded (0: none).
        types: type name to its `TypeState`.
        unregistered: the store's policy for types without a schema.
    """

    def __init__(self) -> None:
        self.last_change = 0
        self.types: dict[str, TypeState] = {}
        self.unregistered: Unregistered = "allow"

    def apply(self, change: RegistryChange, *, verify: bool = True) -> None:
        """Fold one change in.

        Args:
            change: the next change.
            verify: check its schema again (for a history read from a file); a history read
                from the store's own table was checked when it was written.

        Raises:
            ImportFileError: the change does not follow the last one (its number), or is not
                one the registry could have made (a version out of order, a bad schema, mode
                or policy): a history that was edited.
        """
        if change.change_id != self.last_change + 1:
            raise ImportFileError(
                f"registry change {change.change_id} follows change {self.last_change}: the "
                "history has a gap or is out of order"
            )
        try:
            self._apply(change, verify)
        except (InvalidSchemaError, SchemaRegistrationError, ValueError) as exc:
            raise ImportFileError(f"registry change {change.change_id}: {exc}") from exc
        self.last_change = change.change_id

    def _apply(self, change: RegistryChange, verify: bool) -> None:
        if change.action == "unregistered":
            if change.value not in ("allow", "refuse"):
                raise ValueError(f"the policy is allow or refuse, not {change.value!r}")
            self.unregistered = change.value
            return
        name = check_type_name(change.event_type)
        entry = self.types.get(name)
        if entry is None:
            entry = self.types[name] = TypeState(name)
        if change.action == "mode":
            entry.mode = Mode(change.value)
        else:
            version = check_version(name, change.version)
            if entry.versions and version != max(entry.versions) + 1:
                raise ValueError(
                    f"version {version} of {name!r} does not follow version {max(entry.versions)}"
                )
            schema = checked_schema(change.value, name) if verify else change.value
            if not isinstance(schema, dict):
                raise ValueError(f"the schema of version {version} is not a JSON object")
            entry.versions[version] = SchemaVersion(
                name,
                version,
                schema,
                fingerprint(schema),
                change.changed_at,
                change.changed_by,
                change.change_id,
            )
        entry.updated_at = change.changed_at

    def versions_of(self, event_type: str) -> list[int]:
        """The registered versions of a type, ascending (empty when it has none)."""
        entry = self.types.get(event_type)
        return sorted(entry.versions) if entry is not None else []

    def schema(self, event_type: str, version: int) -> SchemaVersion | None:
        """A registered version, or None."""
        entry = self.types.get(event_type)
        return entry.versions.get(version) if entry is not None else None

    def mode(self, event_type: str) -> Mode:
        """A type's compatibility mode (BACKWARD for a type the registry does not know)."""
        entry = self.types.get(event_type)
        return entry.mode if entry is not None else DEFAULT_MODE
