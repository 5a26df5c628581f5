"""The schema check: loaded once per kind, and the compiled fast verdict never kinder than
jsonschema's (the verdict a wrong pass would come from)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from labconfig.versions import REPO_ROOT, load_versions
from validators import schema_check, schemas
from validators.manifests import is_kubernetes_object, kube_minor

VERSION = kube_minor(load_versions()["kubernetes"]["version"])


def repo_objects() -> list[dict]:
    objs = []
    for path in sorted((REPO_ROOT / "manifests").rglob("*.yaml")):
        objs += [d for d in yaml.safe_load_all(path.read_text()) if is_kubernetes_object(d)]
    return objs


WRONG_VALUES: list[Any] = [None, True, 1, 1.0, 1.5, "x", "", [], ["x"], {}, {"x": 1}]


def mutations(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) edits a learner might make: every field to every wrong type, an unknown
    key in every mapping, each field removed, each list emptied or given a stray item."""
    if isinstance(obj, dict):
        yield (*path, "unknownField"), 1
        for key, value in obj.items():
            yield (*path, key), _DELETE
            for wrong in WRONG_VALUES:
                if type(wrong) is not type(value) or wrong != value:
                    yield (*path, key), wrong
            yield from mutations(value, (*path, key))
    elif isinstance(obj, list):
        yield (*path, len(obj)), "stray"
        yield (*path, len(obj)), {"unknownField": 1}
        for i, value in enumerate(obj):
            yield from mutations(value, (*path, i))


_DELETE = object()


def apply(obj: dict, path: tuple, value: Any) -> dict:
    edited = copy.deepcopy(obj)
    holder = edited
    for key in path[:-1]:
        holder = holder[key]
    last = path[-1]
    if value is _DELETE:
        del holder[last]
    elif isinstance(holder, list) and last == len(holder):
        holder.append(value)
    else:
        holder[last] = value
    return edited


def test_the_fast_verdict_equals_jsonschema_on_thousands_of_broken_objects():
    compared = disagreements = 0
    examples = []
    for obj in repo_objects():
        fast = schemas.verdict(VERSION, obj["apiVersion"], obj["kind"])
        slow = schemas.validator(VERSION, obj["apiVersion"], obj["kind"])
        assert fast is not None, f"{obj['kind']}: the compiler refused its schema"
        assert fast(obj) and slow.is_valid(obj)
        for path, value in mutations(obj):
            if path[:1] in (("apiVersion",), ("kind",)):
                continue  # those pick the schema itself
            edited = apply(obj, path, value)
            compared += 1
            if fast(edited) != slow.is_valid(edited):
                disagreements += 1
                examples.append((obj["kind"], path, value, fast(edited)))
    assert compared > 2000
    assert not disagreements, examples[:10]


def test_the_fast_verdict_follows_jsonschema_on_type_corner_cases():
    schema = {
        "properties": {
            "n": {"type": "integer"},
            "f": {"type": "number"},
            "s": {"type": ["string", "null"], "enum": ["a", None]},
            "io": {"$ref": "/api/_definitions.json#/$defs/IntOrString"},
        },
        "required": ["n"],
        "additionalProperties": False,
        "type": "object",
    }
    defs = {"$defs": {"IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}
    check = schema_check.compile_schema(schema, defs)
    assert check({"n": 3}) and check({"n": 3.0})  # jsonschema: 3.0 is an integer
    assert not check({"n": True}) and not check({"n": 3.5}) and not check({})
    assert check({"n": 1, "f": 2.5}) and not check({"n": 1, "f": False})
    assert check({"n": 1, "s": None}) and not check({"n": 1, "s": "b"})
    assert check({"n": 1, "io": "50%"}) and check({"n": 1, "io": 8})
    assert not check({"n": 1, "io": None}) and not check({"n": 1, "extra": 1})
    assert not check([])


@pytest.mark.parametrize(
    "schema",
    [{"pattern": "^a"}, {"anyOf": [{}]}, {"$ref": "other.json#/x"}, {"enum": [1, True]}],
)
def test_a_keyword_it_does_not_implement_leaves_the_verdict_to_jsonschema(schema):
    with pytest.raises(schema_check.Unsupported):
        schema_check.compile_schema(schema, {})


def test_an_invalid_object_gets_jsonschemas_own_error():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": 1}}
    with pytest.raises(schemas.ValidationError) as caught:
        schemas.validate(obj, VERSION)
    assert list(caught.value.path) == ["data", "k"]


def test_each_schema_is_read_once_however_many_objects(monkeypatch):
    for cached in (schemas._schema, schemas.validator, schemas.verdict, schemas._definitions_json):
        cached.cache_clear()
    reads: list[str] = []
    real = schemas.utils.schema_contents
    monkeypatch.setattr(
        schemas.utils, "schema_contents", lambda name, v: reads.append(name) or real(name, v)
    )
    objs = [o for o in repo_objects() if o["kind"] in ("Deployment", "Service")]
    for _ in range(50):
        for obj in objs:
            schemas.validate(obj, VERSION)
    # one per kind, plus the shared definitions
    assert len(reads) == 3, reads
