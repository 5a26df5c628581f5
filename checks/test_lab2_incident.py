"""The incident challenge: intermittent 503s, and the learner names the failing dependency.

The lab injects a database fault into one service (an explicit `FAULT_RATE` on its Deployment);
the learner finds it from logs alone and writes the dependency's name and the LogQL query that
showed it into exercises/lab2/incident.yaml. The checker derives the right answer from the
cluster (which Deployment carries the fault; each service's simulated database is
`<service>-db`, bookstore/catalog.py and bookstore/orders.py), compares, then runs the learner's
query against Loki: it must return evidence that names the dependency.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from checks.evidence import CheckFailed, Passed
from checks.lab import APP_NAMESPACE, APP_SERVICES, Lab
from checks.loki import LokiError

ANSWERS = "incident.yaml"
FAULT_ENV = "FAULT_RATE"
LOOKBACK_S = 3600


def start_command(namespace: str) -> str:
    return f"kubectl -n {namespace} set env deployment/<service> {FAULT_ENV}=0.3"


def injected_faults(lab: Lab) -> dict[str, float]:
    """Service -> FAULT_RATE set explicitly (above 0) on its Deployment's container."""
    out = {}
    for dep in lab.kube.list_deployments(lab.app_ns):
        name = dep.get("metadata", {}).get("name")
        if name not in APP_SERVICES:
            continue
        containers = dep.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for c in containers:
            for env in c.get("env") or []:
                if env.get("name") != FAULT_ENV:
                    continue
                try:
                    rate = float(env.get("value", "0"))
                except ValueError:
                    continue
                if rate > 0:
                    out[name] = rate
    return out


def dependency_of(service: str) -> str:
    return f"{service}-db"


def normalise(answer: object) -> str:
    return re.sub(r"[\s_]+", "-", str(answer or "").strip().lower())


def read_answers(path: Path) -> dict[str, str]:
    """The learner's answers; a failure that says what is wrong with the file otherwise."""
    if not path.is_file():
        raise CheckFailed(
            f"{path} does not exist",
            "the answers file with failing_dependency and query filled in",
            f"git checkout -- exercises/lab2/{ANSWERS}, then fill in its two TODOs",
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise CheckFailed(
            f"{path} is not valid YAML: {e}",
            "two keys, failing_dependency and query, each a string",
            "quote the query with single quotes ('...'): LogQL has double quotes and braces",
        ) from None
    if not isinstance(data, dict):
        raise CheckFailed(
            f"{path} holds a {type(data).__name__}, not a mapping",
            "two keys, failing_dependency and query",
            f"start again from the template: git checkout -- exercises/lab2/{ANSWERS}",
        )
    answers = {}
    for key in ("failing_dependency", "query"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip() or "TODO" in value:
            raise CheckFailed(
                f"{path}: {key} is {value!r}",
                f"{key} filled in (a non-empty string, the TODO replaced)",
                f"fill in {key} in exercises/lab2/{ANSWERS}",
            )
        answers[key] = value.strip()
    return answers


def _judge_answer(answer: str, faults: dict[str, float], namespace: str = APP_NAMESPACE) -> str:
    """The injected dependency the answer names; a failure that does not give it away else."""
    expected = {dependency_of(svc): svc for svc in faults}
    given = normalise(answer)
    if given in expected:
        return given
    if given in APP_SERVICES:
        raise CheckFailed(
            f"failing_dependency is {answer!r}, a bookstore service",
            "the dependency that fails behind the 503s, named as the logs name it",
            "the failing requests' WARN lines retry something before giving up: read their "
            "fields (`| json`) and follow the trace_id into the other service",
        )
    raise CheckFailed(
        f"failing_dependency is {answer!r}, which is not what fails",
        "the dependency that fails behind the 503s, named as the logs name it",
        f'start from {{namespace="{namespace}"}} | json | level="ERROR", take a trace_id, '
        "and read"
        " every line of that request, WARN lines included",
    )


def _run_query(lab: Lab, query: str, dependency: str) -> str:
    """Run the learner's query over the last hour; a summary of the evidence it returned."""
    now = lab.clock.time_ns()
    try:
        # Lines carry the node's clock, which may run ahead of this machine's: end a little
        # after now, as every query for fresh evidence does.
        data = lab.loki.query_range(
            query, start_ns=now - LOOKBACK_S * 10**9, end_ns=lab.evidence_end_ns(), limit=500,
            step="60",
        )  # fmt: skip
    except LokiError as e:
        raise CheckFailed(
            f"your query fails in Loki: {e}",
            "a LogQL query Loki runs (paste it into Grafana Explore first)",
            f"fix the query in exercises/lab2/{ANSWERS}",
        ) from None
    result = data.get("result") or []
    if data.get("resultType") == "streams":
        lines = [v[1] for s in result for v in s.get("values", [])]
        naming = [line for line in lines if dependency in line]
        # Two lines in three: the query has to single the evidence out, not list the namespace.
        if not naming or len(naming) * 3 < len(lines) * 2:
            raise CheckFailed(
                f"your query returns {len(lines)} line(s) from the last hour, "
                f"{len(naming)} of which name the failing dependency",
                "a query whose lines are mostly the evidence (two in three name the dependency)",
                'narrow it with the field that names the dependency (`| json | <field>="..."`); '
                "if it returns nothing, send traffic first (the loadgen Job)",
            )
        return f"{len(naming)} of {len(lines)} lines name {dependency}"
    labelled = [s for s in result if dependency in (s.get("metric") or {}).values()]
    if not labelled:
        raise CheckFailed(
            f"your metric query returns {len(result)} series, none labelled with the failing "
            "dependency",
            "a metric grouped by the field that names the dependency, e.g. "
            "sum by (<field>) (count_over_time({...} | json [5m]))",
            f"group by that field, or answer with a log query, in exercises/lab2/{ANSWERS}",
        )
    return f"{len(labelled)} series labelled {dependency}"


def check_incident(lab: Lab, answers_path: Path | None = None) -> Passed:
    faults = injected_faults(lab)
    if not faults:
        raise CheckFailed(
            f"no bookstore Deployment sets {FAULT_ENV} above 0: the incident is not running",
            "the incident step's fault injected into one service",
            f"run the incident step of the lab ({start_command(lab.app_ns)}), send traffic, "
            "then investigate",
        )
    answers = read_answers(answers_path or lab.exercises_dir / ANSWERS)
    dependency = _judge_answer(answers["failing_dependency"], faults, lab.app_ns)
    evidence = _run_query(lab, answers["query"], dependency)
    service = next(svc for svc in faults if dependency_of(svc) == dependency)
    return Passed(
        f"{dependency} is the injected fault ({FAULT_ENV}={faults[service]} on {service}); "
        f"your query returns {evidence}"
    )


@pytest.mark.checker("lab2.incident")
def test_incident(lab, record_outcome):
    record_outcome(check_incident(lab))
