"""The shared stack as a class cluster would get it: each pinned chart rendered with the lab's
values and the class overlays, exactly as `class up` layers them (classroom.stack.OVERLAYS).

Needs `helm` (PATH or LAB_HELM) and the pinned charts (LAB_CHART_DIR or .lab/charts, as for
`python -m validators.manifests`); without them each case is skipped with the reason. What is
checked is what a class depends on: Loki with auth on behind a gateway that sets the tenant from
the signed-in user and a NetworkPolicy; Alloy setting the tenant from the namespace; Grafana
behind a sign-in, with no open NodePort. Pods must pass their namespace's Pod Security level.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from classroom.__main__ import render
from classroom.roster import Learner
from classroom.stack import OVERLAYS
from labconfig.versions import REPO_ROOT, load_versions
from validators import pss
from validators.manifests import find_chart, find_helm, helm_template, schema_problem

VERSIONS = load_versions(REPO_ROOT / "versions.toml")
K8S = VERSIONS["kubernetes"]["version"]
# The level each namespace enforces (manifests/logging/namespace.yaml): the agent's is privileged.
LEVELS = {"logging": "restricted", "logging-agent": None}


def rendered(chart: str, tmp_path: Path) -> list[dict]:
    helm = find_helm()
    if not helm:
        pytest.skip("no helm on PATH (or LAB_HELM): the class charts were not rendered")
    pins = VERSIONS["charts"][chart]
    ref = find_chart(REPO_ROOT, pins["chart"], pins["version"])
    if ref is None:
        pytest.skip(f"chart {pins['chart']}-{pins['version']} not in LAB_CHART_DIR or .lab/charts")
    out = tmp_path / "class"
    render([Learner("ada"), Learner("bob")], "c1", out)
    layers = [REPO_ROOT / pins["values"]]
    layers += [REPO_ROOT / v.format(out=out) for v in OVERLAYS.get(chart, ())]
    objects = helm_template(helm, ref, pins, layers, K8S)
    problems = [(o.get("kind"), schema_problem(o, K8S)) for o in objects]
    assert [p for p in problems if p[1]] == []
    level = LEVELS[pins["namespace"]]
    if level:
        assert pss.count_pod_specs(objects) > 0
        assert pss.evaluate(objects, level=level) == []
    return objects


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def test_loki_has_auth_on_behind_a_gateway_that_sets_the_tenant(tmp_path: Path) -> None:
    objects = rendered("loki", tmp_path)
    text = yaml.safe_dump_all(objects)
    assert "auth_enabled: true" in text
    assert "proxy_set_header X-Scope-OrgID $remote_user" in text
    assert "auth_basic_user_file" in text
    [policy] = of_kind(objects, "NetworkPolicy")
    sources = policy["spec"]["ingress"][0]["from"]
    assert sources == [{"namespaceSelector": {"matchLabels": {"lab.k8s-logging/logging": "true"}}}]
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    assert "loki-gateway" in services, "grafana_orgs and the docs use this Service name"
    assert all(s["spec"].get("type", "ClusterIP") != "NodePort" for s in services.values())


def test_alloy_sets_each_lines_tenant_from_its_namespace(tmp_path: Path) -> None:
    objects = rendered("alloy", tmp_path)
    config = "\n".join(
        value for cm in of_kind(objects, "ConfigMap") for value in (cm.get("data") or {}).values()
    )
    assert 'selector = "{namespace=~\\"lab2-.+\\"}"' in config
    assert 'label = "namespace"' in config and 'tenant_id = "platform"' in config


def test_grafana_signs_everyone_in_and_has_no_open_nodeport(tmp_path: Path) -> None:
    objects = rendered("grafana", tmp_path)
    [service] = [s for s in of_kind(objects, "Service") if s["metadata"]["name"] == "grafana"]
    assert service["spec"]["type"] == "ClusterIP"
    assert all("nodePort" not in port for port in service["spec"]["ports"])
    config = "\n".join(
        value for cm in of_kind(objects, "ConfigMap") for value in (cm.get("data") or {}).values()
    )
    assert "[auth.anonymous]\nenabled = false" in config
    assert "httpHeaderName1: X-Scope-OrgID" in config
    secrets = [s for s in of_kind(objects, "Secret") if s["metadata"]["name"] == "grafana"]
    assert secrets, "the setup Job reads the admin credentials from Secret grafana"
    # The organisations the setup Job makes survive a restart: a volume, not an emptyDir.
    [claim] = of_kind(objects, "PersistentVolumeClaim")
    [deployment] = of_kind(objects, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    storage = next(v for v in volumes if v["name"] == "storage")
    assert storage == {
        "name": "storage",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
