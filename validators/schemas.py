"""Kubernetes OpenAPI schemas (from kubernetes-validate), each loaded once per process.

`kubernetes_validate.validate()` reads and parses the object's schema JSON and the shared
`_definitions.json` (several MB) on every call: ~14 ms per object, 90 % of a large submission's
time. Here each (version, apiVersion, kind) is loaded once per process, and checked in two
tiers:

1. a verdict: the schema compiled into plain Python predicates (`validators.schema_check`),
   for the few keywords Kubernetes' schemas use; ~20x faster than jsonschema;
2. only when that says "invalid", jsonschema itself (as kubernetes-validate runs it) decides
   and explains. So the fast tier can never pass what jsonschema fails, and the messages are
   jsonschema's own. A schema with a keyword the compiler does not know skips tier 1.

The check is linear in the number of objects (`python -m benchmarks.validators`).

Which schema applies follows kubernetes-validate's own rules (its `validate()`, 1.37.0): the
newest schema set not newer than the requested minor, `group.domain/vN` -> `group-vN`, the
`-strict` set (no unknown fields) when asked.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils
from referencing import Registry, Resource

from validators import schema_check

ValidationError = kubernetes_validate.ValidationError
SchemaNotFoundError = kubernetes_validate.SchemaNotFoundError


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"v?(\d+)\.(\d+)", version).groups()
    return int(major), int(minor)


@functools.cache
def _schema_dir(version: str, strict: bool) -> str:
    """The schema set kubernetes-validate uses for `version` (e.g. v1.36 -> v1.36.0-local)."""
    wanted = _minor(version)
    known = [v for v in utils.all_versions() if _minor(v) <= wanted]
    if not known:
        raise kubernetes_validate.VersionNotSupportedError(version=version)
    return f"v{known[-1]}-local" + ("-strict" if strict else "")


@functools.cache
def _definitions_json(schema_dir: str) -> dict[str, Any]:
    return utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", "")


@functools.cache
def _definitions(schema_dir: str) -> Resource:
    return Resource.from_contents(_definitions_json(schema_dir))


@functools.cache
def _schema(version: str, api_version: str, kind: str, strict: bool) -> tuple[str, dict]:
    schema_dir = _schema_dir(version, strict)
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    name = f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group}.json"
    try:
        return schema_dir, utils.schema_contents(name, version)
    except FileNotFoundError:
        raise SchemaNotFoundError(version=version, kind=kind, api_version=api_version) from None


@functools.cache
def validator(version: str, api_version: str, kind: str, strict: bool = True) -> Any:
    """jsonschema's validator for one kind; SchemaNotFoundError when the version has none."""
    schema_dir, schema = _schema(version, api_version, kind, strict)
    registry = Resource.from_contents(schema) @ Registry()
    registry = _definitions(schema_dir) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def verdict(version: str, api_version: str, kind: str, strict: bool = True) -> Any:
    """The compiled predicate for one kind, or None when the schema uses a keyword it lacks."""
    schema_dir, schema = _schema(version, api_version, kind, strict)
    try:
        return schema_check.compile_schema(schema, _definitions_json(schema_dir))
    except schema_check.Unsupported:
        return None


def validate(obj: dict[str, Any], version: str, strict: bool = True) -> None:
    """Like kubernetes_validate.validate(obj, version, strict), raising the same errors."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise SchemaNotFoundError(version=version, kind=str(kind), api_version=str(api_version))
    fast = verdict(version, api_version, kind, strict)
    if fast is not None and fast(obj):
        return
    try:
        validator(version, api_version, kind, strict).validate(obj)
    except jsonschema.ValidationError as e:
        raise ValidationError(e, version=version) from None
