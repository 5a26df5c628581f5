"""`pytest checks` end to end against the fake lab: learner report, score JSON and JUnit XML."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from checks import catalogue
from tests.fake_lab_plugin import write_fake_kubeconfig, write_unreachable_kubeconfig

REPO = Path(__file__).resolve().parents[1]


def run_checks(
    tmp_path: Path, kubeconfig: Path, *extra: str
) -> tuple[subprocess.CompletedProcess, dict, ET.Element]:
    score, junit = tmp_path / "score.json", tmp_path / "junit.xml"
    env = {**os.environ, "PYTEST_PLUGINS": "tests.fake_lab_plugin",
           "LAB_DOCS_URL": "https://course.example/logging"}  # fmt: skip
    env.pop("LAB_KUBECONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-p", "no:cacheprovider", "--kubeconfig",
         str(kubeconfig), "--score-json", str(score), "--junitxml", str(junit), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc, json.loads(score.read_text()), ET.parse(junit).getroot()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_passing_lab_scores_everything(tmp_path):
    proc, score, junit = run_checks(tmp_path, write_fake_kubeconfig(tmp_path / "k", "passing"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(score["checkers"]) == set(catalogue.BY_ID)
    assert score["total"] == score["max"] == sum(c.points for c in catalogue.CHECKERS)
    assert score["reachable"] is True
    deletion = score["checkers"]["lab2.logs-survive-deletion"]
    assert deletion["measurements"]["request_to_queryable_seconds"] > 0
    scored = [c for c in catalogue.CHECKERS if not c.informational]
    top, n, info = sum(c.points for c in scored), len(scored), len(catalogue.CHECKERS) - len(scored)
    assert f"Total: {top}/{top} points ({n} of {n} checkers passed; {info} informational)" in (
        proc.stdout
    )
    assert "measured: request -> queryable: " in proc.stdout
    assert junit.get("failures") == "0" or junit.find(".//testsuite").get("failures") == "0"


def test_failing_lab_reports_diagnosis_hint_and_docs_under_each_failure(tmp_path):
    proc, score, junit = run_checks(tmp_path, write_fake_kubeconfig(tmp_path / "k", "failing"))
    assert proc.returncode == 1
    rows = score["checkers"]
    failed = {cid for cid, row in rows.items() if not row["passed"]}
    assert failed == {"lab2.json-stdout", "lab2.single-request-query", "lab2.error-traceable"}
    assert score["total"] == score["max"] - 20 - 20 - 5
    assert "Starting catalog" in rows["lab2.json-stdout"]["diagnosis"]
    out = proc.stdout
    fail_line = next(line for line in out.splitlines() if "FAIL  lab2.json-stdout" in line)
    assert "0/20" in fail_line
    after = out[out.index(fail_line) :]
    assert "observed: pod catalog-" in after
    # the hint is the diagnosis' own next step (shown once), not a fixed text that may not fit
    assert rows["lab2.json-stdout"]["hint"].startswith("kubectl -n bookstore logs catalog-")
    assert "next: kubectl -n bookstore logs catalog-" in after
    assert "hint: Each line must parse as JSON" not in after
    assert "docs: https://course.example/logging/lab-2/#step-1" in after
    # JUnit carries the same diagnosis as the failure message text
    texts = [f.text or "" for f in junit.iter("failure")]
    assert len(texts) == 3 and any("only from orders" in t for t in texts)


def test_checker_option_selects_by_catalogue_id(tmp_path):
    kubeconfig = write_fake_kubeconfig(tmp_path / "k", "passing")
    proc, score, _ = run_checks(tmp_path, kubeconfig, "--checker", "lab2.agent-daemonset")
    assert list(score["checkers"]) == ["lab2.agent-daemonset"] and proc.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "--kubeconfig", str(kubeconfig),
         "--checker", "lab2.nope"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0 and "unknown checker id(s) lab2.nope" in bad.stderr


def test_unreachable_cluster_fails_every_checker_with_one_clear_diagnosis(tmp_path):
    kubeconfig = write_unreachable_kubeconfig(tmp_path / "k", free_port())
    proc, score, _ = run_checks(tmp_path, kubeconfig)
    assert proc.returncode == 1
    assert score["reachable"] is False and "no API server answered" in score["error"]
    assert score["total"] == 0 and set(score["checkers"]) == set(catalogue.BY_ID)
    assert all("no API server answered" in r["diagnosis"] for r in score["checkers"].values())


def test_api_errors_become_diagnoses_not_tracebacks(tmp_path):
    kubeconfig = write_fake_kubeconfig(tmp_path / "k", "forbidden")
    proc, score, _ = run_checks(tmp_path, kubeconfig, "--checker", "lab2.agent-daemonset")
    row = score["checkers"]["lab2.agent-daemonset"]
    assert not row["passed"] and "HTTP 403" in row["diagnosis"]
    assert "auth can-i --list" in row["diagnosis"]  # a 403, and only a 403, is about RBAC
    assert "Traceback" not in proc.stdout and "raise KubeError" not in proc.stdout


def test_missing_kubeconfig_says_how_to_get_one(tmp_path):
    proc, score, _ = run_checks(tmp_path, tmp_path / "absent")
    assert "does not exist" in score["error"] and "nox -s lab-2" in score["error"]


def test_learner_report_puts_diagnosis_hint_and_docs_under_every_failure_only(monkeypatch):
    from checks.report import learner_report, result_row

    monkeypatch.setenv("LAB_DOCS_URL", "https://course.example/")
    rows = {
        c.id: result_row(c, passed=i % 2 == 0, diagnosis=f"observed: thing {i}")
        for i, c in enumerate(catalogue.CHECKERS)
    }
    total = sum(r["points"] for r in rows.values())
    top = sum(c.points for c in catalogue.CHECKERS)
    data = {"cluster": "https://x", "total": total, "max": top, "checkers": rows}
    text = "\n".join(learner_report(data))
    for i, c in enumerate(catalogue.CHECKERS):
        block = re.split(r"\n  (?:PASS|FAIL|INFO)|\nTotal", text.split(c.id, 1)[1])[0]
        url = "https://course.example/" + c.docs.replace(".md#", "/#")
        if i % 2:
            assert f"observed: thing {i}" in block and c.hint in block and url in block
        else:
            assert c.hint not in block
    scored = [(i, c) for i, c in enumerate(catalogue.CHECKERS) if not c.informational]
    passed = sum(1 for i, _ in scored if not i % 2)
    info = len(catalogue.CHECKERS) - len(scored)
    assert text.splitlines()[-1] == (
        f"Total: {total}/{top} points ({passed} of {len(scored)} checkers passed; "
        f"{info} informational)"
    )


def test_an_informational_checker_shows_as_information_not_failure():
    from checks.report import learner_report, result_row

    spec = catalogue.get("lab2.grafana-datasource")
    assert spec.informational and spec.points == 0
    row = result_row(spec, diagnosis="observed: no Loki datasource")
    assert row["informational"] is True
    text = learner_report({"total": 0, "max": 0, "checkers": {spec.id: row}})
    assert "  INFO  lab2.grafana-datasource" in text[1] and "FAIL" not in "\n".join(text)


def test_every_checker_links_the_lab_step_that_runs_it():
    """In both modes: the reference plan's checks and the learner task's (issue 12)."""
    from labs.lab2 import LAB

    for step in LAB.steps:
        refs = list(step.checks) + list(step.task.checks if step.task else ())
        for ref in refs:
            assert catalogue.get(ref.id).docs == f"lab-2.md#step-{step.number}", ref.id


def test_the_agent_checker_names_the_agents_namespace():
    """Title and hint follow versions.toml: the agent is not in Loki's namespace."""
    from labconfig.versions import load_versions

    charts = load_versions()["charts"]
    spec = catalogue.get("lab2.agent-daemonset")
    assert f"`{charts['alloy']['namespace']}`" in spec.title
    assert f"namespace `{charts['alloy']['namespace']}`" in spec.hint
    assert f"in `{charts['loki']['namespace']}`" not in spec.title


def test_the_label_hint_lists_the_labels_the_chapter_teaches():
    hint = catalogue.get("lab2.low-cardinality-labels").hint
    for label in ("namespace", "pod", "container", "app", "stream", "service_name"):
        assert label in hint, label
    assert "detected_level is structured metadata" in hint


def test_docs_links_go_to_the_configured_site(monkeypatch):
    spec = catalogue.get("lab2.namespace-restricted")
    monkeypatch.setenv("LAB_DOCS_URL", "https://docs.example/k8s-logging")
    assert catalogue.docs_url(spec) == "https://docs.example/k8s-logging/lab-2/#step-2"
    monkeypatch.delenv("LAB_DOCS_URL")
    assert catalogue.docs_url(spec).endswith("/lab-2/#step-2")
    assert catalogue.docs_url(spec).startswith(("http://", "https://"))


@pytest.mark.parametrize(
    ("status", "observed", "advice"),
    [
        (401, "Unauthorized", "credentials accepted"),
        (403, "forbidden", "auth can-i --list"),
        (404, 'deployments "catalogue" not found', "changed label selector"),
        (409, "the object has been modified", "rerun the checker once"),
        (503, "etcdserver: leader changed", "a passing 5xx clears by itself"),
    ],
)
def test_each_api_error_gets_its_own_diagnosis(status, observed, advice):
    from checks.diagnose import api_error_diagnosis
    from checks.kube import error_for_status

    error = error_for_status(status, f"GET x: HTTP {status}: {observed}")
    diagnosis = api_error_diagnosis(error, ".lab/kubeconfig").diagnosis
    assert observed in diagnosis and advice in diagnosis
    if status != 403:
        assert "auth can-i" not in diagnosis


def test_unreachable_and_loki_errors_get_their_own_diagnosis():
    from checks.diagnose import api_error_diagnosis
    from checks.kube import KubeUnreachable
    from checks.loki import LokiError

    down = api_error_diagnosis(KubeUnreachable("no API server answered"), "k").diagnosis
    assert "get nodes" in down and "auth can-i" not in down
    loki = api_error_diagnosis(LokiError("Loki answered 500"), "k").diagnosis
    assert "statefulset/loki" in loki
    assert api_error_diagnosis(ValueError("x"), "k") is None


def test_timeout_scale_is_validated(monkeypatch):
    import pytest

    from checks.polling import timeout_scale

    monkeypatch.setenv("LAB_TIMEOUT_SCALE", "2.5")
    assert timeout_scale() == 2.5
    for bad in ("fast", "0", "-1"):
        monkeypatch.setenv("LAB_TIMEOUT_SCALE", bad)
        with pytest.raises(ValueError, match="LAB_TIMEOUT_SCALE"):
            timeout_scale()
