"""Compatibility of JSON Schemas, with the meanings Confluent's Schema Registry gives them.

`compare(original, update)` lists every difference between two schemas from the point of view
of a reader holding `update` and data written under `original`: a difference is compatible when
every document valid under the original stays readable under the update. The rules, their names
and which of them are compatible follow Confluent's JSON Schema provider (its `SchemaDiff` and
the `...SchemaDiff` classes, STRICT policy), so a schema accepted here is accepted there:

- BACKWARD (new readers read old data): `compare(previous, new)`;
- FORWARD (old readers read new data): `compare(new, previous)`;
- FULL: both; the `_TRANSITIVE` modes check against every earlier version, the others against
  the latest only; NONE checks nothing.

Objects follow their content model: an open model (no `additionalProperties`, or `true`)
accepts any extra property, so a property added to it is a change of what those extra
properties may hold, which breaks old data that used the name (`optional_property_added_to_
open_content_model`); a closed model (`additionalProperties: false`) accepts no other property,
so adding an optional one is safe and removing one is not. docs/schema-registry.md has the table
of every rule with an example.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple, TypeAlias

__all__ = [
    "BreakingChange",
    "Change",
    "Difference",
    "Mode",
    "breaking_changes",
    "compare",
]

JSONSchema: TypeAlias = "Mapping[str, object] | bool"


class Mode(enum.Enum):
    """A type's compatibility mode: which earlier versions a new version must stay compatible
    with, and in which direction (Confluent's compatibility levels)."""

    BACKWARD = "BACKWARD"
    """New readers can read data written under the latest version (the default)."""
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    """New readers can read data written under every earlier version."""
    FORWARD = "FORWARD"
    """Readers of the latest version can read data written under the new one."""
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    """Readers of every earlier version can read data written under the new one."""
    FULL = "FULL"
    """BACKWARD and FORWARD."""
    FULL_TRANSITIVE = "FULL_TRANSITIVE"
    """BACKWARD_TRANSITIVE and FORWARD_TRANSITIVE."""
    NONE = "NONE"
    """No check."""

    @property
    def backward(self) -> bool:
        """Whether the new version must read the data of earlier ones."""
        return self in (Mode.BACKWARD, Mode.BACKWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @property
    def forward(self) -> bool:
        """Whether earlier versions must read the data of the new one."""
        return self in (Mode.FORWARD, Mode.FORWARD_TRANSITIVE, Mode.FULL, Mode.FULL_TRANSITIVE)

    @property
    def transitive(self) -> bool:
        """Whether every earlier version counts, not only the latest."""
        return self.value.endswith("_TRANSITIVE")


class Change(enum.Enum):
    """A kind of difference between two schemas, named as Confluent names it.

    Its value is the name; `compatible` says whether a reader of the update still reads data
    written under the original; `describe` says it in words.
    """

    # annotations and whole schemas
    ID_CHANGED = "id_changed", True, "the $id changed"
    DESCRIPTION_CHANGED = "description_changed", True, "the description changed"
    TITLE_CHANGED = "title_changed", True, "the title changed"
    DEFAULT_CHANGED = "default_changed", True, "the default changed"
    SCHEMA_ADDED = "schema_added", False, "a schema was added where there was none"
    SCHEMA_REMOVED = "schema_removed", True, "a schema was removed"
    TYPE_EXTENDED = "type_extended", True, "the type was widened"
    TYPE_NARROWED = "type_narrowed", False, "the type was narrowed"
    TYPE_CHANGED = "type_changed", False, "the type changed"
    # strings
    MAX_LENGTH_ADDED = "max_length_added", False, "a maxLength was added"
    MAX_LENGTH_REMOVED = "max_length_removed", True, "the maxLength was removed"
    MAX_LENGTH_INCREASED = "max_length_increased", True, "the maxLength was increased"
    MAX_LENGTH_DECREASED = "max_length_decreased", False, "the maxLength was decreased"
    MIN_LENGTH_ADDED = "min_length_added", False, "a minLength was added"
    MIN_LENGTH_REMOVED = "min_length_removed", True, "the minLength was removed"
    MIN_LENGTH_INCREASED = "min_length_increased", False, "the minLength was increased"
    MIN_LENGTH_DECREASED = "min_length_decreased", True, "the minLength was decreased"
    PATTERN_ADDED = "pattern_added", False, "a pattern was added"
    PATTERN_REMOVED = "pattern_removed", True, "the pattern was removed"
    PATTERN_CHANGED = "pattern_changed", False, "the pattern changed"
    # numbers
    MAXIMUM_ADDED = "maximum_added", False, "a maximum was added"
    MAXIMUM_REMOVED = "maximum_removed", True, "the maximum was removed"
    MAXIMUM_INCREASED = "maximum_increased", True, "the maximum was increased"
    MAXIMUM_DECREASED = "maximum_decreased", False, "the maximum was decreased"
    MINIMUM_ADDED = "minimum_added", False, "a minimum was added"
    MINIMUM_REMOVED = "minimum_removed", True, "the minimum was removed"
    MINIMUM_INCREASED = "minimum_increased", False, "the minimum was increased"
    MINIMUM_DECREASED = "minimum_decreased", True, "the minimum was decreased"
    EXCLUSIVE_MAXIMUM_ADDED = "exclusive_maximum_added", False, "an exclusiveMaximum was added"
    EXCLUSIVE_MAXIMUM_REMOVED = (
        "exclusive_maximum_removed",
        True,
        "the exclusiveMaximum was removed",
    )
    EXCLUSIVE_MAXIMUM_INCREASED = (
        "exclusive_maximum_increased",
        True,
        "the exclusiveMaximum was increased",
    )
    EXCLUSIVE_MAXIMUM_DECREASED = (
        "exclusive_maximum_decreased",
        False,
        "the exclusiveMaximum was decreased",
    )
    EXCLUSIVE_MINIMUM_ADDED = "exclusive_minimum_added", False, "an exclusiveMinimum was added"
    EXCLUSIVE_MINIMUM_REMOVED = (
        "exclusive_minimum_removed",
        True,
        "the exclusiveMinimum was removed",
    )
    EXCLUSIVE_MINIMUM_INCREASED = (
        "exclusive_minimum_increased",
        False,
        "the exclusiveMinimum was increased",
    )
    EXCLUSIVE_MINIMUM_DECREASED = (
        "exclusive_minimum_decreased",
        True,
        "the exclusiveMinimum was decreased",
    )
    MULTIPLE_OF_ADDED = "multiple_of_added", False, "a multipleOf was added"
    MULTIPLE_OF_REMOVED = "multiple_of_removed", True, "the multipleOf was removed"
    MULTIPLE_OF_EXPANDED = "multiple_of_expanded", False, "the multipleOf was made a multiple"
    MULTIPLE_OF_REDUCED = "multiple_of_reduced", True, "the multipleOf was made a divisor"
    MULTIPLE_OF_CHANGED = "multiple_of_changed", False, "the multipleOf changed"
    # enums and consts
    ENUM_ARRAY_EXTENDED = "enum_array_extended", True, "enum values were added"
    ENUM_ARRAY_NARROWED = "enum_array_narrowed", False, "enum values were removed"
    ENUM_ARRAY_CHANGED = "enum_array_changed", False, "the allowed values changed"
    # objects
    REQUIRED_ATTRIBUTE_ADDED = (
        "required_attribute_added",
        False,
        "an existing property became required",
    )
    REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED = (
        "required_attribute_with_default_added",
        True,
        "an existing property with a default became required",
    )
    REQUIRED_ATTRIBUTE_REMOVED = (
        "required_attribute_removed",
        True,
        "a required property became optional",
    )
    PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL = (
        "property_added_to_open_content_model",
        False,
        "a property was added to an open content model (old data may hold that name with "
        "any value)",
    )
    REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL = (
        "required_property_added_to_open_content_model",
        False,
        "a required property was added to an open content model",
    )
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL = (
        "required_property_with_default_added_to_open_content_model",
        False,
        "a required property with a default was added to an open content model",
    )
    OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL = (
        "optional_property_added_to_open_content_model",
        False,
        "an optional property was added to an open content model (old data may hold that "
        "name with any value)",
    )
    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL = (
        "property_with_empty_schema_added_to_open_content_model",
        True,
        "a property that accepts anything was added to an open content model",
    )
    REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL = (
        "required_property_added_to_unopen_content_model",
        False,
        "a required property without a default was added",
    )
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL = (
        "required_property_with_default_added_to_unopen_content_model",
        True,
        "a required property with a default was added to a closed content model",
    )
    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL = (
        "optional_property_added_to_unopen_content_model",
        True,
        "an optional property was added to a closed content model",
    )
    PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL = (
        "property_removed_from_open_content_model",
        True,
        "a property was removed from an open content model",
    )
    PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL = (
        "property_removed_from_closed_content_model",
        False,
        "a property was removed from a closed content model (old data holding it is refused)",
    )
    PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL = (
        "property_with_false_removed_from_closed_content_model",
        True,
        "a property that was forbidden was removed from a closed content model",
    )
    PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "property_added_is_covered_by_partially_open_content_model",
        True,
        "a property was added that the old patternProperties or additionalProperties covered",
    )
    PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "property_added_not_covered_by_partially_open_content_model",
        False,
        "a property was added that the old patternProperties or additionalProperties do not cover",
    )
    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "property_removed_is_covered_by_partially_open_content_model",
        True,
        "a property was removed that the new patternProperties or additionalProperties cover",
    )
    PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "property_removed_not_covered_by_partially_open_content_model",
        False,
        "a property was removed that the new patternProperties or additionalProperties do not "
        "cover",
    )
    DEPENDENCY_ARRAY_ADDED = "dependency_array_added", False, "a dependentRequired was added"
    DEPENDENCY_ARRAY_REMOVED = "dependency_array_removed", True, "a dependentRequired was removed"
    DEPENDENCY_ARRAY_EXTENDED = (
        "dependency_array_extended",
        False,
        "a dependentRequired requires more properties",
    )
    DEPENDENCY_ARRAY_NARROWED = (
        "dependency_array_narrowed",
        True,
        "a dependentRequired requires fewer properties",
    )
    DEPENDENCY_ARRAY_CHANGED = "dependency_array_changed", False, "a dependentRequired changed"
    DEPENDENCY_SCHEMA_ADDED = "dependency_schema_added", False, "a dependentSchemas was added"
    DEPENDENCY_SCHEMA_REMOVED = "dependency_schema_removed", True, "a dependentSchemas was removed"
    MAX_PROPERTIES_ADDED = "max_properties_added", False, "a maxProperties was added"
    MAX_PROPERTIES_REMOVED = "max_properties_removed", True, "the maxProperties was removed"
    MAX_PROPERTIES_INCREASED = "max_properties_increased", True, "the maxProperties was increased"
    MAX_PROPERTIES_DECREASED = (
        "max_properties_decreased",
        False,
        "the maxProperties was decreased",
    )
    MIN_PROPERTIES_ADDED = "min_properties_added", False, "a minProperties was added"
    MIN_PROPERTIES_REMOVED = "min_properties_removed", True, "the minProperties was removed"
    MIN_PROPERTIES_INCREASED = (
        "min_properties_increased",
        False,
        "the minProperties was increased",
    )
    MIN_PROPERTIES_DECREASED = "min_properties_decreased", True, "the minProperties was decreased"
    ADDITIONAL_PROPERTIES_ADDED = (
        "additional_properties_added",
        True,
        "additionalProperties was opened",
    )
    ADDITIONAL_PROPERTIES_REMOVED = (
        "additional_properties_removed",
        False,
        "additionalProperties was closed (old data with other properties is refused)",
    )
    ADDITIONAL_PROPERTIES_EXTENDED = (
        "additional_properties_extended",
        True,
        "the additionalProperties schema was removed (any value now)",
    )
    ADDITIONAL_PROPERTIES_NARROWED = (
        "additional_properties_narrowed",
        False,
        "an additionalProperties schema was added",
    )
    UNEVALUATED_PROPERTIES_ADDED = (
        "unevaluated_properties_added",
        True,
        "unevaluatedProperties was opened",
    )
    UNEVALUATED_PROPERTIES_REMOVED = (
        "unevaluated_properties_removed",
        False,
        "unevaluatedProperties was closed",
    )
    UNEVALUATED_PROPERTIES_EXTENDED = (
        "unevaluated_properties_extended",
        True,
        "the unevaluatedProperties schema was widened",
    )
    UNEVALUATED_PROPERTIES_NARROWED = (
        "unevaluated_properties_narrowed",
        False,
        "the unevaluatedProperties schema was narrowed",
    )
    # arrays
    MAX_ITEMS_ADDED = "max_items_added", False, "a maxItems was added"
    MAX_ITEMS_REMOVED = "max_items_removed", True, "the maxItems was removed"
    MAX_ITEMS_INCREASED = "max_items_increased", True, "the maxItems was increased"
    MAX_ITEMS_DECREASED = "max_items_decreased", False, "the maxItems was decreased"
    MIN_ITEMS_ADDED = "min_items_added", False, "a minItems was added"
    MIN_ITEMS_REMOVED = "min_items_removed", True, "the minItems was removed"
    MIN_ITEMS_INCREASED = "min_items_increased", False, "the minItems was increased"
    MIN_ITEMS_DECREASED = "min_items_decreased", True, "the minItems was decreased"
    MAX_CONTAINS_ADDED = "max_contains_added", False, "a maxContains was added"
    MAX_CONTAINS_REMOVED = "max_contains_removed", True, "the maxContains was removed"
    MAX_CONTAINS_INCREASED = "max_contains_increased", True, "the maxContains was increased"
    MAX_CONTAINS_DECREASED = "max_contains_decreased", False, "the maxContains was decreased"
    MIN_CONTAINS_ADDED = "min_contains_added", False, "a minContains was added"
    MIN_CONTAINS_REMOVED = "min_contains_removed", True, "the minContains was removed"
    MIN_CONTAINS_INCREASED = "min_contains_increased", False, "the minContains was increased"
    MIN_CONTAINS_DECREASED = "min_contains_decreased", True, "the minContains was decreased"
    UNIQUE_ITEMS_ADDED = "unique_items_added", False, "uniqueItems was added"
    UNIQUE_ITEMS_REMOVED = "unique_items_removed", True, "uniqueItems was removed"
    ADDITIONAL_ITEMS_ADDED = "additional_items_added", True, "items after the tuple were allowed"
    ADDITIONAL_ITEMS_REMOVED = (
        "additional_items_removed",
        False,
        "items after the tuple were forbidden",
    )
    ADDITIONAL_ITEMS_EXTENDED = (
        "additional_items_extended",
        True,
        "the schema of items after the tuple was removed",
    )
    ADDITIONAL_ITEMS_NARROWED = (
        "additional_items_narrowed",
        False,
        "a schema for items after the tuple was added",
    )
    UNEVALUATED_ITEMS_ADDED = "unevaluated_items_added", True, "unevaluatedItems was opened"
    UNEVALUATED_ITEMS_REMOVED = "unevaluated_items_removed", False, "unevaluatedItems was closed"
    UNEVALUATED_ITEMS_EXTENDED = (
        "unevaluated_items_extended",
        True,
        "the unevaluatedItems schema was widened",
    )
    UNEVALUATED_ITEMS_NARROWED = (
        "unevaluated_items_narrowed",
        False,
        "the unevaluatedItems schema was narrowed",
    )
    ITEM_ADDED_TO_OPEN_CONTENT_MODEL = (
        "item_added_to_open_content_model",
        False,
        "a tuple item was added where any item was allowed",
    )
    ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL = (
        "item_with_empty_schema_added_to_open_content_model",
        True,
        "a tuple item that accepts anything was added",
    )
    ITEM_ADDED_TO_CLOSED_CONTENT_MODEL = (
        "item_added_to_closed_content_model",
        True,
        "a tuple item was added where no further item was allowed",
    )
    ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL = (
        "item_removed_from_open_content_model",
        True,
        "a tuple item was removed and any item is allowed in its place",
    )
    ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL = (
        "item_removed_from_closed_content_model",
        False,
        "a tuple item was removed and no item is allowed in its place",
    )
    ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL = (
        "item_with_false_removed_from_closed_content_model",
        True,
        "a forbidden tuple item was removed",
    )
    ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "item_added_is_covered_by_partially_open_content_model",
        True,
        "a tuple item was added that the old items schema covered",
    )
    ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "item_added_not_covered_by_partially_open_content_model",
        False,
        "a tuple item was added that the old items schema does not cover",
    )
    ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "item_removed_is_covered_by_partially_open_content_model",
        True,
        "a tuple item was removed that the new items schema covers",
    )
    ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL = (
        "item_removed_not_covered_by_partially_open_content_model",
        False,
        "a tuple item was removed that the new items schema does not cover",
    )
    # combinations
    COMBINED_TYPE_EXTENDED = "combined_type_extended", True, "the combination was widened"
    COMBINED_TYPE_CHANGED = "combined_type_changed", False, "the combination changed"
    PRODUCT_TYPE_EXTENDED = "product_type_extended", False, "allOf gained a schema"
    PRODUCT_TYPE_NARROWED = "product_type_narrowed", True, "allOf lost a schema"
    SUM_TYPE_EXTENDED = "sum_type_extended", True, "anyOf or oneOf gained a choice"
    SUM_TYPE_NARROWED = "sum_type_narrowed", False, "anyOf or oneOf lost a choice"
    COMBINED_TYPE_SUBSCHEMAS_CHANGED = (
        "combined_type_subschemas_changed",
        False,
        "the choices of anyOf, oneOf or allOf changed",
    )
    NOT_TYPE_EXTENDED = "not_type_extended", False, "the schema under not was widened"
    NOT_TYPE_NARROWED = "not_type_narrowed", True, "the schema under not was narrowed"

    def __init__(self, name: str, compatible: bool, description: str) -> None:
        self.rule = name
        self.compatible = compatible
        self.description = description


class Difference(NamedTuple):
    """One difference between two schemas.

    Attributes:
        path: where, as a JSON Pointer into the schemas (`#/properties/amount`).
        change: what kind of change it is.
        detail: the values involved (`integer -> string`), or "".
    """

    path: str
    change: Change
    detail: str = ""

    @property
    def compatible(self) -> bool:
        """Whether a reader of the update still reads data written under the original."""
        return self.change.compatible

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.path}: {self.change.description}{detail}"


Direction: TypeAlias = Literal["backward", "forward"]


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """A change that breaks a compatibility mode.

    Attributes:
        version: the earlier version it breaks against.
        direction: `backward` (the new version cannot read data of `version`) or `forward`
            (readers of `version` cannot read data of the new one).
        path: the JSON Pointer of the change inside the schemas (`#/properties/amount`).
        change: the rule (`Change.TYPE_CHANGED`, ...).
        detail: the values involved, or "".
    """

    version: int
    direction: Direction
    path: str
    change: Change
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        who = (
            f"the new version cannot read data of version {self.version}"
            if self.direction == "backward"
            else f"readers of version {self.version} cannot read data of the new version"
        )
        return f"{self.path}: {self.change.description}{detail}: {who} [{self.change.rule}]"


def breaking_changes(
    mode: Mode, new: JSONSchema, previous: Sequence[tuple[int, JSONSchema]]
) -> list[BreakingChange]:
    """Every change that keeps a new schema from being registered under a mode.

    Args:
        mode: the type's compatibility mode.
        new: the schema to register.
        previous: the registered versions, oldest first, as (version, schema).

    Returns:
        The breaking changes, against the newest version first; empty when the new schema is
        compatible.
    """
    if mode is Mode.NONE or not previous:
        return []
    against = list(reversed(previous)) if mode.transitive else [previous[-1]]
    found: list[BreakingChange] = []
    for version, old in against:
        if mode.backward:
            found.extend(
                BreakingChange(version, "backward", d.path, d.change, d.detail)
                for d in compare(old, new)
                if not d.compatible
            )
        if mode.forward:
            found.extend(
                BreakingChange(version, "forward", d.path, d.change, d.detail)
                for d in compare(new, old)
                if not d.compatible
            )
    return found


def compare(original: JSONSchema, update: JSONSchema) -> list[Difference]:
    """Every difference between two schemas, for a reader holding `update` and data written
    under `original`.

    Both are whole documents: `$ref`s are resolved within each (`#/$defs/...`). A reference
    that leads back to a pair of schemas being compared counts as compatible, as in Confluent's
    checker, so recursive schemas terminate.

    Args:
        original: the schema the data was written under.
        update: the schema of the reader.

    Returns:
        The differences, in the order found.
    """
    context = _Context(original, update)
    context.compare(original, update, "#")
    return context.differences


# -- the comparison --------------------------------------------------------------------------

_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "$anchor",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    }
)
_COMBINATORS: Final = ("anyOf", "oneOf", "allOf")
_OBJECT_KEYWORDS: Final = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "unevaluatedProperties",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "propertyNames",
    }
)
_ARRAY_KEYWORDS: Final = frozenset(
    {
        "items",
        "prefixItems",
        "additionalItems",
        "unevaluatedItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "contains",
        "minContains",
        "maxContains",
    }
)
_STRING_KEYWORDS: Final = frozenset({"minLength", "maxLength", "pattern"})
_NUMBER_KEYWORDS: Final = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)
_EMPTY: Final[Mapping[str, object]] = {}

Kind: TypeAlias = Literal[
    "empty", "false", "combined", "not", "enum", "const", "object", "array", "string",
    "number", "boolean", "null", "ref",
]  # fmt: skip


class _Node(NamedTuple):
    """A schema seen as Confluent's library sees it: one kind, with its keywords."""

    kind: Kind
    schema: Mapping[str, object]
    integer: bool = False
    criterion: str = ""
    subschemas: tuple[JSONSchema, ...] = ()


def _as_mapping(schema: JSONSchema) -> Mapping[str, object] | None:
    if schema is True:
        return _EMPTY
    if schema is False:
        return None
    return schema


def _classify(schema: JSONSchema) -> _Node:
    """The kind of a schema. A list of types, or a combinator beside other keywords, becomes a
    combination, as the everit library under Confluent's checker builds it."""
    mapping = _as_mapping(schema)
    if mapping is None:
        return _Node("false", _EMPTY)
    if "$ref" in mapping:
        rest = {k: v for k, v in mapping.items() if k != "$ref" and k not in _ANNOTATIONS}
        if rest:
            return _Node("combined", mapping, criterion="allOf", subschemas=(
                {"$ref": mapping["$ref"]}, rest,
            ))  # fmt: skip
        return _Node("ref", mapping)
    present = [name for name in _COMBINATORS if name in mapping]
    if present:
        rest = {k: v for k, v in mapping.items() if k not in _COMBINATORS}
        if len(present) > 1 or any(k not in _ANNOTATIONS for k in rest):
            parts: list[JSONSchema] = [{name: mapping[name]} for name in present]
            if any(k not in _ANNOTATIONS for k in rest):
                parts.insert(0, rest)
            return _Node("combined", mapping, criterion="allOf", subschemas=tuple(parts))
        choices = mapping[present[0]]
        subschemas = tuple(choices) if isinstance(choices, list) else ()
        return _Node("combined", mapping, criterion=present[0], subschemas=subschemas)
    if "not" in mapping:
        return _Node("not", mapping)
    if "const" in mapping:
        return _Node("const", mapping)
    if "enum" in mapping:
        return _Node("enum", mapping)
    declared = mapping.get("type")
    if isinstance(declared, list):
        if len(declared) == 1:
            declared = declared[0]
        else:
            rest = {k: v for k, v in mapping.items() if k != "type"}
            return _Node(
                "combined",
                mapping,
                criterion="anyOf",
                subschemas=tuple({**rest, "type": name} for name in declared),
            )
    if declared in ("integer", "number"):
        return _Node("number", mapping, integer=declared == "integer")
    if declared in ("object", "array", "string", "boolean", "null"):
        return _Node(declared, mapping)
    keys = set(mapping)
    for kind, keywords in (
        ("object", _OBJECT_KEYWORDS),
        ("array", _ARRAY_KEYWORDS),
        ("string", _STRING_KEYWORDS),
        ("number", _NUMBER_KEYWORDS),
    ):
        if keys & keywords:
            return _Node(kind, mapping)  # type: ignore[arg-type]
    return _Node("empty", mapping)


def _pointer(path: str, *parts: object) -> str:
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "/".join((path, *escaped))


def _resolve(root: JSONSchema, reference: object) -> JSONSchema:
    """The schema a `#...` reference points to inside its document (checked at registration:
    every reference is internal and resolves)."""
    if not isinstance(reference, str) or not reference.startswith("#"):
        return True
    node: object = root
    for raw in reference[1:].split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return True
    return node if isinstance(node, (Mapping, bool)) else True


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _is_empty(schema: JSONSchema) -> bool:
    return _classify(schema).kind == "empty"


def _is_false(schema: JSONSchema) -> bool:
    return _classify(schema).kind == "false"


class _Context:
    """One comparison: the two documents, the differences found, the pairs being compared."""

    def __init__(self, original_root: JSONSchema, update_root: JSONSchema) -> None:
        self.original_root = original_root
        self.update_root = update_root
        self.differences: list[Difference] = []
        self._on_stack: set[tuple[int, int]] = set()

    def add(self, path: str, change: Change, detail: str = "") -> None:
        self.differences.append(Difference(path, change, detail))

    def trial(self, original: JSONSchema | None, update: JSONSchema | None, path: str) -> bool:
        """Compare in a scratch context; keep nothing, say whether it was compatible."""
        saved = self.differences
        self.differences = []
        try:
            self.compare(original, update, path)
            return all(d.compatible for d in self.differences)
        finally:
            self.differences = saved

    def sub(
        self, original: JSONSchema | None, update: JSONSchema | None, path: str
    ) -> list[Difference]:
        """Compare in a scratch context and return what it found."""
        saved = self.differences
        self.differences = []
        try:
            self.compare(original, update, path)
            return self.differences
        finally:
            self.differences = saved

    def deref(self, schema: JSONSchema, root: JSONSchema) -> JSONSchema:
        seen = 0
        while isinstance(schema, Mapping) and _classify(schema).kind == "ref" and seen < 64:
            schema = _resolve(root, schema["$ref"])
            seen += 1
        return schema

    def compare(self, original: JSONSchema | None, update: JSONSchema | None, path: str) -> None:
        if original is None and update is None:
            return
        if original is None:
            self.add(path, Change.SCHEMA_ADDED)
            return
        if update is None:
            self.add(path, Change.SCHEMA_REMOVED)
            return
        original = self.deref(original, self.original_root)
        update = self.deref(update, self.update_root)
        key = (id(original), id(update))
        if key in self._on_stack:
            return  # a cycle through references: assumed compatible, as Confluent does
        self._on_stack.add(key)
        try:
            self._compare_types(original, update, path)
        finally:
            self._on_stack.discard(key)

    def _compare_types(self, original: JSONSchema, update: JSONSchema, path: str) -> None:
        old = _classify(original)
        new = _classify(update)
        if old.kind != "combined" and new.kind == "combined":
            if len(new.subschemas) == 1:
                found = self.sub(original, new.subschemas[0], path)
                if all(d.compatible for d in found):
                    self.differences.extend(found)
                    return
            elif new.criterion in ("anyOf", "oneOf"):
                for choice in new.subschemas:
                    found = self.sub(original, choice, path)
                    if all(d.compatible for d in found):
                        self.differences.extend(found)
                        self.add(path, Change.SUM_TYPE_EXTENDED)
                        return
        elif old.kind == "combined" and new.kind != "combined":
            if len(old.subschemas) == 1:
                found = self.sub(old.subschemas[0], update, path)
                if all(d.compatible for d in found):
                    self.differences.extend(found)
                    return
            elif old.criterion == "allOf":
                for part in old.subschemas:
                    found = self.sub(part, update, path)
                    if all(d.compatible for d in found):
                        self.differences.extend(found)
                        self.add(path, Change.PRODUCT_TYPE_NARROWED)
                        return
        if old.kind != new.kind:
            if old.kind == "false" or new.kind == "empty":
                return
            self.add(path, Change.TYPE_CHANGED, f"{_describe(old)} -> {_describe(new)}")
            return
        self._compare_annotations(old.schema, new.schema, path)
        compare_kind = _BY_KIND.get(old.kind)
        if compare_kind is not None:
            compare_kind(self, old, new, path)

    def _compare_annotations(
        self, original: Mapping[str, object], update: Mapping[str, object], path: str
    ) -> None:
        for keyword, change in (
            ("$id", Change.ID_CHANGED),
            ("title", Change.TITLE_CHANGED),
            ("description", Change.DESCRIPTION_CHANGED),
            ("default", Change.DEFAULT_CHANGED),
        ):
            if original.get(keyword) != update.get(keyword):
                self.add(path, change)


def _describe(node: _Node) -> str:
    if node.kind == "number":
        return "integer" if node.integer else "number"
    if node.kind == "combined":
        return node.criterion
    if node.kind == "false":
        return "false"
    return node.kind


def _bound(
    context: _Context,
    path: str,
    keyword: str,
    original: Mapping[str, object],
    update: Mapping[str, object],
    changes: tuple[Change, Change, Change, Change],
) -> None:
    """Compare a numeric bound: (added, removed, increased, decreased)."""
    old, new = _number(original.get(keyword)), _number(update.get(keyword))
    if old == new:
        return
    added, removed, increased, decreased = changes
    where = _pointer(path, keyword)
    if old is None:
        context.add(where, added, f"{update[keyword]}")
    elif new is None:
        context.add(where, removed, f"was {original[keyword]}")
    elif old < new:
        context.add(where, increased, f"{original[keyword]} -> {update[keyword]}")
    else:
        context.add(where, decreased, f"{original[keyword]} -> {update[keyword]}")


def _compare_string(context: _Context, old: _Node, new: _Node, path: str) -> None:
    original, update = old.schema, new.schema
    _bound(context, path, "maxLength", original, update, (
        Change.MAX_LENGTH_ADDED, Change.MAX_LENGTH_REMOVED,
        Change.MAX_LENGTH_INCREASED, Change.MAX_LENGTH_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "minLength", original, update, (
        Change.MIN_LENGTH_ADDED, Change.MIN_LENGTH_REMOVED,
        Change.MIN_LENGTH_INCREASED, Change.MIN_LENGTH_DECREASED,
    ))  # fmt: skip
    before, after = original.get("pattern"), update.get("pattern")
    where = _pointer(path, "pattern")
    if before is None and after is not None:
        context.add(where, Change.PATTERN_ADDED, f"{after}")
    elif before is not None and after is None:
        context.add(where, Change.PATTERN_REMOVED, f"was {before}")
    elif before != after:
        context.add(where, Change.PATTERN_CHANGED, f"{before} -> {after}")


def _exclusive(schema: Mapping[str, object], keyword: str) -> float | None:
    return _number(schema.get(keyword))


def _compare_number(context: _Context, old: _Node, new: _Node, path: str) -> None:
    original, update = old.schema, new.schema
    _bound(context, path, "maximum", original, update, (
        Change.MAXIMUM_ADDED, Change.MAXIMUM_REMOVED,
        Change.MAXIMUM_INCREASED, Change.MAXIMUM_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "minimum", original, update, (
        Change.MINIMUM_ADDED, Change.MINIMUM_REMOVED,
        Change.MINIMUM_INCREASED, Change.MINIMUM_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "exclusiveMaximum", original, update, (
        Change.EXCLUSIVE_MAXIMUM_ADDED, Change.EXCLUSIVE_MAXIMUM_REMOVED,
        Change.EXCLUSIVE_MAXIMUM_INCREASED, Change.EXCLUSIVE_MAXIMUM_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "exclusiveMinimum", original, update, (
        Change.EXCLUSIVE_MINIMUM_ADDED, Change.EXCLUSIVE_MINIMUM_REMOVED,
        Change.EXCLUSIVE_MINIMUM_INCREASED, Change.EXCLUSIVE_MINIMUM_DECREASED,
    ))  # fmt: skip
    before, after = _number(original.get("multipleOf")), _number(update.get("multipleOf"))
    where = _pointer(path, "multipleOf")
    if before != after:
        if before is None:
            context.add(where, Change.MULTIPLE_OF_ADDED, f"{after:g}")
        elif after is None:
            context.add(where, Change.MULTIPLE_OF_REMOVED, f"was {before:g}")
        elif before and _divides(before, after):
            context.add(where, Change.MULTIPLE_OF_EXPANDED, f"{before:g} -> {after:g}")
        elif after and _divides(after, before):
            context.add(where, Change.MULTIPLE_OF_REDUCED, f"{before:g} -> {after:g}")
        else:
            context.add(where, Change.MULTIPLE_OF_CHANGED, f"{before:g} -> {after:g}")
    if old.integer != new.integer:
        if old.integer:
            context.add(_pointer(path, "type"), Change.TYPE_EXTENDED, "integer -> number")
        else:
            context.add(_pointer(path, "type"), Change.TYPE_NARROWED, "number -> integer")


def _divides(divisor: float, value: float) -> bool:
    quotient = value / divisor
    return math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9)


def _values(schema: Mapping[str, object], keyword: str) -> list[object]:
    raw = schema.get(keyword)
    return list(raw) if isinstance(raw, list) else [raw]


def _contains_all(values: list[object], others: list[object]) -> bool:
    return all(any(_same(value, other) for value in values) for other in others)


def _same(first: object, second: object) -> bool:
    # JSON equality: 1 and 1.0 are one number, true is not 1.
    if isinstance(first, bool) or isinstance(second, bool):
        return type(first) is type(second) and first == second
    return first == second


def _compare_enum(context: _Context, old: _Node, new: _Node, path: str) -> None:
    before, after = _values(old.schema, "enum"), _values(new.schema, "enum")
    where = _pointer(path, "enum")
    if _contains_all(before, after) and _contains_all(after, before):
        return
    if _contains_all(after, before):
        added = [v for v in after if not any(_same(v, b) for b in before)]
        context.add(where, Change.ENUM_ARRAY_EXTENDED, f"added {_listing(added)}")
    elif _contains_all(before, after):
        removed = [v for v in before if not any(_same(v, a) for a in after)]
        context.add(where, Change.ENUM_ARRAY_NARROWED, f"removed {_listing(removed)}")
    else:
        context.add(where, Change.ENUM_ARRAY_CHANGED, f"{_listing(before)} -> {_listing(after)}")


def _listing(values: list[object]) -> str:
    return ", ".join(json.dumps(value) for value in values)


def _compare_const(context: _Context, old: _Node, new: _Node, path: str) -> None:
    before, after = old.schema.get("const"), new.schema.get("const")
    if not _same(before, after):
        context.add(_pointer(path, "const"), Change.ENUM_ARRAY_CHANGED, f"{before} -> {after}")


def _compare_not(context: _Context, old: _Node, new: _Node, path: str) -> None:
    where = _pointer(path, "not")
    # What is forbidden is read the other way round: forbidding less accepts more.
    before = old.schema.get("not")
    after = new.schema.get("not")
    if context.trial(after if isinstance(after, (Mapping, bool)) else True,
                     before if isinstance(before, (Mapping, bool)) else True, where):  # fmt: skip
        if before != after:
            context.add(where, Change.NOT_TYPE_NARROWED)
    else:
        context.add(where, Change.NOT_TYPE_EXTENDED)


def _compare_combined(context: _Context, old: _Node, new: _Node, path: str) -> None:
    if old.criterion != new.criterion:
        single_old, single_new = len(old.subschemas) == 1, len(new.subschemas) == 1
        if (
            new.criterion == "anyOf"
            or (single_old and single_new)
            or (single_old and new.criterion == "oneOf")
            or (single_new and old.criterion == "allOf")
        ):
            context.add(path, Change.COMBINED_TYPE_EXTENDED, f"{old.criterion} -> {new.criterion}")
        else:
            context.add(path, Change.COMBINED_TYPE_CHANGED, f"{old.criterion} -> {new.criterion}")
            return
    before = _distinct(old.subschemas)
    after = _distinct(new.subschemas)
    if len(before) < len(after):
        context.add(
            path,
            Change.PRODUCT_TYPE_EXTENDED if new.criterion == "allOf" else Change.SUM_TYPE_EXTENDED,
        )
    elif len(before) > len(after):
        context.add(
            path,
            Change.SUM_TYPE_NARROWED
            if old.criterion in ("anyOf", "oneOf")
            else Change.PRODUCT_TYPE_NARROWED,
        )
    edges: dict[int, dict[int, list[Difference]]] = {}
    for i, choice in enumerate(before):
        where = _pointer(path, old.criterion, i)
        for j, other in enumerate(after):
            found = context.sub(choice, other, where)
            if all(d.compatible for d in found):
                edges.setdefault(i, {})[j] = found
    matching = _maximum_matching(edges, len(before))
    for i, j in sorted(matching.items()):
        context.differences.extend(edges[i][j])
    if len(matching) < min(len(before), len(after)):
        context.add(path, Change.COMBINED_TYPE_SUBSCHEMAS_CHANGED)


def _distinct(schemas: tuple[JSONSchema, ...]) -> list[JSONSchema]:
    kept: list[JSONSchema] = []
    for schema in schemas:
        if not any(schema == other for other in kept):
            kept.append(schema)
    return kept


def _maximum_matching(edges: Mapping[int, Mapping[int, object]], left: int) -> dict[int, int]:
    """A maximum matching of a small bipartite graph (Kuhn's augmenting paths): left -> right."""
    match_right: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges.get(i, {}):
            if j in seen:
                continue
            seen.add(j)
            if j not in match_right or augment(match_right[j], seen):
                match_right[j] = i
                return True
        return False

    for i in range(left):
        augment(i, set())
    return {i: j for j, i in match_right.items()}


def _properties(schema: Mapping[str, object]) -> Mapping[str, JSONSchema]:
    raw = schema.get("properties")
    return raw if isinstance(raw, Mapping) else {}


def _required(schema: Mapping[str, object]) -> set[str]:
    raw = schema.get("required")
    return {name for name in raw if isinstance(name, str)} if isinstance(raw, list) else set()


def _has_default(schema: JSONSchema) -> bool:
    return isinstance(schema, Mapping) and "default" in schema


def _extra(schema: Mapping[str, object], keyword: str) -> JSONSchema | None:
    raw = schema.get(keyword)
    return raw if isinstance(raw, (Mapping, bool)) else None


def _open_object(schema: Mapping[str, object]) -> bool:
    """An open content model: any other property, of any value, is allowed."""
    additional = _extra(schema, "additionalProperties")
    if additional is not None and not _is_empty(additional):
        return False
    if schema.get("patternProperties"):
        return False
    if additional is None:
        unevaluated = _extra(schema, "unevaluatedProperties")
        return unevaluated is None or _is_empty(unevaluated)
    return True


def _partial_object(schema: Mapping[str, object], name: str) -> JSONSchema | None:
    """The schema a partially open content model gives an undeclared property, or None."""
    patterns = schema.get("patternProperties")
    if isinstance(patterns, Mapping):
        for pattern, subschema in patterns.items():
            try:
                if re.search(pattern, name):
                    return subschema  # type: ignore[no-any-return]
            except re.error:
                continue
    additional = _extra(schema, "additionalProperties")
    if additional is not None and not _is_empty(additional) and not _is_false(additional):
        return additional
    if additional is None:
        unevaluated = _extra(schema, "unevaluatedProperties")
        if unevaluated is not None and not _is_empty(unevaluated) and not _is_false(unevaluated):
            return unevaluated
    return None


def _compare_object(context: _Context, old: _Node, new: _Node, path: str) -> None:
    original, update = old.schema, new.schema
    before, after = _properties(original), _properties(update)
    required_before, required_after = _required(original), _required(update)
    for name in before:
        if name in after:
            where = _pointer(path, "required", name)
            if name in required_before and name not in required_after:
                context.add(where, Change.REQUIRED_ATTRIBUTE_REMOVED)
            elif name not in required_before and name in required_after:
                if _has_default(after[name]):
                    context.add(where, Change.REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED)
                else:
                    context.add(where, Change.REQUIRED_ATTRIBUTE_ADDED)
    for name in _ordered_union(before, after):
        where = _pointer(path, "properties", name)
        if name not in after:
            _property_removed(context, update, name, before[name], where)
        elif name not in before:
            _property_added(context, original, update, name, after[name], where)
        else:
            context.compare(before[name], after[name], where)
    _compare_dependencies(context, original, update, path)
    _compare_open(context, original, update, _pointer(path, "additionalProperties"),
                  "additionalProperties", _ADDITIONAL_PROPERTIES)  # fmt: skip
    _compare_unevaluated(context, original, update, _pointer(path, "unevaluatedProperties"),
                         "unevaluatedProperties", _UNEVALUATED_PROPERTIES)  # fmt: skip
    _bound(context, path, "maxProperties", original, update, (
        Change.MAX_PROPERTIES_ADDED, Change.MAX_PROPERTIES_REMOVED,
        Change.MAX_PROPERTIES_INCREASED, Change.MAX_PROPERTIES_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "minProperties", original, update, (
        Change.MIN_PROPERTIES_ADDED, Change.MIN_PROPERTIES_REMOVED,
        Change.MIN_PROPERTIES_INCREASED, Change.MIN_PROPERTIES_DECREASED,
    ))  # fmt: skip


def _ordered_union(first: Mapping[str, object], second: Mapping[str, object]) -> Iterator[str]:
    yield from first
    yield from (name for name in second if name not in first)


def _property_removed(
    context: _Context,
    update: Mapping[str, object],
    name: str,
    schema: JSONSchema,
    where: str,
) -> None:
    # Only the reader's content model matters: it decides what it makes of the property.
    if _open_object(update):
        context.add(where, Change.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL)
        return
    partial = _partial_object(update, name)
    if partial is not None:
        found = context.sub(schema, partial, where)
        context.differences.extend(found)
        if all(d.compatible for d in found):
            context.add(where, Change.PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
        else:
            context.add(where, Change.PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    elif _is_false(schema):
        context.add(where, Change.PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    else:
        context.add(where, Change.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)


def _property_added(
    context: _Context,
    original: Mapping[str, object],
    update: Mapping[str, object],
    name: str,
    schema: JSONSchema,
    where: str,
) -> None:
    # Only the writer's content model matters: it decides what old data may hold.
    required = name in _required(update)
    if _open_object(original):
        # Required first: old data may lack the property, whatever its schema accepts (here
        # eventvault is stricter than Confluent, which calls a required property with an empty
        # schema compatible).
        if _is_empty(schema) and not required:
            context.add(where, Change.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL)
        elif required:
            context.add(
                where,
                Change.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL
                if _has_default(schema)
                else Change.REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
            )
        else:
            context.add(where, Change.OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL)
        return
    partial = _partial_object(original, name)
    if partial is not None:
        found = context.sub(partial, schema, where)
        context.differences.extend(found)
        if all(d.compatible for d in found):
            context.add(where, Change.PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
        else:
            context.add(where, Change.PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
    if required:
        context.add(
            where,
            Change.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
            if _has_default(schema)
            else Change.REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
        )
    else:
        context.add(where, Change.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL)


def _dependencies(schema: Mapping[str, object]) -> tuple[dict[str, set[str]], dict[str, object]]:
    arrays: dict[str, set[str]] = {}
    schemas: dict[str, object] = {}
    for keyword in ("dependencies", "dependentRequired", "dependentSchemas"):
        raw = schema.get(keyword)
        if not isinstance(raw, Mapping):
            continue
        for name, value in raw.items():
            if isinstance(value, list):
                arrays[name] = {item for item in value if isinstance(item, str)}
            elif isinstance(value, (Mapping, bool)):
                schemas[name] = value
    return arrays, schemas


def _compare_dependencies(
    context: _Context, original: Mapping[str, object], update: Mapping[str, object], path: str
) -> None:
    arrays_before, schemas_before = _dependencies(original)
    arrays_after, schemas_after = _dependencies(update)
    for name in _ordered_union(arrays_before, arrays_after):
        where = _pointer(path, "dependentRequired", name)
        old, new = arrays_before.get(name), arrays_after.get(name)
        if new is None:
            context.add(where, Change.DEPENDENCY_ARRAY_REMOVED)
        elif old is None:
            context.add(where, Change.DEPENDENCY_ARRAY_ADDED)
        elif old != new:
            if new >= old:
                context.add(where, Change.DEPENDENCY_ARRAY_EXTENDED)
            elif old >= new:
                context.add(where, Change.DEPENDENCY_ARRAY_NARROWED)
            else:
                context.add(where, Change.DEPENDENCY_ARRAY_CHANGED)
    for name in _ordered_union(schemas_before, schemas_after):
        where = _pointer(path, "dependentSchemas", name)
        old_schema, new_schema = schemas_before.get(name), schemas_after.get(name)
        if new_schema is None:
            context.add(where, Change.DEPENDENCY_SCHEMA_REMOVED)
        elif old_schema is None:
            context.add(where, Change.DEPENDENCY_SCHEMA_ADDED)
        else:
            context.compare(old_schema, new_schema, where)  # type: ignore[arg-type]


class _OpenChanges(NamedTuple):
    added: Change
    removed: Change
    extended: Change
    narrowed: Change


_ADDITIONAL_PROPERTIES: Final = _OpenChanges(
    Change.ADDITIONAL_PROPERTIES_ADDED,
    Change.ADDITIONAL_PROPERTIES_REMOVED,
    Change.ADDITIONAL_PROPERTIES_EXTENDED,
    Change.ADDITIONAL_PROPERTIES_NARROWED,
)
_UNEVALUATED_PROPERTIES: Final = _OpenChanges(
    Change.UNEVALUATED_PROPERTIES_ADDED,
    Change.UNEVALUATED_PROPERTIES_REMOVED,
    Change.UNEVALUATED_PROPERTIES_EXTENDED,
    Change.UNEVALUATED_PROPERTIES_NARROWED,
)
_ADDITIONAL_ITEMS: Final = _OpenChanges(
    Change.ADDITIONAL_ITEMS_ADDED,
    Change.ADDITIONAL_ITEMS_REMOVED,
    Change.ADDITIONAL_ITEMS_EXTENDED,
    Change.ADDITIONAL_ITEMS_NARROWED,
)
_UNEVALUATED_ITEMS: Final = _OpenChanges(
    Change.UNEVALUATED_ITEMS_ADDED,
    Change.UNEVALUATED_ITEMS_REMOVED,
    Change.UNEVALUATED_ITEMS_EXTENDED,
    Change.UNEVALUATED_ITEMS_NARROWED,
)


def _compare_open(
    context: _Context,
    original: Mapping[str, object],
    update: Mapping[str, object],
    where: str,
    keyword: str,
    changes: _OpenChanges,
) -> None:
    """`additionalProperties` (or the `items` after a tuple): absent or true is open, false is
    closed, a schema is partly open."""
    before, after = _extra(original, keyword), _extra(update, keyword)
    permits_before = before is None or not _is_false(before)
    permits_after = after is None or not _is_false(after)
    schema_before = None if before is None or _is_empty(before) or _is_false(before) else before
    schema_after = None if after is None or _is_empty(after) or _is_false(after) else after
    if permits_before != permits_after:
        context.add(where, changes.added if permits_after else changes.removed)
    elif schema_before is None and schema_after is not None:
        context.add(where, changes.narrowed)
    elif schema_before is not None and schema_after is None:
        context.add(where, changes.extended)
    elif schema_before is not None and schema_after is not None:
        context.compare(schema_before, schema_after, where)


def _compare_unevaluated(
    context: _Context,
    original: Mapping[str, object],
    update: Mapping[str, object],
    where: str,
    keyword: str,
    changes: _OpenChanges,
) -> None:
    before, after = _extra(original, keyword), _extra(update, keyword)
    if before is None and after is None:
        return
    if before is None:
        context.add(where, changes.removed if _is_false(after or True) else changes.narrowed)
    elif after is None:
        context.add(where, changes.added if _is_false(before) else changes.extended)
    elif _is_false(before) and not _is_false(after):
        context.add(where, changes.added)
    elif not _is_false(before) and _is_false(after):
        context.add(where, changes.removed)
    elif _is_empty(before) and not _is_empty(after):
        context.add(where, changes.narrowed)
    elif not _is_empty(before) and _is_empty(after):
        context.add(where, changes.extended)
    else:
        context.compare(before, after, where)


def _tuple_items(schema: Mapping[str, object]) -> tuple[list[JSONSchema], str]:
    """A 2020-12 array's tuple (`prefixItems`) and the keyword that governs the items after
    it (`items`); without a tuple, `items` governs every item."""
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [item for item in prefix if isinstance(item, (Mapping, bool))], "items"
    legacy = schema.get("items")
    if isinstance(legacy, list):  # draft 2019-09 and earlier tuples
        return [item for item in legacy if isinstance(item, (Mapping, bool))], "additionalItems"
    return [], ""


def _open_array(schema: Mapping[str, object], keyword: str) -> bool:
    rest = _extra(schema, keyword)
    if rest is not None and not _is_empty(rest):
        return False
    if rest is None:
        unevaluated = _extra(schema, "unevaluatedItems")
        return unevaluated is None or _is_empty(unevaluated)
    return True


def _partial_array(schema: Mapping[str, object], keyword: str) -> JSONSchema | None:
    rest = _extra(schema, keyword)
    if rest is not None and not _is_empty(rest) and not _is_false(rest):
        return rest
    if rest is None:
        unevaluated = _extra(schema, "unevaluatedItems")
        if unevaluated is not None and not _is_empty(unevaluated) and not _is_false(unevaluated):
            return unevaluated
    return None


def _compare_array(context: _Context, old: _Node, new: _Node, path: str) -> None:
    original, update = old.schema, new.schema
    tuple_before, rest_before = _tuple_items(original)
    tuple_after, rest_after = _tuple_items(update)
    if not rest_before and not rest_after:
        every_before, every_after = _extra(original, "items"), _extra(update, "items")
        if every_before is not None or every_after is not None:
            context.compare(
                True if every_before is None else every_before,
                True if every_after is None else every_after,
                _pointer(path, "items"),
            )
    else:
        _compare_tuples(context, original, update, tuple_before, tuple_after, path,
                        rest_before or "items", rest_after or "items")  # fmt: skip
    _compare_unevaluated(context, original, update, _pointer(path, "unevaluatedItems"),
                         "unevaluatedItems", _UNEVALUATED_ITEMS)  # fmt: skip
    _bound(context, path, "maxItems", original, update, (
        Change.MAX_ITEMS_ADDED, Change.MAX_ITEMS_REMOVED,
        Change.MAX_ITEMS_INCREASED, Change.MAX_ITEMS_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "minItems", original, update, (
        Change.MIN_ITEMS_ADDED, Change.MIN_ITEMS_REMOVED,
        Change.MIN_ITEMS_INCREASED, Change.MIN_ITEMS_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "maxContains", original, update, (
        Change.MAX_CONTAINS_ADDED, Change.MAX_CONTAINS_REMOVED,
        Change.MAX_CONTAINS_INCREASED, Change.MAX_CONTAINS_DECREASED,
    ))  # fmt: skip
    _bound(context, path, "minContains", original, update, (
        Change.MIN_CONTAINS_ADDED, Change.MIN_CONTAINS_REMOVED,
        Change.MIN_CONTAINS_INCREASED, Change.MIN_CONTAINS_DECREASED,
    ))  # fmt: skip
    unique_before = original.get("uniqueItems") is True
    unique_after = update.get("uniqueItems") is True
    if unique_before != unique_after:
        context.add(
            _pointer(path, "uniqueItems"),
            Change.UNIQUE_ITEMS_REMOVED if unique_before else Change.UNIQUE_ITEMS_ADDED,
        )


def _compare_tuples(
    context: _Context,
    original: Mapping[str, object],
    update: Mapping[str, object],
    before: list[JSONSchema],
    after: list[JSONSchema],
    path: str,
    rest_before: str,
    rest_after: str,
) -> None:
    common = min(len(before), len(after))
    for index in range(common):
        context.compare(before[index], after[index], _pointer(path, "prefixItems", index))
    for index in range(common, len(before)):
        where = _pointer(path, "prefixItems", index)
        if _open_array(update, rest_after):
            context.add(where, Change.ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL)
            continue
        partial = _partial_array(update, rest_after)
        if partial is not None:
            found = context.sub(before[index], partial, where)
            context.differences.extend(found)
            context.add(
                where,
                Change.ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                if all(d.compatible for d in found)
                else Change.ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            )
        elif _is_false(before[index]):
            context.add(where, Change.ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL)
        else:
            context.add(where, Change.ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL)
    for index in range(common, len(after)):
        where = _pointer(path, "prefixItems", index)
        if _open_array(original, rest_before):
            context.add(
                where,
                Change.ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                if _is_empty(after[index])
                else Change.ITEM_ADDED_TO_OPEN_CONTENT_MODEL,
            )
            continue
        partial = _partial_array(original, rest_before)
        if partial is not None:
            found = context.sub(partial, after[index], where)
            context.differences.extend(found)
            context.add(
                where,
                Change.ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                if all(d.compatible for d in found)
                else Change.ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
            )
        else:
            context.add(where, Change.ITEM_ADDED_TO_CLOSED_CONTENT_MODEL)
    # The items after the tuple: open, closed or partly open, as additionalItems in Confluent.
    rest_original = {"items": original.get(rest_before)} if rest_before in original else {}
    rest_update = {"items": update.get(rest_after)} if rest_after in update else {}
    _compare_open(context, rest_original, rest_update, _pointer(path, "items"), "items",
                  _ADDITIONAL_ITEMS)  # fmt: skip


_BY_KIND: Final[dict[str, Callable[[_Context, _Node, _Node, str], None]]] = {
    "string": _compare_string,
    "number": _compare_number,
    "enum": _compare_enum,
    "const": _compare_const,
    "not": _compare_not,
    "combined": _compare_combined,
    "object": _compare_object,
    "array": _compare_array,
}
