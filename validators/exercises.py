"""Offline judge of a learner's lab-2 exercises folder: the Alloy values and the LogQL queries.

`python -m validators.exercises [FOLDER] [--json]` (default `exercises/lab2`) reads

- `alloy-values.yaml`: the learner's completed Alloy pipeline, judged by
  `validators.alloy_lint.lint_values` against the lab's Loki values (the same findings the lint
  gives the reference values), plus "a TODO is left";
- `queries.yaml`: the named LogQL queries `errors`, `one_request` (with `$TRACE_ID`) and
  `deleted_pod_lines` (with `$POD`), judged by their shape: a stream selector on the bookstore
  namespace, no pod name where a request is meant, the placeholder where the value goes, a
  log query (not a metric) and the range endpoint.

The live checker `lab2.learner-queries` (checks/test_lab2_learner_queries.py) runs
`judge_queries` first, so a query with a wrong shape gets the same diagnosis offline and live;
it then runs the query against Loki to judge its answer. Exit 1 on findings, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labconfig.versions import REPO_ROOT, load_versions
from validators import alloy_lint
from validators.alloy_lint import Finding

DEFAULT_FOLDER = "exercises/lab2"
ALLOY_FILE = "alloy-values.yaml"
QUERIES_FILE = "queries.yaml"
APP_NAMESPACE = "bookstore"
TRACE_ID = "$TRACE_ID"
POD = "$POD"
# Each query the lab asks for, and the placeholder it must carry.
QUERIES: dict[str, str | None] = {"errors": None, "one_request": TRACE_ID, "deleted_pod_lines": POD}
RANGE, INSTANT = "query_range", "query"
TODO = re.compile(r"\bTODO\b")
SELECTOR = re.compile(r"^\s*\{(?P<inner>[^{}]*)\}")
MATCHER = re.compile(r'\s*(?P<name>\w+)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*,?')
# A metric query starts with a function or an aggregation around the log query.
METRIC = re.compile(r"^\s*[a-z_]+\s*(\(|by\b|without\b)", re.IGNORECASE)


class InputError(Exception):
    """The folder or a file cannot be read as an exercise submission."""


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    endpoint: str = RANGE  # the Loki endpoint the learner chose: query_range or query

    def substituted(self, **values: str) -> str:
        text = self.text
        for key, value in values.items():
            text = text.replace(f"${key.upper()}", value)
        return text


def _finding(name: str, found: str, expected: str, fix: str, where: str = "") -> Finding:
    return Finding("exercise.queries", where or f"{QUERIES_FILE}: {name}", found, expected, fix)


# -- queries ----------------------------------------------------------------------------------
def read_queries(data: Any) -> tuple[dict[str, Query], list[Finding]]:
    """The queries of a parsed queries.yaml; a missing or malformed entry is a finding."""
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        return {}, [
            _finding(
                "(file)",
                found,
                "a mapping of query names to LogQL: " + ", ".join(QUERIES),
                "write `errors: '{namespace=\"bookstore\"} ...'` and the other two, one per line",
                where=QUERIES_FILE,
            )
        ]
    queries, findings = {}, []
    for name in QUERIES:
        entry = data.get(name)
        endpoint = RANGE
        if isinstance(entry, dict):
            endpoint = str(entry.get("endpoint", RANGE))
            entry = entry.get("query")
        if not isinstance(entry, str) or not entry.strip() or TODO.search(entry):
            findings.append(
                _finding(
                    name,
                    "no query yet" if not entry or TODO.search(str(entry)) else repr(entry),
                    f"a LogQL query named `{name}`",
                    f"replace the TODO of `{name}` in {QUERIES_FILE} with your query",
                )
            )
            continue
        queries[name] = Query(name, entry.strip(), endpoint)
    return queries, findings


def matchers(query: str) -> list[tuple[str, str, str]] | None:
    """(label, operator, value) of the query's stream selector; None when it has none."""
    m = SELECTOR.match(query)
    if not m:
        return None
    inner, out, pos = m.group("inner"), [], 0
    while pos < len(inner.rstrip()):
        mm = MATCHER.match(inner, pos)
        if not mm:
            return None
        out.append((mm.group("name"), mm.group("op"), mm.group("value")))
        pos = mm.end()
    return out


def judge_query(q: Query) -> list[Finding]:
    """The shape rules every query of the exercise follows; empty when the shape is right."""
    if q.endpoint == INSTANT:
        return [
            _finding(
                q.name,
                "an instant query (endpoint: query)",
                "a range query: Loki 3.2 and later refuse log queries on /loki/api/v1/query",
                f"remove `endpoint: query` (or write `endpoint: {RANGE}`)",
            )
        ]
    if q.endpoint != RANGE:
        return [_finding(q.name, f"endpoint {q.endpoint!r}", f"{RANGE!r}", "remove `endpoint`")]
    if METRIC.match(q.text):
        return [
            _finding(
                q.name,
                f"a metric query ({q.text.split('(')[0].strip()}(...)): it returns numbers",
                "a log query that returns the lines themselves",
                'start the query with the stream selector `{namespace="bookstore"}`',
            )
        ]
    selector = matchers(q.text)
    if selector is None:
        return [
            _finding(
                q.name,
                f"{q.text!r} does not start with a stream selector",
                'a selector such as {namespace="bookstore"} first',
                "put the labels in braces first, then the pipeline (`| json | ...`)",
            )
        ]
    findings = []
    if not any(n == "namespace" and op in ("=", "=~") and APP_NAMESPACE in v
               for n, op, v in selector):  # fmt: skip
        findings.append(
            _finding(
                q.name,
                "a selector without the bookstore namespace",
                'namespace="bookstore" in the selector (the index finds the streams by it)',
                'add namespace="bookstore" inside the braces',
            )
        )
    placeholder = QUERIES[q.name]
    if placeholder and placeholder not in q.text:
        findings.append(
            _finding(
                q.name,
                f"no {placeholder} in the query",
                f"{placeholder} where the value goes (the checker substitutes a fresh one)",
                f"write {placeholder} where you would paste the value",
            )
        )
    findings += _judge_by_name(q, selector)
    return findings


def _judge_by_name(q: Query, selector: list[tuple[str, str, str]]) -> list[Finding]:
    pod_in_selector = any(n == "pod" for n, _, _ in selector)
    if q.name == "one_request":
        out = []
        if pod_in_selector:
            out.append(
                _finding(
                    q.name,
                    "a selector on `pod`: one pod is one replica of one service",
                    "a request followed by its trace id across every pod of both services",
                    "remove the pod matcher; filter on the trace id instead",
                )
            )
        if TRACE_ID in q.text and TRACE_ID not in _after_selector(q.text):
            out.append(
                _finding(
                    q.name,
                    f"{TRACE_ID} inside the stream selector: a trace id as a label",
                    "the trace id in the pipeline, after the selector (ids are not labels)",
                    f'`| json | trace_id="{TRACE_ID}"` after the braces',
                )
            )
        return out
    if q.name == "deleted_pod_lines" and not pod_in_selector:
        return [
            _finding(
                q.name,
                "no `pod` matcher in the selector",
                f'pod="{POD}" in the selector: a deleted pod\'s name is still a label in Loki',
                f'add pod="{POD}" inside the braces',
            )
        ]
    if q.name == "errors" and "ERROR" not in _after_selector(q.text):
        return [
            _finding(
                q.name,
                "no filter on the ERROR level",
                'only ERROR lines, e.g. `| json | level="ERROR"`',
                'parse the line with `| json` and keep level="ERROR"',
            )
        ]
    return []


def _after_selector(text: str) -> str:
    m = SELECTOR.match(text)
    return text[m.end() :] if m else text


def judge_queries(data: Any) -> tuple[dict[str, Query], list[Finding]]:
    """Read and judge every query; the queries are returned even when some have findings."""
    queries, findings = read_queries(data)
    for q in queries.values():
        findings += judge_query(q)
    return queries, findings


# -- the Alloy values -------------------------------------------------------------------------
def judge_alloy(text: str, loki_values: dict | None) -> list[Finding]:
    """The learner's values: TODOs left, then every finding of the Alloy lint."""
    todos = [n for n, line in enumerate(text.splitlines(), 1) if TODO.search(line)]
    findings = []
    if todos:
        findings.append(
            Finding(
                "exercise.alloy-todo",
                f"{ALLOY_FILE}: line{'s' if len(todos) > 1 else ''} " + ", ".join(map(str, todos)),
                f"{len(todos)} TODO{'s' if len(todos) > 1 else ''} left",
                "every TODO of the starter replaced by your pipeline",
                "complete each TODO (the lab page's step 2 explains each piece)",
            )
        )
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return [*findings, Finding("exercise.yaml", ALLOY_FILE, str(e), "valid YAML", "fix it")]
    if not isinstance(values, dict):
        return [*findings, Finding("exercise.yaml", ALLOY_FILE, "not a mapping", "values", "")]
    return findings + alloy_lint.lint_values(values, loki_values)


def _loki_values() -> dict | None:
    rel = load_versions()["charts"]["loki"]["values"]
    try:
        return yaml.safe_load((REPO_ROOT / rel).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def judge_folder(folder: Path) -> list[Finding]:
    """Every finding of an exercises folder (lab 2)."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder (expected e.g. {DEFAULT_FOLDER})")
    findings: list[Finding] = []
    for name in (ALLOY_FILE, QUERIES_FILE):
        if not (folder / name).is_file():
            findings.append(
                Finding("exercise.missing", name, "no such file", f"{folder}/{name}", "restore it")
            )
    if (folder / ALLOY_FILE).is_file():
        findings += judge_alloy((folder / ALLOY_FILE).read_text(encoding="utf-8"), _loki_values())
    if (folder / QUERIES_FILE).is_file():
        try:
            data = yaml.safe_load((folder / QUERIES_FILE).read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            return [*findings, Finding("exercise.yaml", QUERIES_FILE, str(e), "valid YAML", "")]
        findings += judge_queries(data)[1]
    return findings


def exercises_in(submission: Path) -> Path | None:
    """Where a learner's lab-2 exercises are in a submission: its `exercises/lab2`, a `lab2`
    folder, or the submission itself when it holds the two files; None when it has none."""
    for folder in (submission / DEFAULT_FOLDER, submission / "lab2", submission):
        if (folder / ALLOY_FILE).is_file() or (folder / QUERIES_FILE).is_file():
            return folder
    return None


def grade(submission: Path) -> tuple[bool, str]:
    """The offline grade of a submission's exercises: passed, and the diagnosis (one finding a
    line) or what was judged. Used by `python -m checks.grading --offline`."""
    folder = exercises_in(submission)
    if folder is None:
        return False, f"no exercises handed in ({DEFAULT_FOLDER}/{ALLOY_FILE}, {QUERIES_FILE})"
    findings = judge_folder(folder)
    if findings:
        return False, "\n".join(str(f) for f in findings)
    return True, f"{folder}: the Alloy pipeline and the three queries are complete"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validators.exercises", description=__doc__)
    parser.add_argument("folder", nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        findings = judge_folder(Path(args.folder))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        for f in findings:
            print(f)
        print(f"{len(findings)} finding(s) in {args.folder}" if findings else "no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
