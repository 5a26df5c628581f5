"""`helm template` of the pinned charts with our values, as `python -m validators.manifests` does.

The render tests need a helm binary and the three pinned charts on this machine: set LAB_HELM
(or put helm on PATH) and LAB_CHART_DIR to a folder holding `loki-18.11.0.tgz`,
`alloy-1.11.1.tgz` and `grafana-12.11.1.tgz` (versions from versions.toml). Without them those
tests skip and say so; the SKIP behaviour itself is tested everywhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labconfig.versions import REPO_ROOT, load_versions
from validators import manifests
from validators.manifests import check_helm_render, find_chart, load_tree

VERSIONS = load_versions(REPO_ROOT / "versions.toml")
CHARTS = VERSIONS["charts"]


def _charts_available() -> bool:
    if not manifests.find_helm():
        return False
    return all(find_chart(REPO_ROOT, c["chart"], c["version"]) for c in CHARTS.values())


needs_helm = pytest.mark.skipif(
    not _charts_available(),
    reason="needs helm (LAB_HELM or PATH) and the pinned charts in LAB_CHART_DIR",
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", tmp_path / "versions.toml")
    return tmp_path


def render(root: Path) -> list[manifests.Finding]:
    tree, _ = load_tree(root)
    return check_helm_render(tree)


def edit_values(root: Path, chart: str, change) -> None:
    path = root / CHARTS[chart]["values"]
    values = yaml.safe_load(path.read_text())
    change(values)
    path.write_text(yaml.safe_dump(values, sort_keys=False))


def failed(findings: list[manifests.Finding]) -> str:
    return "\n".join(f.message for f in findings if not f.ok)


# --- without helm or charts: a clear SKIP, never a failure ------------------------------------


def test_no_helm_is_a_clear_skip(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("LAB_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no helm on PATH
    findings = render(REPO_ROOT)
    assert len(findings) == 1
    f = findings[0]
    assert f.ok and f.skipped and f.message.startswith("SKIP: no `helm` on PATH")
    assert VERSIONS["tools"]["helm"]["version"] in f.message


def test_missing_charts_are_skipped_one_by_one(monkeypatch, tmp_path: Path, tree: Path):
    monkeypatch.setenv("LAB_HELM", str(tmp_path / "helm-never-run"))
    monkeypatch.setenv("LAB_CHART_DIR", str(tmp_path / "empty"))
    findings = render(tree)
    assert [f.skipped for f in findings] == [True, True, True]
    assert all(f.ok for f in findings)
    for f, (name, pins) in zip(findings, sorted(CHARTS.items()), strict=True):
        assert f.message.startswith(f"SKIP {name}: chart {pins['chart']}-{pins['version']}")
        assert f"helm pull {pins['repo_name']}/{pins['chart']} --version {pins['version']}" in (
            f.message
        )


def test_find_chart_accepts_an_unpacked_chart_of_the_pinned_version(monkeypatch, tmp_path):
    (tmp_path / "loki").mkdir()
    (tmp_path / "loki" / "Chart.yaml").write_text("name: loki\nversion: 18.11.0\n")
    monkeypatch.setenv("LAB_CHART_DIR", str(tmp_path))
    assert find_chart(tmp_path, "loki", "18.11.0") == tmp_path / "loki"
    assert find_chart(tmp_path, "loki", "6.55.0") is None


# --- with helm and the pinned charts ------------------------------------------------------------


@needs_helm
def test_pinned_charts_render_valid_objects_with_our_values():
    findings = render(REPO_ROOT)
    assert findings and not failed(findings), failed(findings)
    assert not any(f.skipped for f in findings)
    text = "\n".join(f.message for f in findings)
    for pins in CHARTS.values():
        assert f"{pins['chart']} {pins['version']} renders" in text
    assert "StatefulSet/loki" in text and "Service/loki-nodeport" in text
    assert "DaemonSet/alloy" in text and "Deployment/grafana" in text


@needs_helm
def test_chart_rejection_is_reported_with_helms_message(tree: Path):
    edit_values(tree, "loki", lambda v: v["read"].update(replicas=3))
    text = failed(render(tree))
    assert "helm template loki 18.11.0 failed" in text
    assert "more than zero replicas" in text


@needs_helm
def test_rendered_objects_are_schema_checked(tree: Path):
    # The chart's values.schema.json lets extraEnv entries through; the pod schema does not.
    edit_values(
        tree, "loki", lambda v: v["singleBinary"].update(extraEnv=[{"name": "X", "valeu": "1"}])
    )
    text = failed(render(tree))
    assert "StatefulSet/loki" in text and "valeu" in text


@needs_helm
def test_nodeport_service_selecting_nothing_fails(tree: Path):
    def typo(v):
        v["extraObjects"][0]["spec"]["selector"]["app.kubernetes.io/component"] = "singlebinary"

    edit_values(tree, "loki", typo)
    text = failed(render(tree))
    assert "Service/loki-nodeport selects" in text and "matches no pod" in text


@needs_helm
def test_alloy_without_varlog_fails(tree: Path):
    edit_values(tree, "alloy", lambda v: v["alloy"]["mounts"].update(varlog=False))
    text = failed(render(tree))
    assert "alloy.mounts.varlog: true" in text


@needs_helm
def test_loki_caches_left_on_fail(tree: Path):
    edit_values(tree, "loki", lambda v: v["chunksCache"].update(enabled=True))
    text = failed(render(tree))
    assert "a single binary should render only StatefulSet/loki" in text
    assert "chunks-cache" in text


@needs_helm
def test_grafana_without_the_nodeport_fails(tree: Path):
    edit_values(tree, "grafana", lambda v: v["service"].update(type="ClusterIP"))
    text = failed(render(tree))
    assert "Service grafana has nodePorts [None]; expected 30300" in text


# --- values keys: typos that helm would ignore silently -----------------------------------------


DEFAULTS = {
    "service": {"type": "ClusterIP", "port": 80},
    "alloy": {"mounts": {"varlog": False}},
    "loki": {"limits_config": {"reject_old_samples": True}},
    "grafana.ini": {"analytics": {"check_for_updates": True}},
}
SCHEMA = {
    "properties": {
        "loki": {"properties": {"limits_config": {"type": "object", "additionalProperties": True}}}
    }
}
TEMPLATES = 'nodePort: {{ .Values.service.nodePort }}\n{{ index .Values "extraThing" }}'


def test_known_keys_are_accepted_from_defaults_schema_templates_and_free_form():
    ours = {
        "service": {"type": "NodePort", "nodePort": 30300},  # nodePort: read by a template
        "loki": {"limits_config": {"retention_period": "24h"}},  # schema: open map
        "grafana.ini": {"auth.anonymous": {"enabled": True}},  # FREE_FORM_VALUES
        "extraThing": 1,  # read with index
    }
    unknown = manifests.unknown_value_keys(ours, DEFAULTS, SCHEMA, TEMPLATES, ("grafana.ini",))
    assert unknown == []


def test_typos_are_reported_with_their_path():
    ours = {"alloy": {"mount": {"varlog": True}}, "servce": {"type": "NodePort"}}
    unknown = manifests.unknown_value_keys(ours, DEFAULTS, SCHEMA, TEMPLATES)
    assert unknown == ["alloy.mount", "servce"]


def test_read_chart_reads_a_packaged_chart_without_its_subcharts(tmp_path: Path):
    import io
    import json
    import tarfile

    files = {
        "demo/Chart.yaml": "name: demo\nversion: 1.0.0\n",
        "demo/values.yaml": "a: {b: 1}\n",
        "demo/values.schema.json": json.dumps({"properties": {}}),
        "demo/templates/x.yaml": "{{ .Values.a.c }}",
        "demo/charts/sub/templates/y.yaml": "{{ .Values.hidden.key }}",
    }
    tgz = tmp_path / "demo-1.0.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    defaults, schema, templates = manifests.read_chart(tgz)
    assert defaults == {"a": {"b": 1}} and schema == {"properties": {}}
    assert ".Values.a.c" in templates and "hidden" not in templates


@needs_helm
def test_values_typo_is_reported_against_the_pinned_chart(tree: Path):
    def typo(v):
        v["alloy"]["mount"] = v["alloy"].pop("mounts")

    edit_values(tree, "alloy", typo)
    findings = render(tree)
    keys = [f.message for f in findings if f.check == "values-keys" and not f.ok]
    assert len(keys) == 1 and "`alloy.mount` is not a value of chart alloy 1.11.1" in keys[0]
    # The typo also loses /var/log, which the rendered DaemonSet shows.
    assert "alloy.mounts.varlog: true" in failed(findings)


@needs_helm
def test_every_key_of_our_values_is_known_to_the_pinned_charts():
    findings = [f for f in render(REPO_ROOT) if f.check == "values-keys"]
    assert len(findings) == 3 and all(f.ok for f in findings), findings


@needs_helm
def test_missing_values_file_is_named(tree: Path):
    (tree / CHARTS["grafana"]["values"]).unlink()
    text = failed(render(tree))
    assert "manifests/logging/grafana-values.yaml is missing, so chart grafana" in text
