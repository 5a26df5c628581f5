"""A JSON Schema compiled into plain Python predicates, for the keywords Kubernetes uses.

jsonschema interprets a schema afresh for every value (a new validator object per nested
field): ~1 ms per Deployment. The OpenAPI-derived schemas of kubernetes-validate use only
`type`, `enum`, `properties`, `required`, `additionalProperties`, `items`, `oneOf`, `$ref`,
and annotations (`description`, `format`, `x-kubernetes-*`). `compile_schema` turns such a
schema into one closure per schema node, built once, that answers "valid or not" and nothing
more. Meanings follow JSON Schema 2020-12 as jsonschema implements it (jsonschema 4.x,
`_keywords.py` and `_types.py`): `integer` also accepts a float with no fraction, booleans are
neither integers nor numbers, `format` is an annotation (jsonschema asserts it only when given
a format checker; kubernetes-validate gives none), keywords apply only to their instance type.

Any other keyword raises `Unsupported`: the caller then uses jsonschema alone. The caller
(`validators.schemas`) also asks jsonschema whenever this says "invalid", so a difference
between the two can cost time, never a wrong pass (tests/test_validators_schemas.py compares
the two verdicts on many broken objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

ANNOTATIONS = {"description", "format", "$schema", "$id", "$defs", "default", "title"}
DEFINITIONS_URI = "/api/_definitions.json"


class Unsupported(Exception):
    """The schema uses something this compiler does not implement."""


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def _always(_: Any) -> bool:
    return True


def _pointer(doc: dict, fragment: str) -> Any:
    node: Any = doc
    for part in fragment.lstrip("/").split("/") if fragment.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise Unsupported(f"unresolvable pointer #{fragment}")
        node = node[part]
    return node


class _Compiler:
    def __init__(self, root: dict, definitions: dict) -> None:
        self.docs = {"root": root, "defs": definitions}
        self.refs: dict[tuple[str, str], Check] = {}

    def ref(self, ref: str, doc: str) -> Check:
        uri, _, fragment = ref.partition("#")
        if uri == DEFINITIONS_URI:
            doc = "defs"
        elif uri:
            raise Unsupported(f"$ref to another document: {ref}")
        key = (doc, fragment)
        if key not in self.refs:
            slot: list[Check] = []
            # Registered before compiling, so a recursive definition refers to itself.
            self.refs[key] = lambda v: slot[0](v)
            slot.append(self.compile(_pointer(self.docs[doc], fragment), doc))
        return self.refs[key]

    def compile(self, schema: Any, doc: str) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return lambda _: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        known = ANNOTATIONS | KEYWORDS.keys() | OBJECT_KEYWORDS
        unknown = [k for k in schema if k not in known and not k.startswith("x-")]
        if unknown:
            raise Unsupported(f"keywords {unknown}")
        checks = [
            compile_keyword(self, schema, doc)
            for k, compile_keyword in KEYWORDS.items()
            if k in schema
        ]
        if OBJECT_KEYWORDS & schema.keys():
            checks.append(_object(self, schema, doc))
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)


def _ref(c: _Compiler, schema: dict, doc: str) -> Check:
    return c.ref(schema["$ref"], doc)


def _type(c: _Compiler, schema: dict, doc: str) -> Check:
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if any(n not in TYPES for n in names):
        raise Unsupported(f"type {names}")
    tests = [TYPES[n] for n in names]
    return lambda v: any(t(v) for t in tests)


def _enum(c: _Compiler, schema: dict, doc: str) -> Check:
    values = schema["enum"]
    # Only strings and null: JSON Schema's equality then is Python's (no 1 == True pitfalls).
    if not all(v is None or isinstance(v, str) for v in values):
        raise Unsupported("enum with non-string members")
    allowed = set(values)
    return lambda v: (v is None or isinstance(v, str)) and v in allowed


def _object(c: _Compiler, schema: dict, doc: str) -> Check:
    props = {k: c.compile(s, doc) for k, s in (schema.get("properties") or {}).items()}
    required = list(schema.get("required") or [])
    extra = schema.get("additionalProperties", True)
    other = None if extra is True else c.compile(extra, doc)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        if any(k not in v for k in required):
            return False
        for key, value in v.items():
            test = props.get(key, other)
            if test is not None and not test(value):
                return False
        return True

    return check


def _items(c: _Compiler, schema: dict, doc: str) -> Check:
    item = c.compile(schema["items"], doc)
    return lambda v: not isinstance(v, list) or all(item(x) for x in v)


def _one_of(c: _Compiler, schema: dict, doc: str) -> Check:
    subs = [c.compile(s, doc) for s in schema["oneOf"]]
    return lambda v: sum(1 for s in subs if s(v)) == 1


KEYWORDS: dict[str, Callable[[_Compiler, dict, str], Check]] = {
    "$ref": _ref,
    "type": _type,
    "enum": _enum,
    "items": _items,
    "oneOf": _one_of,
}
# Judged together, by one check per object schema.
OBJECT_KEYWORDS = {"properties", "required", "additionalProperties"}


def compile_schema(schema: dict, definitions: dict) -> Check:
    """A predicate equal to jsonschema's verdict for this schema; Unsupported if it cannot be."""
    return _Compiler(schema, definitions).compile(schema, "root")
