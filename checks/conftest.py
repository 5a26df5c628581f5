"""pytest wiring of the lab-2 checkers: options, the `lab` fixture, and the two reports.

Run: `python -m pytest checks --kubeconfig PATH [--checker ID ...] [--score-json PATH]
[--junitxml PATH] [--namespace NS --tenant TENANT [--loki-url URL]]`. Without the last three it
is the laptop lab (namespace `bookstore`, Loki without auth); a class learner is graded with
their namespace and Loki tenant (docs/class-mode.md).

Each checker is a test marked `@pytest.mark.checker("<catalogue id>")`;
the catalogue (checks/catalogue.py) gives its title, points, hint and docs link. The learner
sees one line per checker with the diagnosis and hint under each failure; machines get JUnit
XML (pytest's own --junitxml, whose failure text is the diagnosis) and a score JSON keyed by
checker id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checks import catalogue
from checks.diagnose import api_error_diagnosis
from checks.evidence import CheckFailed, Passed
from checks.kube import KubeError
from checks.loki import LokiError
from checks.report import learner_report, result_row, score_json
from labconfig.settings import DEFAULT_KUBECONFIG, KUBECONFIG_ENV
from labconfig.versions import REPO_ROOT

NAMESPACE_ENV, TENANT_ENV, LOKI_URL_ENV = "LAB_NAMESPACE", "LAB_TENANT", "LAB_LOKI_URL"
# A namespace name is an RFC 1123 label (k8s.io/apimachinery validation.IsDNS1123Label); a Loki
# tenant id is at most 150 characters of letters, digits and !-_.*'() (Loki docs, "Multi-tenancy").
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
TENANT_ID = re.compile(r"[A-Za-z0-9!_.*'()-]{1,150}")
RESULTS = pytest.StashKey[dict]()  # checker id -> result row, on the config
CONNECTION = pytest.StashKey[dict]()  # what the session knows about the cluster


class LabHooks:
    """Hook specs other plugins can implement (the offline tests plug fakes in here)."""

    @pytest.hookspec(firstresult=True)
    def pytest_lab_connect(self, config: pytest.Config, kubeconfig: Path):
        """Return a checks.lab.Lab for this kubeconfig, or None to use the real cluster."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(LabHooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "lab-2 checkers")
    # pytest-kind (a lab dependency) defines --kubeconfig too, with the same meaning: share it.
    with contextlib.suppress(ValueError):
        group.addoption(
            "--kubeconfig",
            default=None,
            help=f"kubeconfig of the lab cluster (env {KUBECONFIG_ENV}; "
            f"default {DEFAULT_KUBECONFIG})",
        )
    group.addoption(
        "--checker",
        action="append",
        default=[],
        metavar="ID",
        help="run only this checker (catalogue id, repeatable)",
    )
    group.addoption(
        "--namespace",
        default=None,
        metavar="NS",
        help=f"the bookstore's namespace (env {NAMESPACE_ENV}; default bookstore, the laptop lab)",
    )
    group.addoption(
        "--tenant",
        default=None,
        metavar="TENANT",
        help=f"Loki tenant sent as X-Scope-OrgID (env {TENANT_ENV}; default none: no auth)",
    )
    group.addoption(
        "--loki-url",
        default=None,
        metavar="URL",
        help=f"reach Loki here, not through the service proxy (env {LOKI_URL_ENV}), "
        "e.g. a `kubectl port-forward` to the Loki pod",
    )
    group.addoption(
        "--score-json", default=None, metavar="PATH", help="write the score JSON keyed by id"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checker(id): the catalogue id this test verifies")
    config.stash[RESULTS] = {}
    config.stash[CONNECTION] = {"kubeconfig": str(kubeconfig_path(config)), "error": None}
    learner_of(config)  # a bad namespace or tenant is a usage error before anything runs
    unknown = [c for c in config.getoption("checker") if c not in catalogue.ALL_BY_ID]
    if unknown:
        raise pytest.UsageError(
            f"unknown checker id(s) {', '.join(unknown)}; known: {', '.join(catalogue.ALL_BY_ID)}"
        )


def kubeconfig_path(config: pytest.Config) -> Path:
    """--kubeconfig, else LAB_KUBECONFIG, else the lab's own .lab/kubeconfig (never ~/.kube)."""
    given = config.getoption("kubeconfig") or os.environ.get(KUBECONFIG_ENV)
    return Path(given) if given else REPO_ROOT / DEFAULT_KUBECONFIG


def learner_of(config: pytest.Config) -> dict[str, str]:
    """Whose lab to check: the options, else the environment; only what was given (a Lab
    keeps the laptop lab's names for the rest)."""
    given = {
        "app_ns": config.getoption("namespace") or os.environ.get(NAMESPACE_ENV),
        "tenant": config.getoption("tenant") or os.environ.get(TENANT_ENV),
        "loki_url": config.getoption("loki_url") or os.environ.get(LOKI_URL_ENV),
    }
    ns, tenant, url = given["app_ns"], given["tenant"], given["loki_url"]
    if ns is not None and not DNS_LABEL.fullmatch(ns):
        raise pytest.UsageError(
            f"--namespace {ns!r} is not a namespace name (lower-case letters, digits and '-', "
            "at most 63); a class learner's is lab2-<id>, as `python -m classroom plan` lists"
        )
    if tenant is not None and not TENANT_ID.fullmatch(tenant):
        raise pytest.UsageError(
            f"--tenant {tenant!r} is not a Loki tenant id (1-150 of letters, digits, !-_.*'())"
        )
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        raise pytest.UsageError(f"--loki-url {url!r} is not an http(s) URL")
    return {k: v for k, v in given.items() if v is not None}


def checker_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("checker")
    return marker.args[0] if marker and marker.args else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the selected checkers, in catalogue order (exercise 3 runs before 4 deletes a pod)."""
    wanted = set(config.getoption("checker"))
    every = (*catalogue.CHECKERS, *catalogue.LEARNER_CHECKERS)
    order = {c.id: i for i, c in enumerate(every)}
    here = Path(__file__).parent
    others, keep, drop = [], [], []
    for item in items:
        if here not in Path(item.path).parents:
            others.append(item)  # collected from elsewhere in the same run: not ours to filter
            continue
        cid = checker_id(item)
        if cid is not None and cid not in catalogue.ALL_BY_ID:
            raise pytest.UsageError(f"{item.nodeid} is marked with unknown checker id {cid!r}")
        # Without --checker: what the cluster proves (learner-file checkers only on request).
        chosen = cid in wanted if wanted else cid in catalogue.BY_ID
        (keep if cid and chosen else drop).append(item)
    keep.sort(key=lambda it: order[checker_id(it)])
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = others + keep


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config):
    """The connection to the lab cluster, checked once; an unreachable cluster fails every
    checker with the same diagnosis instead of hanging each one."""
    from checks.kube import Kube
    from checks.lab import Lab
    from checks.polling import timeout_scale

    info = pytestconfig.stash[CONNECTION]
    kubeconfig = kubeconfig_path(pytestconfig)
    try:
        the_lab = pytestconfig.hook.pytest_lab_connect(config=pytestconfig, kubeconfig=kubeconfig)
        if the_lab is None:
            the_lab = Lab(Kube(kubeconfig), timeout_scale=timeout_scale())
        for key, value in learner_of(pytestconfig).items():
            setattr(the_lab, key, value)
        info.update(learner_of(pytestconfig))
        info["cluster"] = getattr(the_lab.kube, "host", "?")
        info["server_version"] = the_lab.kube.server_version()
    except (KubeError, ValueError) as e:
        info["error"] = str(e)
        raise CheckFailed(
            str(e),
            "a reachable Kubernetes API server from the kubeconfig",
            f"kubectl --kubeconfig {kubeconfig} get nodes; `nox -s lab-2` creates the cluster",
        ) from None
    yield the_lab
    the_lab.close()


@pytest.fixture(scope="session")
def kube(lab):
    """The Kubernetes client of the lab (checks.kube.Kube, or a fake in the offline tests)."""
    return lab.kube


@pytest.fixture(scope="session")
def loki(lab):
    """The Loki client, through the API server's service proxy."""
    return lab.loki


@pytest.fixture
def record_outcome(request: pytest.FixtureRequest):
    """Checkers hand their Passed result here so the reports can show what they saw."""

    def record(outcome: Passed) -> None:
        request.node.stash[_OUTCOME] = outcome

    return record


_OUTCOME = pytest.StashKey[Passed]()


# -- results -------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    cid = checker_id(item)
    if cid is None:
        return report
    results = item.config.stash[RESULTS]
    spec = catalogue.get(cid)
    row = results.setdefault(cid, result_row(spec))
    row["seconds"] = round(row["seconds"] + report.duration, 2)
    if call.excinfo is not None and report.failed:
        error = call.excinfo.value
        if isinstance(error, KubeError | LokiError):
            # The cluster refused or failed a call: a diagnosis by the kind of error (401, 403,
            # 404, 409, 5xx, unreachable), not a traceback and not always "check RBAC".
            namespace = learner_of(item.config).get("app_ns", "bookstore")
            error = api_error_diagnosis(error, str(kubeconfig_path(item.config)), namespace)
        if isinstance(error, CheckFailed):
            row["diagnosis"] = error.diagnosis
            row["hint"] = error.next_step  # what to do about *this* failure
            report.longrepr = f"{cid}: {spec.title}\n{error.diagnosis}"
        else:
            # A checker bug or an unexpected API error: keep the traceback, name the error.
            row["diagnosis"] = f"{type(error).__name__}: {error}"
        row["passed"], row["points"] = False, 0
    elif report.when == "call" and report.passed:
        outcome = item.stash.get(_OUTCOME, None)
        row["passed"], row["points"] = True, spec.points
        if outcome is not None:
            row["diagnosis"] = outcome.summary
            row["measurements"] = dict(outcome.measurements)
    if report.when == "teardown":
        write_score(item.config)  # after each checker: a kill at a deadline loses nothing done
    return report


def score(config: pytest.Config) -> dict:
    """The machine report: totals and one row per checker that ran."""
    results = config.stash[RESULTS]
    info = config.stash[CONNECTION]
    return score_json(
        results,
        kubeconfig=info["kubeconfig"],
        cluster=info.get("cluster"),
        server_version=info.get("server_version"),
        reachable=info.get("error") is None,
        error=info.get("error"),
        # Whose lab, when it is not the laptop's: a class gradebook row names its learner's.
        **{
            key: info[opt]
            for key, opt in (("namespace", "app_ns"), ("tenant", "tenant"))
            if opt in info
        },  # fmt: skip
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_score(config: pytest.Config) -> None:
    """The score JSON so far, replaced atomically: a reader never sees half a file."""
    path = config.getoption("score_json")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        partial = Path(f"{path}.partial")
        partial.write_text(json.dumps(score(config), indent=2) + "\n")
        os.replace(partial, path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    write_score(session.config)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    data = score(config)
    if not data["checkers"]:
        return
    terminalreporter.section("lab 2 report")
    for line in learner_report(data):
        markup = {}
        if line.startswith("  PASS"):
            markup = {"green": True}
        elif line.startswith("  FAIL"):
            markup = {"red": True, "bold": True}
        terminalreporter.write_line(line, **markup)
