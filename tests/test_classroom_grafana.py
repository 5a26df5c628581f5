"""Class mode's shared Grafana: one organisation per learner, made by the setup Job's script.

The script (classroom/grafana_orgs.py) runs here as a real process, as the Job runs it, against
a fake Grafana on a loopback socket (tests/fake_grafana.py); the objects `up` applies are
checked against the pinned schemas and Pod Security, and `up`/`down` against the fake API server.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml

from classroom import grafana
from classroom.__main__ import main
from classroom.cluster import ClassCluster
from classroom.grafana_orgs import instructor_uid
from classroom.isolation import grafana_probes
from classroom.roster import Learner
from labconfig.versions import REPO_ROOT, load_versions
from tests.fake_grafana import FakeGrafana
from tests.fakes_class import FakeClassApi
from validators import pss
from validators.manifests import schema_problem

ADA, BOB = Learner("ada"), Learner("bob")
PASSWORDS = {"ada": "ada-secret-1", "bob": "bob-secret-2"}
SCRIPT = REPO_ROOT / grafana.SCRIPT
K8S = load_versions(REPO_ROOT / "versions.toml")["kubernetes"]["version"]


def run_script(fake: FakeGrafana, tmp_path: Path, learners=(ADA, BOB), passwords=PASSWORDS):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(grafana.plan(list(learners), passwords)))
    env = {"GRAFANA_URL": fake.url, "GRAFANA_ADMIN_USER": "admin",
           "GRAFANA_ADMIN_PASSWORD": "admin-pw", "GRAFANA_READY_SECONDS": "20"}  # fmt: skip
    # Only the standard library: -S leaves site-packages out, -I any PYTHON* variable.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(plan)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def as_user(fake: FakeGrafana, login: str, password: str, path: str, org: int | None = None):
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    if org is not None:
        headers["X-Grafana-Org-Id"] = str(org)
    request = urllib.request.Request(fake.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_each_learner_gets_an_organisation_a_login_and_their_own_loki(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        result = run_script(fake, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2/2 learners ready" in result.stdout
        assert fake.orgs_of("lab2-ada") == {"lab2-ada": "Editor"}, "their organisation only"
        assert fake.orgs_of("lab2-bob") == {"lab2-bob": "Editor"}
        org = fake.org_id("lab2-ada")
        source = fake.datasources[(org, "loki")]
        assert source["url"] == "http://loki-gateway.logging.svc.cluster.local"
        assert (source["basicAuth"], source["basicAuthUser"]) == (True, "lab2-ada")
        assert source["secureJsonData"] == {"basicAuthPassword": "ada-secret-1"}
        assert source["isDefault"] is True
        # The instructor's main organisation has one data source per learner.
        mine = fake.datasources[(1, "loki-lab2-bob")]
        assert (mine["name"], mine["basicAuthUser"]) == ("Loki lab2-bob", "lab2-bob")


def test_a_learner_signed_in_sees_only_their_own_data_source(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        status, sources = as_user(fake, "lab2-ada", "ada-secret-1", "/api/datasources")
        assert status == 200
        assert [(s["uid"], s["basicAuthUser"]) for s in sources] == [("loki", "lab2-ada")]
        assert "secureJsonData" not in sources[0], "the password is never shown"
        bob_org = fake.org_id("lab2-bob")
        status, _ = as_user(fake, "lab2-ada", "ada-secret-1", "/api/datasources", org=bob_org)
        # Signed in, but with no role in an organisation that is not theirs: Grafana's access
        # check refuses (403), it does not fail the sign-in (401).
        assert status == 403, "another learner's organisation is refused"
        status, _ = as_user(fake, "lab2-ada", "ada-secret-1", "/api/datasources", org=1)
        assert status == 403, "the instructor's organisation is refused"
        status, _ = as_user(fake, "lab2-ada", "ada-secret-1", "/api/orgs/name/lab2-bob")
        assert status == 403, "looking organisations up needs server-admin permissions"


def test_running_again_changes_nothing_and_follows_a_new_password(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        before = (dict(fake.orgs), dict(fake.members), set(fake.datasources))
        again = run_script(fake, tmp_path, passwords={**PASSWORDS, "ada": "rotated"})
        assert again.returncode == 0, again.stdout
        assert (dict(fake.orgs), dict(fake.members), set(fake.datasources)) == before
        ada = fake.users[fake.user_id("lab2-ada")]
        assert ada["password"] == "rotated"
        org = fake.org_id("lab2-ada")
        assert fake.datasources[(org, "loki")]["secureJsonData"]["basicAuthPassword"] == "rotated"


def test_running_again_leaves_an_unchanged_password_alone(tmp_path: Path) -> None:
    # Grafana signs a user out everywhere when an admin sets their password: a run of the Job
    # (a learner added, Grafana restarted) must not sign the whole class out.
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        fake.calls.clear()
        assert run_script(fake, tmp_path, passwords={**PASSWORDS, "ada": "rotated"}).returncode == 0
        resets = [path for method, path in fake.calls if path.endswith("/password")]
        assert resets == [f"/api/admin/users/{fake.user_id('lab2-ada')}/password"]


def test_a_user_already_in_the_main_organisation_is_taken_out_of_it(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        # Made by hand before the class (no OrgId): Grafana puts them in the main org as Viewer.
        fake.users[7] = {"login": "lab2-ada", "password": "old", "admin": False, "org": 1}
        fake.members[(1, 7)] = "Viewer"
        assert run_script(fake, tmp_path).returncode == 0
        assert fake.orgs_of("lab2-ada") == {"lab2-ada": "Editor"}


def test_an_organisation_made_by_someone_else_is_joined_before_use(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        fake.orgs[5] = "lab2-ada"  # exists, and the admin is not a member of it
        assert run_script(fake, tmp_path).returncode == 0
        assert fake.members[(5, 1)] == "Admin"
        assert (5, "loki") in fake.datasources


def test_one_learner_failing_is_reported_and_the_others_are_still_set_up(tmp_path) -> None:
    with FakeGrafana() as fake:
        fake.fail[("POST", "/api/orgs")] = 500
        fake.orgs[9] = "lab2-bob"  # bob's organisation exists, so only ada needs the POST
        result = run_script(fake, tmp_path)
        assert result.returncode == 1
        assert "FAILED lab2-ada: POST /api/orgs: HTTP 500" in result.stdout
        assert "ok     lab2-bob" in result.stdout and "1/2 learners ready" in result.stdout


def test_it_waits_for_a_starting_grafana_and_gives_up_with_a_reason(tmp_path: Path) -> None:
    with FakeGrafana() as fake:
        fake.not_ready_for = 2  # 503 twice, then ready
        assert run_script(fake, tmp_path).returncode == 0
    with FakeGrafana() as fake:
        fake.not_ready_for = 10**6
        plan = tmp_path / "p.json"
        plan.write_text(json.dumps(grafana.plan([ADA], PASSWORDS)))
        env = {"GRAFANA_URL": fake.url, "GRAFANA_ADMIN_USER": "admin",
               "GRAFANA_ADMIN_PASSWORD": "admin-pw", "GRAFANA_READY_SECONDS": "1"}  # fmt: skip
        command = [sys.executable, "-I", "-S", str(SCRIPT), str(plan)]
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 1 and "not ready after 1 s (HTTP 503" in result.stdout


def test_wrong_admin_credentials_fail_every_learner_with_grafanas_message(tmp_path) -> None:
    with FakeGrafana(admin_password="something-else") as fake:
        result = run_script(fake, tmp_path)
        assert result.returncode == 1
        assert (
            "Invalid username or password" in result.stdout
            and "0/2 learners ready" in result.stdout
        )


def test_a_long_login_gets_a_uid_grafana_accepts() -> None:
    long = "lab2-" + "x" * 50
    assert len(instructor_uid(long)) <= 40 and instructor_uid(long) != instructor_uid(long + "y")
    assert instructor_uid("lab2-ada") == "loki-lab2-ada"


# -- the objects `up` applies -------------------------------------------------------------------
def test_the_setup_objects_validate_and_the_job_passes_restricted() -> None:
    objects = grafana.grafana_objects([ADA, BOB], PASSWORDS, "c1")
    assert [o["kind"] for o in objects] == ["Secret", "ConfigMap", "Job"]
    for obj in objects:
        assert schema_problem(obj, K8S) is None, obj["kind"]
        assert obj["metadata"]["namespace"] == "logging"
        assert obj["metadata"]["labels"]["lab.k8s-logging/class"] == "c1"
    assert pss.count_pod_specs(objects) == 1  # the Job's pod was really evaluated
    assert pss.evaluate(objects, level="restricted") == []
    plan = json.loads(objects[0]["stringData"]["plan.json"])
    assert plan["learners"][0] == {"login": "lab2-ada", "password": "ada-secret-1"}
    assert objects[1]["data"]["grafana_orgs.py"] == SCRIPT.read_text()


def test_the_job_name_follows_the_plan() -> None:
    name = lambda objects: objects[-1]["metadata"]["name"]  # noqa: E731
    same = name(grafana.grafana_objects([ADA], PASSWORDS, "c1"))
    assert same == name(grafana.grafana_objects([ADA], PASSWORDS, "c1"))
    assert same != name(grafana.grafana_objects([ADA, BOB], PASSWORDS, "c1"))


def test_a_new_image_gives_a_new_job_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Job's pod template is immutable: the same name with a new image would be refused (422).
    name = lambda: grafana.grafana_objects([ADA], PASSWORDS, "c1")[-1]["metadata"]["name"]  # noqa: E731
    before = name()
    monkeypatch.setattr(grafana, "_image", lambda root: "registry.example/orders:next")
    assert name() != before


def test_the_grafana_overlay_signs_everyone_in_and_drops_the_open_nodeport() -> None:
    overlay = yaml.safe_load((REPO_ROOT / "manifests/class/grafana-values.yaml").read_text())
    assert overlay["grafana.ini"]["auth.anonymous"]["enabled"] is False
    assert overlay["service"] == {"type": "ClusterIP", "nodePort": None}
    [source] = overlay["datasources"]["datasources.yaml"]["datasources"]
    assert source["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert source["secureJsonData"]["httpHeaderValue1"] == "platform"
    # What the setup Job makes must survive a restart of Grafana's pod.
    assert overlay["persistence"]["enabled"] is True
    assert overlay["initChownData"]["enabled"] is False, "a root chown fails restricted"


# -- up and down --------------------------------------------------------------------------------
@pytest.fixture
def class_files(tmp_path: Path) -> tuple[Path, Path]:
    roster = tmp_path / "roster.csv"
    roster.write_text("id\nada\nbob\n")
    admin = tmp_path / "admin.yaml"
    admin.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))  # fmt: skip
    return roster, admin


def up(api: FakeClassApi, class_files, tmp_path: Path, condition: str) -> int:
    roster, admin = class_files
    args = ["up", "--roster", str(roster), "--kubeconfig", str(admin), "--out", str(tmp_path / "c")]
    return main(args, cluster=ClassCluster(api.client()), run=lambda c: 0,
                sleep=api.job_controller(condition))  # fmt: skip


def test_up_runs_the_setup_job_and_reports_it(class_files, tmp_path: Path, capsys) -> None:
    api = FakeClassApi()
    assert up(api, class_files, tmp_path, "Complete") == 0
    out = capsys.readouterr().out
    assert "grafana: ok  one organisation per learner" in out
    jobs = [k for k in api.objects if k[0] == "jobs"]
    assert len(jobs) == 1 and jobs[0][1] == "logging"
    secret = api.objects[("secrets", "logging", grafana.PLAN_SECRET)]
    tenants = yaml.safe_load((tmp_path / "c" / "loki-tenants.yaml").read_text())["loki"]["tenants"]
    plan = json.loads(secret["stringData"]["plan.json"])
    assert {(t["name"], t["password"]) for t in tenants} == {
        (x["login"], x["password"]) for x in plan["learners"]
    }, "Grafana logins use the same passwords as the gateway"


def test_a_failed_setup_job_fails_up_and_says_where_to_look(class_files, tmp_path, capsys):
    api = FakeClassApi()
    assert up(api, class_files, tmp_path, "Failed") == 1
    out = capsys.readouterr().out
    assert "grafana: NO  the setup Job failed: `kubectl logs -n logging job/" in out


def test_up_again_after_a_failed_setup_job_runs_it_again(class_files, tmp_path, capsys):
    # Grafana was still down, say: the same roster gives the same Job name, which must run again.
    api = FakeClassApi()
    assert up(api, class_files, tmp_path, "Failed") == 1
    assert up(api, class_files, tmp_path, "Complete") == 0
    assert "grafana: ok" in capsys.readouterr().out


def test_down_removes_the_passwords_secret_but_not_another_class_s(class_files, tmp_path):
    api = FakeClassApi()
    assert up(api, class_files, tmp_path, "Complete") == 0
    _, admin = class_files
    cluster = ClassCluster(api.client())
    assert main(["down", "--kubeconfig", str(admin), "--class", "other"], cluster=cluster) == 0
    assert ("secrets", "logging", grafana.PLAN_SECRET) in api.objects
    assert main(["down", "--kubeconfig", str(admin)], cluster=cluster) == 0
    assert ("secrets", "logging", grafana.PLAN_SECRET) not in api.objects
    assert ("configmaps", "logging", grafana.SCRIPT_CONFIGMAP) not in api.objects


# -- the isolation proof's Grafana part ---------------------------------------------------------
def grafana_isolation(fake: FakeGrafana) -> list:
    client = httpx.Client(base_url=fake.url, timeout=10)
    return grafana_probes(ADA, PASSWORDS["ada"], BOB, client)


def test_isolation_finds_nothing_to_report_in_a_grafana_set_up_by_the_script(tmp_path) -> None:
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        probes = grafana_isolation(fake)
    assert [(p.what, p.ok) for p in probes] == [
        ("list own data sources", True),
        ("look up organisation lab2-bob", True),
        ("act in the instructor's organisation", True),
    ], probes


def test_isolation_reports_a_learner_left_in_the_instructors_organisation(tmp_path) -> None:
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        fake.members[(1, fake.user_id("lab2-ada"))] = "Viewer"  # as a careless setup leaves it
        probes = grafana_isolation(fake)
    breach = [p for p in probes if not p.ok]
    assert [p.what for p in breach] == ["act in the instructor's organisation"]
    assert breach[0].detail == "HTTP 200"


def test_isolation_reports_another_learners_data_source_in_my_organisation(tmp_path) -> None:
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        org = fake.org_id("lab2-ada")
        fake.datasources[(org, "bob")] = {**fake.datasources[(1, "loki-lab2-bob")], "uid": "bob"}
        probes = grafana_isolation(fake)
    [breach] = [p for p in probes if not p.ok]
    assert breach.what == "list own data sources"
    assert breach.detail == "they sign in as ['lab2-ada', 'lab2-bob']"


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_the_setup_script_runs_in_the_bookstore_image_as_the_job_runs_it(
    docker_client: str, bookstore_images: dict[str, str], tmp_path: Path
) -> None:
    # The Job's container: the orders image's Python, read-only, no capabilities, uid 10001,
    # the script and the plan mounted read-only. Host networking reaches the fake on loopback.
    tmp_path.chmod(0o755)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(grafana.plan([ADA, BOB], PASSWORDS)))
    plan.chmod(0o644)
    image = grafana.grafana_objects([ADA], PASSWORDS, "c1")[-1]["spec"]["template"]["spec"]
    assert image["containers"][0]["image"] == bookstore_images["orders"]
    with FakeGrafana() as fake:
        result = subprocess.run(
            [docker_client, "run", "--rm", "--network", "host", "--read-only",
             "--cap-drop", "ALL", "--user", "10001:10001",
             "-v", f"{SCRIPT}:/setup/grafana_orgs.py:ro", "-v", f"{tmp_path}:/plan:ro",
             "-e", f"GRAFANA_URL={fake.url}", "-e", "GRAFANA_ADMIN_USER=admin",
             "-e", "GRAFANA_ADMIN_PASSWORD=admin-pw", "--entrypoint", "python",
             bookstore_images["orders"], "/setup/grafana_orgs.py", "/plan/plan.json"],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2/2 learners ready" in result.stdout
        assert fake.orgs_of("lab2-bob") == {"lab2-bob": "Editor"}


def test_an_account_renamed_into_a_learners_login_keeps_only_that_learners_organisation(
    tmp_path: Path,
) -> None:
    # Bob renamed his own account to the login of a learner added later ("lab2-eve"): the next
    # run finds that account, so it must leave it in eve's organisation alone (not also bob's,
    # where eve would read bob's lines) and give it eve's password (bob is signed out).
    with FakeGrafana() as fake:
        assert run_script(fake, tmp_path).returncode == 0
        fake.users[fake.user_id("lab2-bob")]["login"] = "lab2-eve"
        eve = Learner("eve")
        result = run_script(fake, tmp_path, [ADA, eve], {**PASSWORDS, "eve": "eve-secret-3"})
        assert result.returncode == 0, result.stdout
        assert fake.orgs_of("lab2-eve") == {"lab2-eve": "Editor"}
        assert fake.users[fake.user_id("lab2-eve")]["password"] == "eve-secret-3"


def test_a_setup_job_that_never_finishes_is_reported_with_where_to_look() -> None:
    api = FakeClassApi()
    cluster = ClassCluster(api.client())
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logging"}})
    objects = grafana.grafana_objects([ADA], PASSWORDS, "c1")
    waits: list[float] = []
    ok, detail = grafana.set_up(cluster, objects, wait=0, sleep=waits.append)
    assert not ok and waits == []
    assert detail.startswith("the setup Job did not finish within 0 s: `kubectl logs -n logging")
