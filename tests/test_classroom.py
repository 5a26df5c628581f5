"""Class mode offline: the roster is checked whole, each learner's objects are valid and
restricted, RBAC isolates learners (proven with the evaluator), the class values derive from the
lab's, and `plan` refuses a quota that cannot hold the bookstore."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import httpx
import pytest
import yaml

from classroom import rbac
from classroom.__main__ import main
from classroom.cluster import ClassCluster
from classroom.learners import bookstore_objects, class_selector, learner_objects
from classroom.plan import make_plan
from classroom.roster import MAX_ID_LENGTH, Learner, RosterError, load_roster, parse_roster
from classroom.values import PipelineShapeError, alloy_overlay, tenant_pipeline
from labconfig.versions import REPO_ROOT, load_versions
from tests.fakes_class import FakeClassApi
from validators import pss
from validators.alloy_lint import lint_values
from validators.manifests import schema_problem

ADA, BOB = Learner("ada"), Learner("bob")
K8S = load_versions()["kubernetes"]["version"]


# -- roster --------------------------------------------------------------------------------
def test_a_roster_gives_learners_with_namespace_and_tenant() -> None:
    learners = parse_roster("\ufeffid,name\nada,Ada Lovelace\n\nbob,\n")
    assert [(lrn.id, lrn.name, lrn.namespace, lrn.tenant) for lrn in learners] == [
        ("ada", "Ada Lovelace", "lab2-ada", "lab2-ada"),
        ("bob", "", "lab2-bob", "lab2-bob"),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("id\nAda\n", "not a DNS label"),
        ("id\nada_l\n", "not a DNS label"),
        ("id\n-ada\n", "not a DNS label"),
        ("id\nada\nada\n", "duplicate of line 2"),
        (f"id\n{'a' * (MAX_ID_LENGTH + 1)}\n", "at most"),
        ("id,name\n,Nobody\n", "the id is empty"),
        ("name\nada\n", "no `id` column"),
        ("", "empty"),
        ("id\n", "no learners"),
    ],
)
def test_a_bad_roster_is_refused_whole_with_each_row_named(text: str, reason: str) -> None:
    with pytest.raises(RosterError, match=reason):
        parse_roster(text)


def test_every_bad_row_is_listed_and_nothing_is_half_applied() -> None:
    with pytest.raises(RosterError) as e:
        parse_roster("id\nada\nBad\nbob\nbob\n")
    message = str(e.value)
    assert "2 bad row(s); nothing was created" in message
    assert "line 3" in message and "line 5" in message


def test_the_longest_id_still_fits_a_namespace_name() -> None:
    (learner,) = parse_roster(f"id\n{'a' * MAX_ID_LENGTH}\n")
    assert len(learner.namespace) == 63


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"id\n\xff\xfe\n", "not UTF-8"), (b"id\nada\x00\n", "NUL"), (b"x" * 1_000_001, "larger")],
)
def test_a_roster_file_that_is_not_text_is_a_clear_error(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(content)
    with pytest.raises(RosterError, match=reason):
        load_roster(path)


def test_a_directory_is_not_a_roster(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="not a regular file"):
        load_roster(tmp_path)


# -- each learner's objects ----------------------------------------------------------------
def objects_of(learner: Learner) -> list[dict]:
    return learner_objects(learner, "spring") + bookstore_objects(learner)


def test_every_learner_object_validates_against_the_pinned_kubernetes_schema() -> None:
    problems = [(o["kind"], schema_problem(o, K8S)) for o in objects_of(ADA)]
    assert [p for p in problems if p[1]] == []


def test_the_learner_namespace_enforces_restricted_at_the_pinned_version() -> None:
    ns = next(o for o in objects_of(ADA) if o["kind"] == "Namespace")
    minor = ".".join(K8S.lstrip("v").split(".")[:2])
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{minor}"
    assert labels["lab.k8s-logging/class"] == "spring"
    assert labels["lab.k8s-logging/learner"] == "ada"


def test_the_bookstore_in_a_learner_namespace_passes_restricted() -> None:
    objects = objects_of(ADA)
    assert pss.count_pod_specs(objects) == 2  # catalog and orders were really evaluated
    assert pss.evaluate(objects, level="restricted") == []


def test_the_bookstore_moves_whole_into_the_learner_namespace() -> None:
    objs = bookstore_objects(ADA)
    assert {o["metadata"]["namespace"] for o in objs} == {"lab2-ada"}
    assert all(o["kind"] != "Namespace" for o in objs)
    services = [o for o in objs if o["kind"] == "Service"]
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services)
    assert all("nodePort" not in p for s in services for p in s["spec"]["ports"])
    config = next(o for o in objs if o["kind"] == "ConfigMap")
    assert config["data"]["CATALOG_URL"] == "http://catalog.lab2-ada.svc.cluster.local"


def test_the_class_selector_finds_what_up_labels() -> None:
    selector = dict(pair.split("=") for pair in class_selector("spring").split(","))
    for obj in learner_objects(ADA, "spring"):
        labels = obj["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in selector.items()), obj["kind"]


# -- isolation, proven with the RBAC evaluator ----------------------------------------------
@pytest.fixture(scope="module")
def policy() -> rbac.Policy:
    return rbac.Policy(learner_objects(ADA, "spring") + learner_objects(BOB, "spring"))


SA_ADA = rbac.Subject.service_account("lab2-ada", "learner")


@pytest.mark.parametrize(
    "request_",
    [
        rbac.Request("list", "pods", "lab2-ada"),
        rbac.Request("get", "pods", "lab2-ada", subresource="log"),
        rbac.Request("delete", "pods", "lab2-ada"),
        rbac.Request("patch", "deployments", "lab2-ada", group="apps"),
        rbac.Request("update", "deployments", "lab2-ada", group="apps", subresource="scale"),
        rbac.Request("create", "jobs", "lab2-ada", group="batch"),
        rbac.Request("list", "events", "lab2-ada", group="events.k8s.io"),
        rbac.Request("create", "services", "lab2-ada", subresource="proxy"),
        rbac.Request("patch", "configmaps", "lab2-ada"),
    ],
)
def test_a_learner_can_do_each_exercise_in_their_namespace(policy, request_) -> None:
    assert policy.allows(SA_ADA, request_)


@pytest.mark.parametrize(
    "request_",
    [
        rbac.Request("list", "pods", "lab2-bob"),
        rbac.Request("get", "pods", "lab2-bob", subresource="log"),
        rbac.Request("delete", "pods", "lab2-bob"),
        rbac.Request("get", "services", "lab2-bob", subresource="proxy"),
        rbac.Request("get", "secrets", "lab2-ada"),
        rbac.Request("list", "secrets", "lab2-bob"),
        rbac.Request("create", "pods", "lab2-ada", subresource="exec"),
        rbac.Request("create", "serviceaccounts", "lab2-ada", subresource="token"),
        rbac.Request("patch", "namespaces", ""),
        rbac.Request("update", "namespaces", "", name="lab2-ada"),
        rbac.Request("create", "rolebindings", "lab2-ada", group="rbac.authorization.k8s.io"),
        rbac.Request("escalate", "roles", "lab2-ada", group="rbac.authorization.k8s.io"),
        rbac.Request("list", "pods", ""),
        rbac.Request("get", "services", "logging", subresource="proxy"),
    ],
)
def test_a_learner_cannot_reach_another_learner_or_grant_themselves_more(policy, request_) -> None:
    assert not policy.allows(SA_ADA, request_)


def test_another_learners_account_is_not_bound_in_this_namespace(policy) -> None:
    sa_bob = rbac.Subject.service_account("lab2-bob", "learner")
    assert not policy.allows(sa_bob, rbac.Request("list", "pods", "lab2-ada"))
    assert policy.allows(sa_bob, rbac.Request("list", "pods", "lab2-bob"))


def test_the_evaluator_follows_rbac_matching_rules() -> None:
    objects = yaml.safe_load_all(
        """
kind: ClusterRole
metadata: {name: viewer}
rules:
  - {apiGroups: ["*"], resources: ["*/scale"], verbs: [get]}
  - {apiGroups: [""], resources: [configmaps], verbs: [get], resourceNames: [one]}
---
kind: RoleBinding
metadata: {name: view, namespace: a}
roleRef: {kind: ClusterRole, name: viewer}
subjects: [{kind: Group, name: "system:serviceaccounts:a"}]
---
kind: ClusterRoleBinding
metadata: {name: all}
roleRef: {kind: ClusterRole, name: viewer}
subjects: [{kind: User, name: admin}]
"""
    )
    policy = rbac.Policy(o for o in objects if o)
    sa = rbac.Subject.service_account("a", "x")
    scale = rbac.Request("get", "deployments", "a", group="apps", subresource="scale")
    assert policy.allows(sa, scale)
    assert not policy.allows(sa, rbac.Request("get", "deployments", "a", group="apps"))
    other_ns = rbac.Request("get", "deployments", "b", group="apps", subresource="scale")
    assert not policy.allows(sa, other_ns)
    assert policy.allows(sa, rbac.Request("get", "configmaps", "a", name="one"))
    assert not policy.allows(sa, rbac.Request("get", "configmaps", "a", name="two"))
    anywhere = rbac.Request("get", "pods", "z", subresource="scale")
    assert policy.allows(rbac.Subject("User", "admin"), anywhere)


# -- the shared stack's values ---------------------------------------------------------------
def test_the_class_pipeline_is_the_lab_pipeline_plus_the_tenant_stages() -> None:
    versions = load_versions()
    lab = yaml.safe_load((REPO_ROOT / versions["charts"]["alloy"]["values"]).read_text())
    content = alloy_overlay()["alloy"]["configMap"]["content"]
    assert 'label = "namespace"' in content and 'tenant_id = "platform"' in content
    # Nothing of the lab's pipeline is lost or reordered: removing the additions gives it back.
    lines = content.splitlines()
    added = {i for i, line in enumerate(lines) if "tenant" in line or "Class mode" in line}
    start = next(i for i, line in enumerate(lines) if "stage.match {" in line)
    added |= set(range(start - 1, start + 7))
    kept = [line for i, line in enumerate(lines) if i not in added]
    assert [x for x in kept if x.strip()] == [
        x for x in lab["alloy"]["configMap"]["content"].splitlines() if x.strip()
    ]
    loki = yaml.safe_load((REPO_ROOT / versions["charts"]["loki"]["values"]).read_text())
    class_values = {**lab, "alloy": {**lab["alloy"], "configMap": {"content": content}}}
    assert lint_values(class_values, loki) == []


def test_a_pipeline_without_its_anchors_is_refused_not_guessed() -> None:
    with pytest.raises(PipelineShapeError, match="forward_to"):
        tenant_pipeline(
            'loki.write "x" {\n  endpoint {\n    url = "http://l/loki/api/v1/push"\n  }\n}\n'
        )


def test_the_loki_overlay_turns_auth_on_and_removes_the_open_nodeport() -> None:
    overlay = yaml.safe_load((REPO_ROOT / "manifests/class/loki-values.yaml").read_text())
    assert overlay["loki"]["auth_enabled"] is True
    assert overlay["gateway"] == {"enabled": True, "basicAuth": {"enabled": True}}
    kinds = [o["kind"] for o in overlay["extraObjects"]]
    assert kinds == ["NetworkPolicy"]


# -- plan and render --------------------------------------------------------------------------
def test_plan_sums_the_class_and_fits_the_bookstore_in_the_quota() -> None:
    plan = make_plan([ADA, BOB], "spring", nodes=2)
    assert plan.quota_problems == []
    assert plan.bookstore_pods == 7  # 2 + 2 replicas, a surge pod each, the loadgen Job
    assert plan.bookstore_need.values["requests.cpu"] == pytest.approx(0.35)
    assert plan.total_need.values["requests.cpu"] == pytest.approx(
        2 * 0.5 + plan.shared_need.values["requests.cpu"]
    )


def test_plan_refuses_a_quota_that_cannot_hold_the_bookstore(tmp_path: Path, capsys) -> None:
    root = tmp_path / "repo"
    for part in ("manifests", "versions.toml"):
        src = REPO_ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / part)
    template = root / "manifests/class/learner.yaml"
    template.write_text(template.read_text().replace("requests.cpu: 500m", "requests.cpu: 100m"))
    plan = make_plan([ADA], "spring", nodes=1, root=root)
    assert plan.quota_problems == ["requests.cpu: needs 350m, quota 100m"]


def test_render_keeps_handed_out_passwords_private_and_stable(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nada\n")
    out = tmp_path / "class"
    assert main(["render", "--roster", str(roster), "--out", str(out)]) == 0
    tenants = out / "loki-tenants.yaml"
    assert stat.S_IMODE(tenants.stat().st_mode) == 0o600
    first = yaml.safe_load(tenants.read_text())["loki"]["tenants"]
    roster.write_text("id\nada\nbob\n")
    assert main(["render", "--roster", str(roster), "--out", str(out)]) == 0
    second = yaml.safe_load(tenants.read_text())["loki"]["tenants"]
    assert second[0] == first[0] and second[1]["name"] == "lab2-bob"
    assert second[1]["password"] != first[0]["password"]
    assert (out / "learners" / "bob.yaml").is_file()
    setup = out / "grafana-setup.yaml"
    assert stat.S_IMODE(setup.stat().st_mode) == 0o600
    kinds = [doc["kind"] for doc in yaml.safe_load_all(setup.read_text())]
    assert kinds == ["Secret", "ConfigMap", "Job"]


def test_the_cli_reports_a_bad_roster_and_creates_nothing(tmp_path: Path, capsys) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nBad Name\n")
    out = tmp_path / "class"
    assert main(["render", "--roster", str(roster), "--out", str(out)]) == 2
    assert "nothing was created" in capsys.readouterr().err
    assert not out.exists()


# -- up, kubeconfigs, status, down against the fake API server --------------------------------


@pytest.fixture
def api() -> FakeClassApi:
    return FakeClassApi()


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("id\nada\nbob\n")
    return path


def admin_kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "admin.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "admin",
                "contexts": [{"name": "admin", "context": {"cluster": "c", "user": "root"}}],
                "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443",
                                                       "certificate-authority-data": "Q0E="}}],
                "users": [{"name": "root", "user": {"exec": {"command": "never-run-by-us"}}}],
            }
        )
    )  # fmt: skip
    return path


def run_cli(args: list[str], api: FakeClassApi, ran: list | None = None) -> int:
    def run(command: list[str]) -> int:
        (ran if ran is not None else []).append(command)
        return 0

    return main(args, cluster=ClassCluster(api.client()), run=run, sleep=api.job_controller())


def up_learners(api: FakeClassApi, roster: Path, admin: Path, tmp_path: Path) -> None:
    args = ["up", "--roster", str(roster), "--kubeconfig", str(admin),
            "--out", str(tmp_path / "c"), "--skip-stack"]  # fmt: skip
    assert run_cli(args, api) == 0


def test_up_creates_each_learner_and_a_second_up_changes_nothing(
    api: FakeClassApi, roster: Path, tmp_path: Path
) -> None:
    ran: list = []
    args = ["up", "--roster", str(roster), "--kubeconfig", str(admin_kubeconfig(tmp_path)),
            "--out", str(tmp_path / "class")]  # fmt: skip
    assert run_cli(args, api, ran) == 0
    assert ("namespaces", "", "lab2-ada") in api.objects
    assert ("deployments", "lab2-bob", "orders") in api.objects
    versions = {k: o["metadata"]["resourceVersion"] for k, o in api.objects.items()}
    assert run_cli(args, api) == 0
    assert {k: o["metadata"]["resourceVersion"] for k, o in api.objects.items()} == versions
    helm = [c for c in ran if c[:3] == ["helm", "upgrade", "--install"]]
    loki = next(c for c in helm if c[3] == "loki")
    values = [loki[i + 1] for i, word in enumerate(loki) if word == "--values"]
    tenants = f"{tmp_path / 'class'}/loki-tenants.yaml"
    assert values[1:] == ["manifests/class/loki-values.yaml", tenants]


def test_up_reports_a_refused_learner_and_still_creates_the_others(
    api: FakeClassApi, roster: Path, tmp_path: Path, capsys
) -> None:
    api.refuse["lab2-ada"] = 403
    args = ["up", "--roster", str(roster), "--kubeconfig", str(admin_kubeconfig(tmp_path)),
            "--out", str(tmp_path / "class"), "--skip-stack"]  # fmt: skip
    assert run_cli(args, api) == 1
    out = capsys.readouterr().out
    assert "ada" in out and "HTTP 403" in out and "1/2 learners ok" in out
    assert ("deployments", "lab2-bob", "catalog") in api.objects


def test_down_deletes_only_the_class_namespaces(api: FakeClassApi, roster: Path, tmp_path) -> None:
    run_cli(["up", "--roster", str(roster), "--kubeconfig", str(admin_kubeconfig(tmp_path)),
             "--out", str(tmp_path / "c"), "--skip-stack"], api)  # fmt: skip
    other = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab2-notours"}}
    ClassCluster(api.client()).apply(other)
    assert run_cli(["down", "--kubeconfig", str(admin_kubeconfig(tmp_path))], api) == 0
    names = {k[2] for k in api.objects if k[0] == "namespaces"}
    assert "lab2-ada" not in names and "lab2-bob" not in names
    assert {"lab2-notours", "logging"} <= names  # unknown and shared namespaces are kept


def test_kubeconfigs_hold_an_expiring_token_and_nothing_of_the_admin(
    api: FakeClassApi, roster: Path, tmp_path: Path
) -> None:
    admin = admin_kubeconfig(tmp_path)
    up_learners(api, roster, admin, tmp_path)
    out = tmp_path / "kc"
    args = ["kubeconfigs", "--roster", str(roster), "--kubeconfig", str(admin), "--out", str(out)]
    assert run_cli(args, api) == 0
    config = yaml.safe_load((out / "ada.kubeconfig").read_text())
    assert stat.S_IMODE((out / "ada.kubeconfig").stat().st_mode) == 0o600
    assert config["users"] == [{"name": "ada", "user": {"token": "token-lab2-ada"}}]
    assert config["contexts"][0]["context"]["namespace"] == "lab2-ada"
    cluster = config["clusters"][0]["cluster"]
    assert cluster == {"server": "https://10.0.0.1:6443", "certificate-authority-data": "Q0E="}
    assert "exec" not in (out / "ada.kubeconfig").read_text()


def test_status_says_who_is_not_ready(api: FakeClassApi, roster: Path, tmp_path, capsys) -> None:
    admin = admin_kubeconfig(tmp_path)
    up_learners(api, roster, admin, tmp_path)
    for name in ("catalog", "orders"):
        api.objects[("deployments", "lab2-ada", name)]["status"] = {"readyReplicas": 2}
    del api.objects[("namespaces", "", "lab2-bob")]
    capsys.readouterr()
    assert run_cli(["status", "--roster", str(roster), "--kubeconfig", str(admin)], api) == 1
    out = capsys.readouterr().out
    assert "ada  ok  catalog 2/2, orders 2/2" in out
    assert "bob  NO  no namespace" in out


def test_the_scale_values_put_several_replicas_on_an_object_store() -> None:
    scale = yaml.safe_load((REPO_ROOT / "manifests/class/loki-scale-values.yaml").read_text())
    replicas = scale["singleBinary"]["replicas"]
    assert replicas > 1
    assert 1 < scale["loki"]["commonConfig"]["replication_factor"] <= replicas
    assert scale["loki"]["storage"]["type"] in ("s3", "gcs", "azure")
    (schema,) = scale["loki"]["schemaConfig"]["configs"]
    assert schema["object_store"] == scale["loki"]["storage"]["type"]
    trial = yaml.safe_load((REPO_ROOT / "manifests/class/loki-minio-trial-values.yaml").read_text())
    # Chart 18.11.0 refuses the bundled MinIO unless its deprecation is acknowledged.
    assert trial["minio"]["enabled"] is True and trial["ignoreMinioDeprecation"] is True


# -- the live isolation proof, against the fakes ----------------------------------------------
def isolation_world(tmp_path: Path, api: FakeClassApi, **view):
    import argparse

    from classroom.__main__ import _isolation
    from tests.fakes_class import FakeGateway, learner_view

    roster = tmp_path / "roster.csv"
    roster.write_text("id\nada\nbob\n")
    up_learners(api, roster, admin_kubeconfig(tmp_path), tmp_path)
    tenants = tmp_path / "c" / "loki-tenants.yaml"
    listed = yaml.safe_load(tenants.read_text())["loki"]["tenants"]
    passwords = {t["name"]: t["password"] for t in listed}
    gateway = FakeGateway(passwords, {"lab2-ada": ["ada's line"], "lab2-bob": ["bob's line"]})
    transport = learner_view(api, **view)

    def api_for(learner: Learner):
        token = {"Authorization": f"Bearer token-{learner.namespace}"}
        return httpx.Client(base_url="https://fake-apiserver", transport=transport, headers=token)

    args = argparse.Namespace(tenants=tenants)
    learners = load_roster(roster)

    def run() -> int:
        client = httpx.Client(base_url="https://gw", transport=gateway.transport())
        return _isolation(args, learners, api_for=api_for, gateway=client)

    return gateway, run


def test_isolation_passes_when_every_cross_learner_attempt_is_refused(
    api: FakeClassApi, tmp_path: Path, capsys
) -> None:
    _, run = isolation_world(tmp_path, api)
    assert run() == 0
    out = capsys.readouterr().out
    assert "10/10 attempts refused" in out
    assert "ada  refused  list pods in lab2-bob: HTTP 403" in out


def test_isolation_fails_when_the_gateway_honours_a_forged_tenant(
    api: FakeClassApi, tmp_path: Path, capsys
) -> None:
    gateway, run = isolation_world(tmp_path, api)
    gateway.honour_client_header = True
    assert run() == 1
    out = capsys.readouterr().out
    assert "ada  BREACH   read tenant lab2-bob (forged X-Scope-OrgID): 1 line(s) of lab2-bob" in out


def test_isolation_fails_when_the_role_reaches_other_namespaces(
    api: FakeClassApi, tmp_path: Path, capsys
) -> None:
    _, run = isolation_world(tmp_path, api, allow_everything=True)
    assert run() == 1
    assert "BREACH   list pods in lab2-bob: HTTP 200" in capsys.readouterr().out
