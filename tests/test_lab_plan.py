"""The lab-2 plan (what `--dry-run` prints and the docs page shows) is the expected command
sequence, with every version, chart and name taken from versions.toml."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from checks import catalogue
from labconfig.versions import REPO_ROOT, load_versions
from labs import engine, lab2
from labs.__main__ import main
from labs.model import CHECK, CLUSTER, DOCTOR
from labs.settings import Settings
from labs.tools import host_platform

KC = ".lab/kubeconfig"
K = f"kubectl --kubeconfig {KC}"
H = f"helm --kubeconfig {KC}"


def _install(chart: dict, seconds: int) -> str:
    return (
        f"{H} upgrade --install {chart['release']} {chart['repo_name']}/{chart['chart']} "
        f"--version {chart['version']} --namespace {chart['namespace']} "
        f"--values {chart['values']} --wait --timeout {seconds}s"
    )


def _loki(query: str, **extra: str) -> str:
    params = "&".join([f"query={quote(query, safe='')}"] + [f"{k}={v}" for k, v in extra.items()])
    return (
        f"{K} get --raw '/api/v1/namespaces/logging/services/loki:3100/proxy"
        f"/loki/api/v1/query_range?{params}'"
    )


def _checks(*ids: str) -> str:
    return f"python -m pytest checks --kubeconfig {KC} --score-json .lab/score.json " + " ".join(
        f"--checker {i}" for i in ids
    )


def expected_plan(docker: str = "docker") -> dict[int, list[str]]:
    v = load_versions()
    name = v["kind"]["cluster_name"]
    loki, alloy, grafana = (v["charts"][c] for c in ("loki", "alloy", "grafana"))
    base = v["python"]["base_image"]
    images = v["images"]
    return {
        0: [
            "python -m labs doctor",
            f"kind create cluster --name={name} --kubeconfig={KC} "
            f"--image={v['kind']['node_image']} --config manifests/kind/cluster.yaml",
            f"{K} wait --for=condition=Ready nodes --all --timeout=180s",
            *(
                f"DOCKER_BUILDKIT=1 {docker} build --file bookstore/Dockerfile --build-arg "
                f"SERVICE={svc} --build-arg BASE_IMAGE={base} --tag {img} ."
                for svc, img in images.items()
            ),
            *(f"kind load docker-image --name {name} {img}" for img in images.values()),
            f"{K} apply -k manifests/bookstore",
            f"{K} rollout status deployment/catalog -n bookstore --timeout=240s",
            f"{K} rollout status deployment/orders -n bookstore --timeout=240s",
        ],
        1: [
            f"{K} logs -n bookstore deploy/catalog --tail=5",
            f"{K} logs -n bookstore deploy/orders --tail=5",
            _checks("lab2.json-stdout"),
        ],
        2: [
            f"{K} apply -f manifests/logging/namespace.yaml",
            f"helm repo add --force-update {loki['repo_name']} {loki['repo_url']}",
            f"helm repo add --force-update {alloy['repo_name']} {alloy['repo_url']}",
            _install(loki, 600),
            f"{H} status loki --namespace logging",
            f"{K} get --raw /api/v1/namespaces/logging/services/loki:3100/proxy/ready",
            _install(alloy, 300),
            f"{H} status alloy --namespace logging-agent",
            f"{K} rollout status daemonset/alloy -n logging-agent --timeout=180s",
            f"{K} get daemonset -n logging-agent",
            _checks("lab2.agent-daemonset", "lab2.namespace-restricted"),
        ],
        3: [
            f"{K} delete job loadgen -n bookstore --ignore-not-found",
            f"{K} apply -f manifests/bookstore/loadgen.yaml",
            f"{K} wait --for=condition=complete job/loadgen -n bookstore --timeout=300s",
            _loki('{namespace="bookstore"}', limit="5"),
            _loki('{namespace="bookstore"} | json | level="ERROR"', limit="3"),
            _checks(
                "lab2.single-request-query",
                "lab2.error-traceable",
                "lab2.low-cardinality-labels",
                "lab2.no-secrets-in-loki",
            ),
        ],
        4: [
            f"{K} delete pod -n bookstore -l app=catalog",
            f"{K} rollout status deployment/catalog -n bookstore --timeout=180s",
            _loki(
                'sum by (pod) (count_over_time({namespace="bookstore", app="catalog"}[30m]))',
                step="60",
            ),
            _checks("lab2.logs-survive-deletion"),
        ],
        5: [
            f"helm repo add --force-update {grafana['repo_name']} {grafana['repo_url']}",
            _install(grafana, 300),
            f"{H} status grafana --namespace logging",
            _checks("lab2.grafana-datasource"),
        ],
    }


SOLVE = engine.Options(solve=True)
GOLDEN = REPO_ROOT / "tests" / "data" / "lab2_solve_plan.txt"


def test_solve_plan_is_the_full_plan_of_before_learner_mode():
    """`--solve` runs exactly what the lab ran before learner mode existed.

    tests/data/lab2_solve_plan.txt is the repr of every step's actions as they were when learner
    mode was added (commit 0658989). When a solution command changes on purpose, regenerate it:
    `python -c "from tests.test_lab_plan import write_golden; write_golden()"`, and say why in
    the commit.
    """
    assert solve_plan_repr() == GOLDEN.read_text()


def solve_plan_repr() -> str:
    return "".join(f"{ps.step.number} {ps.actions!r}\n" for ps in engine.plan(lab2.LAB, SOLVE))


def write_golden() -> None:
    GOLDEN.write_text(solve_plan_repr())


def test_plan_is_the_expected_command_sequence():
    planned = engine.plan(lab2.LAB, SOLVE)
    assert [ps.step.number for ps in planned] == list(range(10))
    # Steps 6-9 (the hands-on extras) are pinned in tests/test_lab_plan_extras.py.
    got = {ps.step.number: [pa.display for pa in ps.actions] for ps in planned[:6]}
    assert got == expected_plan()


def test_dry_run_prints_every_planned_command_in_order(capsys, monkeypatch):
    # The plan on a learner's machine: no machine-specific overrides (CI exports some).
    for name in ("BOOKSTORE_BASE_IMAGE", "BOOKSTORE_EXTRA_CA", "LAB_IMAGE_LOAD", "LAB_KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "lab2", "--dry-run", "--solve"]) == 0
    out = capsys.readouterr().out
    shown = [line[2:] for line in out.splitlines() if line.startswith("$ ")]
    from tests.test_lab_plan_extras import expected_extras

    # The build and the node step run the client labconfig.docker_client picks on this machine.
    docker = Settings.from_env().docker
    plan = {**expected_plan(docker), **expected_extras(docker)}
    expected = [cmd for step in plan.values() for cmd in step]
    assert shown == expected
    # The containerd-store fallback is documented next to each image load, not run by default.
    save = f"#   $ {docker} save --platform linux/{host_platform()[1]} --output .lab/images/"
    assert out.count(save) == len(load_versions()["images"])


def test_versions_come_from_versions_toml_not_the_code():
    """Every pinned chart version and the node image appear in the plan exactly as pinned."""
    v = load_versions()
    text = engine.render_plan(lab2.LAB, SOLVE)
    for chart in v["charts"].values():
        assert f"--version {chart['version']}" in text
    assert v["kind"]["node_image"] in text
    source = (REPO_ROOT / "labs" / "lab2.py").read_text()
    for chart in v["charts"].values():
        assert chart["version"] not in source
    assert v["kind"]["node_image"] not in source


def test_every_kubectl_and_helm_command_uses_the_lab_kubeconfig():
    solution = [pa.action for ps in engine.plan(lab2.LAB, SOLVE) for pa in ps.actions]
    tasks = [a for s in lab2.LAB.steps if s.task for a in (*s.task.setup, *s.task.commands)]
    for action in solution + tasks:
        argv = action.argv
        if argv[0] in ("kubectl", "helm") and argv[1:3] != ("repo", "add"):
            assert argv[1:3] == ("--kubeconfig", KC), engine.planned(action).display


def test_steps_reference_known_checkers_and_docs_anchors():
    for step in lab2.LAB.steps:
        assert step.docs == f"lab-2.md#step-{step.number}"
        for ref in step.checks:
            catalogue.get(ref.id)  # raises on an unknown id
        kinds = [a.kind for a in step.actions]
        if step.checks:
            assert kinds[-1] == CHECK
            # The command runs exactly the checkers the step (and its docs section) lists.
            assert engine.checker_ids(step.actions[-1]) == [c.id for c in step.checks]
    every = set(lab2.LAB.checker_ids) | set(lab2.LAB.learner_checker_ids)
    assert every == {c.id for c in catalogue.CHECKERS} | set(catalogue.ON_REQUEST)
    # The learner-file checkers are only ever run by id, by the learner's own steps.
    assert set(catalogue.ON_REQUEST) <= set(lab2.LAB.learner_checker_ids)
    for step in lab2.LAB.steps:
        for ref in step.learner_checks:
            catalogue.get(ref.id)
    assert [a.kind for a in lab2.LAB.step(0).actions[:2]] == [DOCTOR, CLUSTER]
    assert lab2.LAB.step(5).optional


def test_settings_scale_deadlines_and_pass_image_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings.from_env(
        {
            "LAB_TIMEOUT_SCALE": "2",
            "BOOKSTORE_BASE_IMAGE": "localhost/python-base:3.12",
            "BOOKSTORE_EXTRA_CA": str(ca),
            "LAB_IMAGE_LOAD": "archive",
            "LAB_KUBECONFIG": "/tmp/other/kubeconfig",
        }
    )
    text = engine.render_plan(lab2.build(settings), SOLVE)
    assert "--timeout=480s" in text and "--timeout 1200s" in text  # 240 s and 600 s, doubled
    assert "--build-arg BASE_IMAGE=localhost/python-base:3.12" in text
    assert f"--secret id=extra_ca,src={ca}" in text
    assert "kind load docker-image" not in text
    assert "save --platform linux/" in text and "--output .lab/images/catalog.tar" in text
    assert "kind load image-archive --name lab2-logging .lab/images/catalog.tar" in text
    assert "--kubeconfig /tmp/other/kubeconfig" in text and KC not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAB_TIMEOUT_SCALE": "fast"}, "LAB_TIMEOUT_SCALE='fast' is not a positive number"),
        ({"LAB_TIMEOUT_SCALE": "0"}, "is not a positive number"),
        ({"LAB_IMAGE_LOAD": "ship"}, "LAB_IMAGE_LOAD='ship' is not understood"),
        ({"BOOKSTORE_EXTRA_CA": "/nonexistent/ca.pem"}, "is not a file"),
    ],
)
def test_bad_settings_say_what_to_set(env, message):
    with pytest.raises(SystemExit, match=message):
        Settings.from_env(env)


def test_until_and_step_select_steps_and_bad_options_are_explained(capsys):
    assert [ps.step.number for ps in engine.plan(lab2.LAB, engine.Options(until=2))] == [0, 1]
    assert main(["run", "lab2", "--hint", "--solve"]) == 2
    assert "cannot be combined with --solve" in capsys.readouterr().out
    assert main(["run", "lab2", "--hint", "--step", "0"]) == 2
    assert "step 0 has no exercise" in capsys.readouterr().out
    assert [ps.step.number for ps in engine.plan(lab2.LAB, engine.Options(step=3))] == [3]
    assert main(["run", "lab2", "--dry-run", "--until", "10"]) == 2
    assert "lab2 has no step 10; its steps are 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in (
        capsys.readouterr().out
    )
    assert main(["run", "lab2", "--dry-run", "--until", "2", "--step", "1"]) == 2
    assert "not both" in capsys.readouterr().out
    assert main(["run", "lab2", "--dry-run", "--until", "3"]) == 0
    out = capsys.readouterr().out
    assert "## Step 3" not in out and "Stops before step 3" in out


def test_the_ci_workflow_runs_the_solution_the_learner_checkers_and_every_drill():
    import yaml

    from labs.drills import DRILLS

    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "lab.yml").read_text())
    steps = workflow["jobs"]["lab-2"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert "nox -s lab-2 -- --solve" in runs and "nox -s lab-2 -- --check --solve" in runs
    assert runs.index("nox -s doctor") < runs.index("nox -s lab-2 -- --solve")
    learner = next(s for s in steps if "--check --step 3" in s.get("run", ""))
    assert learner["env"]["LAB_QUERIES"] == lab2.QUERIES_SOLUTION
    drills = next(s for s in steps if "DRILLS" in s.get("env", {}))
    assert drills["env"]["DRILLS"].split() == [d.name for d in DRILLS]
    for command in ('nox -s drill -- "$drill"', "--verify-broken", '"$drill" --solve'):
        assert command in drills["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "failure()" and upload["with"]["include-hidden-files"] is True
    assert ".lab/artifacts/" in upload["with"]["path"]
    assert steps[-1]["run"] == "nox -s lab-down" and steps[-1]["if"] == "always()"
