"""The live checkers against a class learner: their namespace `lab2-<id>` and their Loki tenant,
on a shared cluster whose Loki has auth on (tests/fakes.py `loki_auth`, tests/fake_loki.py
tenants). The laptop lab stays the default: no option, no tenant header."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from checks.evidence import CheckFailed
from checks.loki import Loki, LokiError
from checks.test_lab2_json_stdout import check_json_stdout
from checks.test_lab2_single_request_query import check_single_request_query
from classroom.grade import CLASS_CHECKERS
from labconfig.versions import REPO_ROOT
from tests.fake_lab_plugin import OTHER_LEARNER, write_fake_kubeconfig
from tests.fakes import FakeClock, FakeLoki, Scenario, fake_lab

ADA = "lab2-ada"


def class_lab(namespace: str = ADA, tenant: str | None = ADA):
    lab, cluster = fake_lab(Scenario(app_namespace=namespace, loki_auth=True))
    lab.app_ns, lab.tenant = namespace, tenant
    cluster.clock.sleep(20)  # past Loki's 15 s of "not ready"
    return lab, cluster


def loki_calls(cluster) -> list[tuple[str, str | None]]:
    """(path, X-Scope-OrgID) of every request Loki received."""
    seen = zip(cluster.loki.requests, cluster.loki.headers_seen, strict=True)
    return [(path, headers.get("x-scope-orgid")) for path, headers in seen]


def run_checks(kubeconfig, *options: str, env: dict | None = None, score=None):
    command = [sys.executable, "-m", "pytest", str(REPO_ROOT / "checks"), "-q",
               "-p", "no:cacheprovider", "--kubeconfig", str(kubeconfig), *options]  # fmt: skip
    if score:
        command += ["--score-json", str(score)]
    child_env = {**os.environ, "PYTEST_PLUGINS": "tests.fake_lab_plugin", **(env or {})}
    child_env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=600
    )


# -- every checker, for learner A ----------------------------------------------------------
@pytest.fixture(scope="module")
def ada_score(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    kubeconfig = write_fake_kubeconfig(folder / "admin.yaml", "class")
    score = folder / "ada.json"
    done = run_checks(kubeconfig, "--namespace", ADA, "--tenant", ADA, score=score)
    assert score.is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(score.read_text())


@pytest.mark.parametrize(
    "checker", [*CLASS_CHECKERS, "lab2.agent-daemonset", "lab2.incident", "lab2.node-rotation"]
)
def test_each_checker_passes_for_a_learner_in_their_namespace_and_tenant(ada_score, checker):
    row = ada_score["checkers"][checker]
    assert row["passed"], row["diagnosis"]
    assert ada_score["namespace"] == ADA and ada_score["tenant"] == ADA


def test_the_same_options_come_from_the_environment(tmp_path):
    kubeconfig = write_fake_kubeconfig(tmp_path / "admin.yaml", "class")
    score = tmp_path / "s.json"
    env = {"LAB_NAMESPACE": ADA, "LAB_TENANT": ADA}
    run_checks(kubeconfig, "--checker", "lab2.single-request-query", env=env, score=score)
    row = json.loads(score.read_text())["checkers"]["lab2.single-request-query"]
    assert row["passed"], row["diagnosis"]
    assert 'namespace="lab2-ada"' in row["diagnosis"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--namespace", "Lab2_Ada"], "is not a namespace name"),
        (["--tenant", "a b"], "is not a Loki tenant id"),
        (["--loki-url", "localhost:3100"], "is not an http(s) URL"),
    ],
)
def test_a_bad_learner_option_is_a_usage_error_before_anything_runs(tmp_path, options, message):
    kubeconfig = write_fake_kubeconfig(tmp_path / "admin.yaml", "class")
    done = run_checks(kubeconfig, *options)
    assert done.returncode == 4  # pytest's usage error
    assert message in done.stderr


# -- the tenant header -----------------------------------------------------------------------
def test_every_loki_query_of_a_learner_names_their_tenant():
    lab, cluster = class_lab()
    passed = check_single_request_query(lab)
    assert 'namespace="lab2-ada"' in passed.summary
    queries = [(path, org) for path, org in loki_calls(cluster) if path != "/ready"]
    assert queries and {org for _, org in queries} == {ADA}


def test_the_laptop_lab_sends_no_tenant_header():
    lab, cluster = fake_lab()
    cluster.clock.sleep(20)
    check_single_request_query(lab)
    assert loki_calls(cluster) and {org for _, org in loki_calls(cluster)} == {None}
    assert lab.app_ns == "bookstore" and lab.tenant is None


def test_without_a_tenant_the_class_loki_refuses_and_the_diagnosis_says_how_to_fix_it():
    lab, _ = class_lab(tenant=None)
    # A LokiError is turned into the same diagnosis by checks/conftest.py in a pytest run.
    with pytest.raises((CheckFailed, LokiError)) as failed:
        check_single_request_query(lab, ingest_timeout=5)
    assert "answered 401" in str(failed.value) and "no org id" in str(failed.value)
    assert "--tenant" in str(failed.value)


def test_the_namespace_steers_the_kubernetes_checks_too():
    lab, _ = class_lab()
    assert "all validate against the schema" in check_json_stdout(lab).summary
    lab.app_ns = "bookstore"  # the laptop's name on a class cluster: nothing of hers is there
    with pytest.raises(CheckFailed) as failed:
        check_json_stdout(lab)
    assert "no running pod in namespace bookstore" in failed.value.observed


# -- isolation: learner A's tenant never shows learner B's lines ----------------------------
def test_a_learner_s_tenant_never_shows_another_learner_s_lines():
    clock = FakeClock()
    loki = FakeLoki(clock, auth_enabled=True)
    for tenant in (ADA, "lab2-bob"):
        for _ in range(3):  # the same labels and text in both tenants: only the tenant differs
            labels = {"namespace": ADA, "app": "orders", "pod": "orders-0", "container": "orders"}
            loki.push(labels, f'{{"level": "INFO", "msg": "hello", "owner": "{tenant}"}}',
                      tenant=tenant, delay=0)  # fmt: skip
    clock.sleep(20)
    start, end = 0, clock.time_ns() + 10**9

    def owners(tenant):
        client = Loki(httpx.Client(transport=loki.transport, base_url="http://loki"),
                      tenant=tenant, clock=clock)  # fmt: skip
        lines = client.entries('{namespace=~".+"}', start_ns=start, end_ns=end)
        return {json.loads(e.line)["owner"] for e in lines}, len(lines)

    assert owners(ADA) == ({ADA}, 3)
    assert owners("lab2-bob") == ({"lab2-bob"}, 3)


def test_a_checker_run_with_another_learner_s_tenant_finds_nothing_of_theirs():
    lab, cluster = class_lab(tenant=OTHER_LEARNER)  # the fake's other learner has lines too
    cluster.loki.push({"namespace": OTHER_LEARNER, "app": "orders"}, "{}", tenant=OTHER_LEARNER)
    with pytest.raises(CheckFailed) as failed:
        check_single_request_query(lab, ingest_timeout=5)
    assert "returned 0 line(s)" in failed.value.observed


def test_several_tenants_in_one_query_are_refused():
    loki = FakeLoki(FakeClock(), auth_enabled=True)
    client = httpx.Client(transport=loki.transport, base_url="http://loki")
    answer = client.get("/loki/api/v1/labels", headers={"X-Scope-OrgID": f"{ADA}|lab2-bob"})
    assert answer.status_code == 400
