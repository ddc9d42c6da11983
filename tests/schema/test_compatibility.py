"""The compatibility rules, one per row in both directions, the modes, and two properties: a
schema is compatible with itself, and a change the checker calls compatible never makes a
document that was valid under the old schema invalid under the new one."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventvault.schema import Change, Mode, breaking_changes, compare

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}


def obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), *, closed: bool = True
) -> dict[str, Any]:
    """An object schema; closed (additionalProperties false) unless asked otherwise."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


# (id, old, new, the change found reading old data with new, backward ok, forward ok)
RULES: list[tuple[str, dict[str, Any], dict[str, Any], Change, bool, bool]] = [
    (
        "field removed, closed",
        obj({"a": STRING, "b": INTEGER}, ("a",)),
        obj({"a": STRING}, ("a",)),
        Change.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL,
        False,
        True,
    ),
    (
        "field removed, open",
        obj({"a": STRING, "b": INTEGER}, ("a",), closed=False),
        obj({"a": STRING}, ("a",), closed=False),
        Change.PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL,
        True,
        False,
    ),
    (
        "optional field added, closed",
        obj({"a": STRING}),
        obj({"a": STRING, "b": INTEGER}),
        Change.OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
        True,
        False,
    ),
    (
        "optional field added, open",
        obj({"a": STRING}, closed=False),
        obj({"a": STRING, "b": INTEGER}, closed=False),
        Change.OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
        False,
        True,
    ),
    (
        "field of any value added, open",
        obj({"a": STRING}, closed=False),
        obj({"a": STRING, "b": {}}, closed=False),
        Change.PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
        True,
        True,
    ),
    (
        "required field added",
        obj({"a": STRING}, ("a",)),
        obj({"a": STRING, "b": INTEGER}, ("a", "b")),
        Change.REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
        False,
        False,
    ),
    (
        "required field with a default added",
        obj({"a": STRING}, ("a",)),
        obj({"a": STRING, "b": {"type": "integer", "default": 0}}, ("a", "b")),
        Change.REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL,
        True,
        False,
    ),
    (
        "existing field made required",
        obj({"a": STRING, "b": INTEGER}, ("a",)),
        obj({"a": STRING, "b": INTEGER}, ("a", "b")),
        Change.REQUIRED_ATTRIBUTE_ADDED,
        False,
        True,
    ),
    (
        "type narrowed, number to integer",
        obj({"a": {"type": "number"}}),
        obj({"a": INTEGER}),
        Change.TYPE_NARROWED,
        False,
        True,
    ),
    (
        "type changed, string to integer",
        obj({"a": STRING}),
        obj({"a": INTEGER}),
        Change.TYPE_CHANGED,
        False,
        False,
    ),
    (
        "type widened, string to string or null",
        obj({"a": STRING}),
        obj({"a": {"anyOf": [STRING, {"type": "null"}]}}),
        Change.SUM_TYPE_EXTENDED,
        True,
        False,
    ),
    (
        "enum value removed",
        obj({"a": {"enum": ["EUR", "USD"]}}),
        obj({"a": {"enum": ["EUR"]}}),
        Change.ENUM_ARRAY_NARROWED,
        False,
        True,
    ),
    (
        "enum value added",
        obj({"a": {"enum": ["EUR"]}}),
        obj({"a": {"enum": ["EUR", "USD"]}}),
        Change.ENUM_ARRAY_EXTENDED,
        True,
        False,
    ),
    (
        "additionalProperties closed",
        obj({"a": STRING}, closed=False),
        obj({"a": STRING}),
        Change.ADDITIONAL_PROPERTIES_REMOVED,
        False,
        True,
    ),
    (
        "additionalProperties given a schema",
        obj({"a": STRING}, closed=False),
        {**obj({"a": STRING}, closed=False), "additionalProperties": STRING},
        Change.ADDITIONAL_PROPERTIES_NARROWED,
        False,
        True,
    ),
    (
        "maxLength decreased",
        obj({"a": {"type": "string", "maxLength": 10}}),
        obj({"a": {"type": "string", "maxLength": 5}}),
        Change.MAX_LENGTH_DECREASED,
        False,
        True,
    ),
    (
        "minimum added",
        obj({"a": INTEGER}),
        obj({"a": {"type": "integer", "minimum": 0}}),
        Change.MINIMUM_ADDED,
        False,
        True,
    ),
    (
        "pattern added",
        obj({"a": STRING}),
        obj({"a": {"type": "string", "pattern": "^[A-Z]{3}$"}}),
        Change.PATTERN_ADDED,
        False,
        True,
    ),
    (
        "multipleOf made a multiple",
        obj({"a": {"type": "integer", "multipleOf": 2}}),
        obj({"a": {"type": "integer", "multipleOf": 4}}),
        Change.MULTIPLE_OF_EXPANDED,
        False,
        True,
    ),
    (
        "array items type changed",
        obj({"a": {"type": "array", "items": STRING}}),
        obj({"a": {"type": "array", "items": INTEGER}}),
        Change.TYPE_CHANGED,
        False,
        False,
    ),
    (
        "maxItems decreased",
        obj({"a": {"type": "array", "maxItems": 5}}),
        obj({"a": {"type": "array", "maxItems": 3}}),
        Change.MAX_ITEMS_DECREASED,
        False,
        True,
    ),
    (
        "uniqueItems added",
        obj({"a": {"type": "array"}}),
        obj({"a": {"type": "array", "uniqueItems": True}}),
        Change.UNIQUE_ITEMS_ADDED,
        False,
        True,
    ),
    (
        "tuple item added where none was allowed",
        obj({"a": {"type": "array", "prefixItems": [STRING], "items": False}}),
        obj({"a": {"type": "array", "prefixItems": [STRING, INTEGER], "items": False}}),
        Change.ITEM_ADDED_TO_CLOSED_CONTENT_MODEL,
        True,
        False,
    ),
    (
        "dependentRequired added",
        obj({"a": STRING, "b": STRING}),
        {**obj({"a": STRING, "b": STRING}), "dependentRequired": {"a": ["b"]}},
        Change.DEPENDENCY_ARRAY_ADDED,
        False,
        True,
    ),
    (
        "const changed",
        obj({"a": {"const": "v1"}}),
        obj({"a": {"const": "v2"}}),
        Change.ENUM_ARRAY_CHANGED,
        False,
        False,
    ),
    (
        "description changed",
        obj({"a": STRING}),
        obj({"a": {"type": "string", "description": "the owner"}}),
        Change.DESCRIPTION_CHANGED,
        True,
        True,
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "change", "backward_ok", "forward_ok"),
    [row[1:] for row in RULES],
    ids=[row[0] for row in RULES],
)
def test_each_rule_is_found_and_judged_in_both_directions(
    old: dict[str, Any],
    new: dict[str, Any],
    change: Change,
    backward_ok: bool,
    forward_ok: bool,
) -> None:
    assert change in {d.change for d in compare(old, new)}
    backward = breaking_changes(Mode.BACKWARD, new, [(1, old)])
    forward = breaking_changes(Mode.FORWARD, new, [(1, old)])
    full = breaking_changes(Mode.FULL, new, [(1, old)])
    assert (not backward) is backward_ok, backward
    assert (not forward) is forward_ok, forward
    assert (not full) is (backward_ok and forward_ok)
    assert {b.direction for b in backward} <= {"backward"}
    assert {b.direction for b in forward} <= {"forward"}
    assert breaking_changes(Mode.NONE, new, [(1, old)]) == []


def test_a_breaking_change_names_its_json_path_inside_nested_definitions() -> None:
    line_v1 = obj({"sku": STRING, "quantity": INTEGER}, ("sku",))
    line_v2 = obj({"sku": STRING}, ("sku",))
    old = {**obj({"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}}),
           "$defs": {"Line": line_v1}}  # fmt: skip
    new = {**obj({"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}}),
           "$defs": {"Line": line_v2}}  # fmt: skip
    [change] = breaking_changes(Mode.BACKWARD, new, [(3, old)])
    assert change.path == "#/properties/lines/items/properties/quantity"
    assert change.change is Change.PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL
    assert change.version == 3
    assert "#/properties/lines/items/properties/quantity" in str(change)
    assert "version 3" in str(change)


def test_recursive_schemas_are_compared_without_end() -> None:
    node = {
        **obj({"value": INTEGER, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}),
    }
    assert [d for d in compare(node, node) if not d.compatible] == []
    changed = {**node, "properties": {**node["properties"], "value": STRING}}
    assert Change.TYPE_CHANGED in {d.change for d in compare(node, changed)}


def test_transitive_modes_check_every_earlier_version_the_others_only_the_latest() -> None:
    v1 = obj({"a": STRING})
    v2 = obj({"a": INTEGER})  # registered under NONE, say
    v3 = obj({"a": INTEGER, "b": STRING})
    history = [(1, v1), (2, v2)]
    assert breaking_changes(Mode.BACKWARD, v3, history) == []
    transitive = breaking_changes(Mode.BACKWARD_TRANSITIVE, v3, history)
    assert {(b.version, b.change) for b in transitive} == {(1, Change.TYPE_CHANGED)}
    forward = breaking_changes(Mode.FORWARD_TRANSITIVE, v3, history)
    assert {b.version for b in forward} == {1, 2}
    full = breaking_changes(Mode.FULL_TRANSITIVE, v3, history)
    assert {(b.version, b.direction) for b in full} == {
        (1, "backward"),
        (1, "forward"),
        (2, "forward"),
    }


# -- properties ------------------------------------------------------------------------------

KEYS = ("a", "b")
# Schemas of a property, in families of near relatives, so that a changed property is most
# often changed into a relative (narrowed, widened) rather than into anything at all.
FAMILIES: list[list[dict[str, Any]]] = [
    [{"type": "string"}, {"type": "string", "maxLength": 3}, {"type": "string", "minLength": 2}],
    [{"type": "integer"}, {"type": "integer", "minimum": 0}, {"type": "number"}],
    [{"enum": ["x", "y"]}, {"enum": ["x"]}, {"enum": ["x", "y", "abcdef"]}],
    [{"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "null"}],
    [{"type": "boolean"}, {}, {"type": "array"}],
]
LEAVES: list[dict[str, Any]] = [leaf for family in FAMILIES for leaf in family]


def _relative(draw: st.DrawFn, leaf: dict[str, Any]) -> dict[str, Any]:
    family = next((f for f in FAMILIES if leaf in f), LEAVES)
    return draw(st.sampled_from(family))


@st.composite
def object_schemas(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=1, max_size=2))
    properties = {name: draw(st.sampled_from(LEAVES)) for name in names}
    required = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    return obj(properties, tuple(required), closed=draw(st.booleans()))


@st.composite
def schema_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A schema and a version of it with a few changes: a property's schema changed, added or
    removed, made required or optional, the object opened or closed."""
    old = draw(object_schemas())
    properties = dict(old["properties"])
    required = set(old.get("required", []))
    closed = "additionalProperties" in old
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(sorted(properties) or KEYS))
        action = draw(
            st.sampled_from(["retype", "retype", "retype", "add-or-remove", "require", "open"])
        )
        if action == "retype" and name in properties:
            properties[name] = _relative(draw, properties[name])
        elif action in ("retype", "add-or-remove") and name not in properties:
            properties[name] = draw(st.sampled_from(LEAVES))
        elif action == "add-or-remove":
            del properties[name]
            required.discard(name)
        elif action == "require" and name in properties:
            required ^= {name}
        elif action == "open":
            closed = not closed
    new = obj(properties, tuple(sorted(required)), closed=closed)
    return old, new


VALUES: st.SearchStrategy[object] = st.sampled_from(
    [None, True, 0, -1, 7, 2.5, "x", "y", "abcdef", []]
)
documents = st.lists(
    st.dictionaries(st.sampled_from((*KEYS, "d")), VALUES, max_size=4), min_size=30, max_size=30
)


@given(schema=object_schemas())
def test_a_schema_is_compatible_with_itself_in_every_mode(schema: dict[str, Any]) -> None:
    assert [d for d in compare(schema, schema) if not d.compatible] == []
    for mode in Mode:
        assert breaking_changes(mode, schema, [(1, schema)]) == []


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(pair=schema_pairs(), documents=documents)
def test_backward_compatible_means_every_document_valid_under_the_old_schema_is_valid_under_the_new(
    pair: tuple[dict[str, Any], dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    old, new = pair
    if breaking_changes(Mode.BACKWARD, new, [(1, old)]):
        return
    reads, writes = (jsonschema_rs.Draft202012Validator(s) for s in (new, old))
    for document in documents:
        if writes.is_valid(document):
            assert reads.is_valid(document), (old, new, document)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(pair=schema_pairs(), documents=documents)
def test_forward_compatible_means_every_document_valid_under_the_new_schema_is_valid_under_the_old(
    pair: tuple[dict[str, Any], dict[str, Any]], documents: list[dict[str, Any]]
) -> None:
    old, new = pair
    if breaking_changes(Mode.FORWARD, new, [(1, old)]):
        return
    reads, writes = (jsonschema_rs.Draft202012Validator(s) for s in (old, new))
    for document in documents:
        if writes.is_valid(document):
            assert reads.is_valid(document), (old, new, document)


def test_every_rule_of_the_docs_table_exists_and_is_judged_as_the_table_says() -> None:
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "schema-registry.md"
    section = page.read_text(encoding="utf-8").split("### The rules", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    rules = {change.rule: change for change in Change}
    checked = 0
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) != 5 or cells[2] not in ("ok", "breaks"):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[4])
        assert names, row
        for name in names:
            assert name in rules, name
        backward_ok = cells[2] == "ok"
        assert rules[names[0]].compatible is backward_ok, row
        checked += 1
    assert checked >= 25
