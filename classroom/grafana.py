"""The shared Grafana's per-learner view: what `class up` applies so that each learner has an
organisation of their own (the work itself is done in the cluster by `classroom/grafana_orgs.py`).

Three objects in Grafana's namespace, all labelled as the class's:
- a Secret with the plan (learners' logins and Loki passwords, the gateway's URL);
- a ConfigMap holding `grafana_orgs.py`;
- a Job that runs it with the bookstore image's Python, as the chart's admin (Secret `grafana`,
  keys `admin-user`/`admin-password`: charts/grafana 12.11.1 values `admin.userKey`,
  `admin.passwordKey`), restricted-compliant like everything in that namespace.
The Job's name ends with a hash of the plan, the script and the Job's own spec: the same roster,
passwords and image give the same Job (applying it again changes nothing), a changed one a new
Job (a Job's pod template cannot be changed in place).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from classroom.cluster import ClassCluster, ClassClusterError
from classroom.learners import CLASS_LABEL, MANAGED_BY
from classroom.roster import Learner
from labconfig.versions import REPO_ROOT, load_versions

SCRIPT = Path("classroom/grafana_orgs.py")
PLAN_SECRET = "grafana-class-learners"
SCRIPT_CONFIGMAP = "grafana-class-setup"
JOB_PREFIX = "grafana-class-orgs-"
ADMIN_SECRET = "grafana"  # the chart's fullname for release `grafana`
WAIT_SECONDS = 300


def _service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"


def gateway_url(root: Path = REPO_ROOT) -> str:
    """The Loki chart's gateway Service (`<release>-gateway`, port 80) in Loki's namespace."""
    loki = load_versions(root / "versions.toml")["charts"]["loki"]
    return _service_url(f"{loki['release']}-gateway", loki["namespace"])


def _image(root: Path) -> str:
    """The bookstore image the class already runs (its Python runs the script)."""
    for doc in yaml.safe_load_all((root / "manifests/bookstore/orders.yaml").read_text()):
        if doc and doc.get("kind") == "Deployment":
            return doc["spec"]["template"]["spec"]["containers"][0]["image"]
    raise ValueError("manifests/bookstore/orders.yaml has no Deployment to take the image from")


def plan(learners: list[Learner], passwords: dict[str, str], root: Path = REPO_ROOT) -> dict:
    return {
        "gateway_url": gateway_url(root),
        "learners": [{"login": lrn.tenant, "password": passwords[lrn.id]} for lrn in learners],
    }


def grafana_objects(
    learners: list[Learner], passwords: dict[str, str], class_name: str, root: Path = REPO_ROOT
) -> list[dict[str, Any]]:
    """Secret (plan), ConfigMap (script) and Job, in Grafana's namespace."""
    chart = load_versions(root / "versions.toml")["charts"]["grafana"]
    namespace = chart["namespace"]
    labels = {MANAGED_BY[0]: MANAGED_BY[1], CLASS_LABEL: class_name}
    plan_json = json.dumps(plan(learners, passwords, root), sort_keys=True)
    script = (root / SCRIPT).read_text(encoding="utf-8")

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}

    def admin(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": ADMIN_SECRET, "key": key}}

    container = {
        "name": "setup",
        "image": _image(root),
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "/setup/grafana_orgs.py", "/plan/plan.json"],
        "env": [
            {"name": "GRAFANA_URL", "value": _service_url(chart["release"], namespace)},
            {"name": "GRAFANA_ADMIN_USER", "valueFrom": admin("admin-user")},
            {"name": "GRAFANA_ADMIN_PASSWORD", "valueFrom": admin("admin-password")},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "volumeMounts": [
            {"name": "setup", "mountPath": "/setup", "readOnly": True},
            {"name": "plan", "mountPath": "/plan", "readOnly": True},
        ],
    }
    spec = {
        "backoffLimit": 3,
        "activeDeadlineSeconds": WAIT_SECONDS,
        "ttlSecondsAfterFinished": 7 * 24 * 3600,
        "template": {
            "metadata": {"labels": dict(labels)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [container],
                "volumes": [
                    {"name": "setup", "configMap": {"name": SCRIPT_CONFIGMAP}},
                    {"name": "plan", "secret": {"secretName": PLAN_SECRET}},
                ],
            },
        },
    }
    # The spec is in the hash too: a new image under the same name would be refused (immutable).
    digest = hashlib.sha256((plan_json + script + json.dumps(spec, sort_keys=True)).encode())
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": meta(JOB_PREFIX + digest.hexdigest()[:10]), "spec": spec}  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": meta(PLAN_SECRET),
         "type": "Opaque", "stringData": {"plan.json": plan_json}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(SCRIPT_CONFIGMAP),
         "data": {"grafana_orgs.py": script}},
        job,
    ]  # fmt: skip


def setup_objects_to_remove(root: Path = REPO_ROOT) -> list[dict[str, Any]]:
    """The Secret (it holds passwords) and the ConfigMap, as `down` finds them by name; it
    deletes them only when they carry the class's labels. Finished Jobs expire on their own
    (`ttlSecondsAfterFinished`)."""
    namespace = load_versions(root / "versions.toml")["charts"]["grafana"]["namespace"]
    return [
        {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}}
        for kind, name in (("Secret", PLAN_SECRET), ("ConfigMap", SCRIPT_CONFIGMAP))
    ]


def job_state(job: dict[str, Any]) -> str | None:
    """ "succeeded", "failed" or None (still running), from the Job's status conditions
    (batch/v1: a finished Job has condition Complete or Failed with status "True")."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "succeeded" if condition["type"] == "Complete" else "failed"
    return None


def _forget_failed_run(cluster: ClassCluster, job: dict[str, Any]) -> None:
    """A failed Job of the same name is deleted, so that `up` runs it again: applied unchanged,
    it would stay failed and every later `up` would fail at once."""
    found = cluster.find(job)
    if found is not None and job_state(found) == "failed":
        cluster.delete(job)


def set_up(
    cluster: ClassCluster,
    objects: list[dict[str, Any]],
    wait: float = WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """Apply the three objects and wait for the Job: (ok, what to tell the instructor)."""
    _forget_failed_run(cluster, objects[-1])
    for obj in objects:
        cluster.apply(obj)
    job = objects[-1]["metadata"]
    logs = f"kubectl logs -n {job['namespace']} job/{job['name']}"
    deadline = time.monotonic() + wait
    while True:
        try:
            state = job_state(cluster.get(objects[-1]))
        except ClassClusterError as e:
            return False, f"{e}; see `{logs}`"
        if state == "succeeded":
            return True, f"one organisation per learner (`{logs}` lists them)"
        if state == "failed":
            return False, f"the setup Job failed: `{logs}` says why"
        if time.monotonic() >= deadline:
            return False, f"the setup Job did not finish within {wait:.0f} s: `{logs}`"
        sleep(3)
