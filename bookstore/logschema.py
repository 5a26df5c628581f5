"""The log contract as code: load `log-schema.json` and say, in words, what is wrong with a line.

The services never import this (jsonschema is not in the images); the project's tests, the
container tests and the lab's checkers do, which is why jsonschema is imported only when a
line is actually validated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("log-schema.json")


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every bookstore log line satisfies."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate_line(line: str | bytes | dict[str, Any]) -> list[str]:
    """Every way `line` breaks the contract, as readable sentences; [] when it is valid.

    `line` is one raw stdout line (str/bytes) or an already-parsed object.
    """
    if isinstance(line, dict):
        obj: Any = line
    else:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.rstrip("\r\n")
        if "\n" in text:
            return ["one log line must not contain a newline (a stack trace belongs in one field)"]
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return [f"not JSON ({exc.msg} at column {exc.colno}): {text[:120]!r}"]
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    errors = sorted(_validator().iter_errors(obj), key=lambda e: (list(e.absolute_path), e.message))
    return [_describe(error, obj) for error in errors]


def _describe(error: Any, obj: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "line"
    # A failed if/then names only the missing key; add the rule's own description.
    rule = ""
    schema_path = list(error.absolute_schema_path)
    if schema_path[:1] == ["allOf"] and "then" in schema_path:
        rule = " (" + load_schema()["allOf"][schema_path[1]]["description"].rstrip(".") + ")"
    service = obj.get("service", "?")
    msg = obj.get("msg", "?")
    return f"{where}: {error.message}{rule} [service={service} msg={str(msg)[:60]!r}]"


def invalid_lines(lines: Iterable[str | bytes]) -> list[str]:
    """`line N: problem` for every line of a stream that breaks the contract (blank lines too)."""
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        problems.extend(f"line {number}: {problem}" for problem in validate_line(line))
    return problems
