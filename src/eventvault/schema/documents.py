"""Schema documents: what the registry accepts, its canonical form, and schemas of classes.

A registered schema is a JSON Schema of draft 2020-12 that describes a JSON object (an event's
data always is one), complete in itself: every `$ref` points inside the document, so that no
validation ever reaches for a file or the network, and a schema read back years later means what
it meant. `checked_schema` enforces that and gives the form the registry stores; `class_schema`
derives the schema of a `msgspec.Struct` event class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import msgspec

from eventvault.errors import InvalidSchemaError, SchemaSupportMissingError

__all__ = [
    "DRAFT_2020_12",
    "MAX_SCHEMA_BYTES",
    "MAX_SCHEMA_DEPTH",
    "canonical_json",
    "checked_schema",
    "class_schema",
    "fingerprint",
    "parse_schema",
]

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
"""The `$schema` of every registered schema: the one draft the registry speaks."""
MAX_SCHEMA_BYTES: Final = 1024 * 1024
"""The largest schema, in bytes of its canonical JSON."""
MAX_SCHEMA_DEPTH: Final = 64
"""The deepest nesting of objects and arrays in a schema document."""

_ACCEPTED_DRAFTS: Final = frozenset({DRAFT_2020_12, DRAFT_2020_12 + "#"})


def parse_schema(text: bytes | str, event_type: str | None = None) -> dict[str, Any]:
    """Parse a schema document from JSON text (a file's contents).

    Args:
        text: the JSON.
        event_type: the type it is for, for the error message.

    Returns:
        The document, not yet checked (see `checked_schema`).

    Raises:
        InvalidSchemaError: the text is not JSON, or not a JSON object.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidSchemaError(event_type, "", f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidSchemaError(
            event_type, "", f"a schema is a JSON object, not {type(document).__name__}"
        )
    return document


def canonical_json(schema: Mapping[str, object]) -> bytes:
    """The bytes the registry stores for a schema: compact JSON with sorted keys, so that two
    equal schemas have equal bytes and the same fingerprint."""
    return msgspec.json.encode(schema, order="sorted")


def fingerprint(schema: Mapping[str, object]) -> str:
    """The SHA-256 of a schema's canonical JSON, in hex: equal schemas, equal fingerprints."""
    return hashlib.sha256(canonical_json(schema)).hexdigest()


_SUBSCHEMA: Final = frozenset(
    {
        "items", "additionalProperties", "additionalItems", "unevaluatedItems",
        "unevaluatedProperties", "not", "if", "then", "else", "contains", "propertyNames",
        "contentSchema",
    }
)  # fmt: skip
_SUBSCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SUBSCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})


def _depth(node: object, path: str, depth: int, event_type: str | None) -> None:
    """Refuse a document nested deeper than `MAX_SCHEMA_DEPTH` (it would exhaust the stack of
    every recursive reader of it)."""
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidSchemaError(
            event_type, path, f"nested deeper than {MAX_SCHEMA_DEPTH} levels of objects and arrays"
        )
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(value, (Mapping, list)):
                _depth(value, f"{path}/{_escape(str(key))}", depth + 1, event_type)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, (Mapping, list)):
                _depth(value, f"{path}/{index}", depth + 1, event_type)


def _walk(node: object, path: str) -> Iterator[tuple[str, Mapping[str, object]]]:
    """Every schema object of a document with its JSON Pointer: the keywords that hold
    schemas are followed; values that are data (`enum`, `const`, `default`, property names)
    are not."""
    if not isinstance(node, Mapping):
        return
    yield path, node
    for key, value in node.items():
        where = f"{path}/{_escape(str(key))}"
        if key in _SUBSCHEMA:
            yield from _walk(value, where)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            for name, subschema in value.items():
                yield from _walk(subschema, f"{where}/{_escape(str(name))}")
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            for index, subschema in enumerate(value):
                yield from _walk(subschema, f"{where}/{index}")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _pointer_target(document: Mapping[str, object], pointer: str) -> object:
    node: object = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def _check_references(document: Mapping[str, object], event_type: str | None) -> None:
    """Every `$ref` and `$dynamicRef` points inside the document and resolves; no `$id` below
    the top changes what a reference means."""
    anchors: set[str] = set()
    references: list[tuple[str, str, object]] = []
    for path, node in _walk(document, "#"):
        for keyword in ("$anchor", "$dynamicAnchor"):
            if isinstance(node.get(keyword), str):
                anchors.add(str(node[keyword]))
        if "$id" in node and path != "#":
            raise InvalidSchemaError(
                event_type,
                path,
                "an $id inside the schema starts another document; keep one document and "
                "refer to its parts with #/$defs/...",
            )
        for keyword in ("$ref", "$dynamicRef"):
            if keyword in node:
                references.append((f"{path}/{keyword}", keyword, node[keyword]))
    for path, keyword, target in references:
        if not isinstance(target, str) or not target.startswith("#"):
            raise InvalidSchemaError(
                event_type,
                path,
                f"{keyword} {target!r} points outside the document: a registered schema must be "
                "complete in itself (put what it refers to under $defs and use #/$defs/...)",
            )
        fragment = target[1:]
        if fragment.startswith("/") or fragment == "":
            try:
                _pointer_target(document, fragment)
            except KeyError:
                raise InvalidSchemaError(
                    event_type, path, f"{keyword} {target!r} points to nothing in the document"
                ) from None
        elif fragment not in anchors:
            raise InvalidSchemaError(
                event_type, path, f"{keyword} {target!r} names no $anchor of the document"
            )


def _top_type(document: Mapping[str, object]) -> object:
    node: object = document
    for _ in range(MAX_SCHEMA_DEPTH):
        if isinstance(node, Mapping) and "type" not in node and isinstance(node.get("$ref"), str):
            reference = str(node["$ref"])
            if not reference.startswith("#/") and reference != "#":
                break
            try:
                node = _pointer_target(document, reference[1:])
            except KeyError:
                break
            continue
        break
    return node.get("type") if isinstance(node, Mapping) else None


def checked_schema(schema: object, event_type: str | None = None) -> dict[str, Any]:
    """Check a schema document and give the form the registry stores.

    The rules: a JSON object; `$schema` absent or draft 2020-12 (the stored form always names
    it); valid against the draft's meta-schema; `"type": "object"` at the top (or where a top
    `$ref` leads), since an event's data is always a JSON object; every `$ref` and
    `$dynamicRef` inside the document (`#/...` or an `$anchor`), resolving to something; no `$id`
    below the top; at most `MAX_SCHEMA_DEPTH` levels and `MAX_SCHEMA_BYTES` bytes.

    Args:
        schema: the document, as parsed JSON.
        event_type: the type it is for, for error messages.

    Returns:
        The document with `$schema` set to draft 2020-12, ready to store.

    Raises:
        InvalidSchemaError: the document breaks a rule; the error names the JSON Pointer.
        SchemaSupportMissingError: jsonschema-rs is not installed.
    """
    if not isinstance(schema, Mapping):
        raise InvalidSchemaError(
            event_type, "", f"a schema is a JSON object, not {type(schema).__name__}"
        )
    try:
        document: dict[str, Any] = json.loads(json.dumps(schema, allow_nan=False))
    except RecursionError:
        raise InvalidSchemaError(
            event_type, "", f"nested deeper than {MAX_SCHEMA_DEPTH} levels of objects and arrays"
        ) from None
    except (TypeError, ValueError) as exc:
        raise InvalidSchemaError(event_type, "", f"not a JSON document: {exc}") from None
    _depth(document, "#", 0, event_type)
    draft = document.get("$schema", DRAFT_2020_12)
    if draft not in _ACCEPTED_DRAFTS:
        raise InvalidSchemaError(
            event_type,
            "#/$schema",
            f"the registry speaks JSON Schema draft 2020-12 ({DRAFT_2020_12}), not {draft!r}",
        )
    document["$schema"] = DRAFT_2020_12
    _check_references(document, event_type)
    _check_meta(document, event_type)
    declared = _top_type(document)
    if declared != "object" and declared != ["object"]:
        raise InvalidSchemaError(
            event_type,
            "#/type",
            'an event\'s data is a JSON object: the schema must say "type": "object" at the top, '
            f"not {json.dumps(declared) if declared is not None else 'nothing'}",
        )
    size = len(canonical_json(document))
    if size > MAX_SCHEMA_BYTES:
        raise InvalidSchemaError(
            event_type, "", f"{size} bytes, over the limit of {MAX_SCHEMA_BYTES} bytes"
        )
    _compile_check(document, event_type)
    return document


def _jsonschema_rs() -> Any:
    try:
        import jsonschema_rs
    except ImportError:
        raise SchemaSupportMissingError("checking and validating JSON Schemas") from None
    return jsonschema_rs


def _check_meta(document: Mapping[str, object], event_type: str | None) -> None:
    library = _jsonschema_rs()
    try:
        library.meta.validate(document)
    except library.ValidationError as exc:
        path = "#" + "".join(f"/{_escape(str(part))}" for part in exc.instance_path)
        raise InvalidSchemaError(
            event_type, path, f"not a valid draft 2020-12 schema: {exc.message}"
        ) from None


def _compile_check(document: Mapping[str, object], event_type: str | None) -> None:
    library = _jsonschema_rs()
    try:
        library.Draft202012Validator(document)
    except Exception as exc:  # the library's own errors: an invalid regex, a bad reference
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidSchemaError(event_type, "", f"cannot be compiled: {reason}") from None


def class_schema(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a `msgspec.Struct` event class, as the registry stores it.

    `msgspec.json.schema` gives a `$ref` to the class under `$defs`; the class's own schema is
    lifted to the top (its `$defs` kept beside it, so nested and recursive classes still
    resolve), and every struct's object schema is closed (`"additionalProperties": false`): an
    event written through the class never holds another property, and a closed content model is
    what lets a later version add an optional field under BACKWARD compatibility (see
    compatibility.py). Dict fields keep their own `additionalProperties`.

    Args:
        cls: the event class.

    Returns:
        The schema.

    Raises:
        InvalidSchemaError: msgspec cannot describe the class, or it does not encode to an
            object.
    """
    try:
        generated: dict[str, Any] = msgspec.json.schema(cls)
    except (TypeError, ValueError) as exc:
        raise InvalidSchemaError(
            None, "", f"msgspec cannot describe {cls.__qualname__}: {exc}"
        ) from None
    definitions: dict[str, Any] = dict(generated.get("$defs", {}))
    for name, definition in definitions.items():
        if (
            isinstance(definition, dict)
            and definition.get("type") == "object"
            and "properties" in definition
            and "additionalProperties" not in definition
        ):
            definitions[name] = {**definition, "additionalProperties": False}
    reference = generated.get("$ref")
    top: dict[str, Any]
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        top = dict(definitions[reference.removeprefix("#/$defs/")])
    else:
        top = {k: v for k, v in generated.items() if k != "$defs"}
    document = {"$schema": DRAFT_2020_12, **top}
    if _references_any(top, definitions):
        document["$defs"] = definitions
    return document


def _references_any(top: Mapping[str, Any], definitions: Mapping[str, Any]) -> bool:
    """Whether the lifted schema still needs `$defs` (it refers to a nested or its own class)."""
    return bool(definitions) and '"$ref"' in json.dumps(top)
