"""Learner mode, steps 3 and 4: the LEARNER's own LogQL queries, run against Loki and judged.

The queries come from `exercises/lab2/queries.yaml` (or the file named by `LAB_QUERIES`).
Their shape is judged first by `validators.exercises` (the same diagnoses as offline grading);
then each query runs on Loki's range endpoint with a fresh value in its placeholder, and what it
returns is compared with the ground truth the checker fetched with its own query:

- `lab2.learner-queries`: a fresh trace (a catalog read, then an order with an injected
  database failure) and an unrelated 404 (a WARN line); `one_request` with the trace id must
  return lines from both services, only that trace, the ERROR among them, and every line of it
  (the INFO one too); `errors` must return only ERROR lines, the fresh one included.
- `lab2.learner-deleted-pod-lines`: the pods marked when step 4 began must be gone; for a
  deleted catalog pod and a deleted orders pod, `deleted_pod_lines` with `$POD` = its name must
  return its lines up to the last one it wrote (`shutdown complete`, bookstore/server.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from checks.evidence import (
    CheckFailed,
    Passed,
    json_field,
    new_marker,
    new_trace,
    services_of,
    shorten,
)
from checks.lab import APP_SERVICES, Lab
from checks.loki import Entry, LokiError
from labconfig.versions import REPO_ROOT
from validators import exercises
from validators.exercises import INSTANT, Query

QUERIES_ENV = "LAB_QUERIES"
DEFAULT_QUERIES = REPO_ROOT / exercises.DEFAULT_FOLDER / exercises.QUERIES_FILE
# The engine labels the bookstore's pods with this when step 4's task is handed out; the
# checker then knows which pods the learner had to delete.
EXERCISE_LABEL = "lab2-exercise"
EXERCISE_SELECTOR = f"{EXERCISE_LABEL}=delete-me"
LAST_LINE = "shutdown complete"  # what a bookstore process writes last after SIGTERM
LOOKBACK_S = 6 * 3600  # how far back deleted pods' lines are looked for


def queries_path() -> Path:
    given = os.environ.get(QUERIES_ENV)
    return Path(given) if given else DEFAULT_QUERIES


def load_learner_queries(path: Path, names: tuple[str, ...]) -> dict[str, Query]:
    """The learner's queries `names`, judged by shape; the first problem fails the checker."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CheckFailed(
            f"cannot read {path}: {e.strerror or e}",
            f"your queries in {path}",
            f"restore the starter with `git checkout -- {exercises.DEFAULT_FOLDER}`, or set "
            f"{QUERIES_ENV} to your file",
        ) from None
    except yaml.YAMLError as e:
        raise CheckFailed(
            f"{path} is not valid YAML: {e}",
            "one `name: 'query'` per line",
            "put each query in single quotes",
        ) from None
    queries, findings = exercises.judge_queries(data)
    mine = [f for f in findings if any(f.where.endswith(f": {n}") for n in names)]
    mine += [f for f in findings if f.where == exercises.QUERIES_FILE]
    if mine:
        first = mine[0]
        more = f" (and {len(mine) - 1} more: `python -m validators.exercises`)" if mine[1:] else ""
        raise CheckFailed(f"{first.where}: {first.found}{more}", first.expected, first.fix)
    return {n: queries[n] for n in names}


def run_learner_query(lab: Lab, q: Query, *, start_ns: int, **values: str) -> list[Entry]:
    """The learner's query with its placeholders filled, on the range endpoint Loki requires."""
    text = q.substituted(**values)
    if q.endpoint == INSTANT:  # only reached when a caller skips the shape judge
        try:
            lab.loki.query(text)
        except LokiError as e:
            raise CheckFailed(
                f"`{q.name}` as an instant query: {e}",
                "a range query",
                "remove `endpoint: query`",
            ) from None
    try:
        return lab.loki.entries(text, start_ns=start_ns, end_ns=lab.clock.time_ns() + 1)
    except LokiError as e:
        raise CheckFailed(
            f"Loki refused your `{q.name}` query {text}: {e}",
            "a LogQL log query Loki accepts",
            "paste it into Grafana's Explore (Loki, a time range) and read the error",
        ) from None


# -- verdicts (pure: entries in, CheckFailed out) ------------------------------------------------
# A stream selector that narrows to one service (by its app, pod, container or service name):
# the cause when only one service's lines come back. Otherwise a filter after the selector is.
ONE_SERVICE_SELECTOR = re.compile(r"\b(app|pod|container|service_name)\s*(=|=~|!=|!~)")


def _is_error(entry: Entry) -> bool:
    return json_field(entry, "level") == "ERROR"


def verdict_one_request(got: list[Entry], truth: list[Entry], trace_id: str, text: str) -> None:
    """`one_request` answered `got`; `truth` holds the request's lines as Loki has them."""
    if not got:
        raise CheckFailed(
            f"your one_request query {text} returns no line, although Loki holds "
            f"{len(truth)} line(s) of that request",
            "every line of the request, from both services",
            "run it in Grafana's Explore with a time range of the last 5 minutes",
        )
    others = [e for e in got if trace_id not in e.line]
    if others:
        raise CheckFailed(
            f"your one_request query returns {len(got)} lines, {len(others)} of them from other "
            f"requests (e.g. {shorten(others[0].line, 120)})",
            f"only the lines of trace {trace_id}",
            'keep only that trace: `| json | trace_id="$TRACE_ID"` after the selector',
        )
    services = services_of(got)
    missing = set(APP_SERVICES) - services
    only_some = CheckFailed(
        f"your one_request query returns lines only from {', '.join(sorted(services))}",
        "lines from both orders and catalog: one request crosses both services",
        "select by namespace, not by app, pod or container; the trace id joins them",
    )
    if missing and ONE_SERVICE_SELECTOR.search(text.split("}", 1)[0]):
        raise only_some
    if not any(_is_error(e) for e in got):
        raise CheckFailed(
            "none of the lines your one_request query returns is the request's ERROR line",
            "the ERROR line (the injected database failure) among them",
            "do not filter the level out: every line of the trace belongs to the answer",
        )
    lost = {e.line for e in truth} - {e.line for e in got}
    if lost:
        raise CheckFailed(
            f"your one_request query returns {len(got)} of the request's {len(truth)} lines; "
            f"missing e.g. {shorten(sorted(lost)[0], 120)}",
            "every line of the request",
            "drop any extra filter after the trace id",
        )
    if missing:
        raise only_some


def verdict_errors(got: list[Entry], trace_id: str, text: str) -> None:
    """`errors` answered `got`; the fresh request with `trace_id` wrote an ERROR line."""
    not_errors = [e for e in got if not _is_error(e)]
    if not_errors:
        level = json_field(not_errors[0], "level")
        raise CheckFailed(
            f"your errors query {text} returns {len(not_errors)} line(s) that are not ERROR "
            f"(e.g. level {level!r}: {shorten(not_errors[0].line, 100)})",
            'only lines whose JSON level is "ERROR"',
            'parse with `| json` and keep `level="ERROR"` (a text match on ERROR also hits '
            "messages that merely mention it)",
        )
    if not any(trace_id in e.line for e in got):
        raise CheckFailed(
            f"your errors query returns {len(got)} line(s), none of them the ERROR the checker "
            "just caused",
            "every ERROR line of the bookstore, the fresh one included",
            "select the whole namespace: both services write ERROR lines",
        )


def verdict_deleted_pod(got: list[Entry], pod: str, last: Entry, text: str) -> None:
    """`deleted_pod_lines` for `pod` answered `got`; `last` is the pod's newest line in Loki."""
    if not got:
        raise CheckFailed(
            f"your deleted_pod_lines query {text} returns nothing, although Loki holds the "
            f"lines of deleted pod {pod}",
            "the deleted pod's lines",
            f'select it with pod="$POD" (the checker puts {pod} there)',
        )
    strangers = sorted({e.labels.get("pod", "?") for e in got} - {pod})
    if strangers:
        raise CheckFailed(
            "your deleted_pod_lines query returns lines of other pods too "
            f"({', '.join(strangers)})",
            f"only the lines of pod {pod}",
            'select by pod="$POD" inside the braces',
        )
    if last.line not in {e.line for e in got}:
        raise CheckFailed(
            f"your deleted_pod_lines query returns {len(got)} lines of {pod} but not its last "
            f"one ({shorten(last.line, 100)})",
            "the pod's lines up to the last one it wrote",
            "drop filters that keep only some of its lines",
        )


# -- the checkers ---------------------------------------------------------------------------------
def _fresh_evidence(lab: Lab, ingest_timeout: float):
    """A fresh trace with an INFO line (a catalog read) and the injected database failure (its
    ERROR lines in both services), plus an unrelated WARN line (a 404); returns the trace, where
    to start querying, and the trace's lines once Loki has all of them."""
    trace = new_trace()
    start_ns = lab.evidence_start_ns()
    lab.send("catalog", "GET", "/books", request_id=new_marker(), trace=trace)
    response, _ = lab.place_fresh_order(trace, headers={"X-Inject-Fault": "database"})
    if response.status_code < 500:
        raise CheckFailed(
            f"POST /orders with X-Inject-Fault: database answered {response.status_code}",
            "503: the injected database failure the queries must find",
            f"kubectl -n {lab.app_ns} logs deploy/orders --tail=20",
        )
    warn = new_marker()
    lab.send("catalog", "GET", f"/{warn}", request_id=warn)  # no such route: a 404, level WARN
    wanted = set(APP_SERVICES)
    own = f'{{namespace="{lab.app_ns}"}} |= "{trace.trace_id}"'
    truth = lab.wait_in_loki(
        own,
        lambda es: wanted <= services_of(es)
        and any(_is_error(e) for e in es)
        and any(not _is_error(e) for e in es),
        start_ns=start_ns, timeout=ingest_timeout,
        what="the checker's own query does not see the request in both services yet",
    )  # fmt: skip
    lab.wait_in_loki(
        f'{{namespace="{lab.app_ns}"}} |= "{warn}"', bool, start_ns=start_ns,
        timeout=ingest_timeout, what="the checker's 404 line is not in Loki yet",
    )  # fmt: skip
    return trace, start_ns, truth


def check_learner_queries(lab: Lab, path: Path | None = None, ingest_timeout: float = 90) -> Passed:
    queries = load_learner_queries(path or queries_path(), ("errors", "one_request"))
    lab.confirm_pipeline_ready()
    trace, start_ns, truth = _fresh_evidence(lab, ingest_timeout)
    one = queries["one_request"]
    got = run_learner_query(lab, one, start_ns=start_ns, trace_id=trace.trace_id)
    verdict_one_request(got, truth.entries, trace.trace_id, one.substituted(trace_id="…"))
    errors = queries["errors"]
    verdict_errors(run_learner_query(lab, errors, start_ns=start_ns), trace.trace_id, errors.text)
    return Passed(
        f"one_request returned the {len(got)} lines of a fresh failing request from "
        f"{', '.join(sorted(services_of(got)))}, ERROR included; errors found its ERROR line "
        "and no other level",
        {"request_to_queryable_seconds": round(truth.seconds, 2)},
    )


def _deleted_pods(lab: Lab, start_ns: int, end_ns: int) -> dict[str, list[str]]:
    """Per service, the pods Loki has lines from that no longer exist."""
    selector = f'{{namespace="{lab.app_ns}"}}'
    series = lab.loki.series([selector], start_ns=start_ns, end_ns=end_ns)
    running = {p["metadata"]["name"] for p in lab.kube.list_pods(lab.app_ns)}
    gone: dict[str, list[str]] = {app: [] for app in APP_SERVICES}
    for labels in series:
        pod, app = labels.get("pod"), labels.get("app") or labels.get("container")
        if pod and app in gone and pod not in running and pod not in gone[app]:
            gone[app].append(pod)
    return gone


def _last_line(lab: Lab, pod: str, start_ns: int, end_ns: int) -> Entry | None:
    own = f'{{namespace="{lab.app_ns}", pod="{pod}"}}'
    newest = lab.loki.entries(own, start_ns=start_ns, end_ns=end_ns, limit=1, direction="backward")
    return newest[-1] if newest else None


def check_learner_deleted_pod_lines(lab: Lab, path: Path | None = None) -> Passed:
    query = load_learner_queries(path or queries_path(), ("deleted_pod_lines",))
    query = query["deleted_pod_lines"]
    lab.confirm_pipeline_ready()
    left = [p["metadata"]["name"] for p in lab.kube.list_pods(lab.app_ns, EXERCISE_SELECTOR)]
    if left:
        raise CheckFailed(
            f"these pods that ran when step 4 began still exist: {', '.join(sorted(left))}",
            "every catalog and orders pod deleted (their Deployments start new ones)",
            f"kubectl -n {lab.app_ns} delete pod -l {EXERCISE_SELECTOR}",
        )
    end_ns = lab.clock.time_ns() + 1
    start_ns = end_ns - LOOKBACK_S * 10**9
    try:
        gone = _deleted_pods(lab, start_ns, end_ns)
    except LokiError as e:
        raise CheckFailed(
            str(e), "Loki answers /series", f"kubectl -n {lab.logging_ns} get pods"
        ) from None
    proved = []
    for app, pods in gone.items():
        if not pods:
            raise CheckFailed(
                f"Loki has lines only from {app} pods that still run",
                f"lines of at least one deleted {app} pod",
                f"kubectl -n {lab.app_ns} delete pod -l app={app}, then run the check again",
            )
        last = {pod: _last_line(lab, pod, start_ns, end_ns) for pod in pods}
        graceful = [p for p, e in last.items() if e and json_field(e, "msg") == LAST_LINE]
        if not graceful:
            newest = max((e for e in last.values() if e), key=lambda e: e.ts_ns)
            raise CheckFailed(
                f"no deleted {app} pod's last line in Loki is `{LAST_LINE}`; the newest is "
                f"{shorten(newest.line, 100)}",
                f"the lines a pod writes just before it stops ({LAST_LINE}) shipped before the "
                "kubelet removes its log file",
                f"keep the agent running while you delete: `kubectl -n {lab.agent_ns} get "
                "ds,pods`; then delete the pods again",
            )
        pod = max(graceful, key=lambda p: last[p].ts_ns)
        got = run_learner_query(lab, query, start_ns=start_ns, pod=pod)
        verdict_deleted_pod(got, pod, last[pod], query.substituted(pod=pod))
        proved.append(f"{pod} ({len(got)} lines)")
    return Passed(
        "deleted_pod_lines returned the lines of deleted pods up to their last: "
        + ", ".join(proved)
    )


@pytest.mark.checker("lab2.learner-queries")
def test_learner_queries(lab, record_outcome):
    record_outcome(check_learner_queries(lab))


@pytest.mark.checker("lab2.learner-deleted-pod-lines")
def test_learner_deleted_pod_lines(lab, record_outcome):
    record_outcome(check_learner_deleted_pod_lines(lab))
