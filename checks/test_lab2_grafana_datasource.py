"""Extra (0 points): Grafana has Loki as its default datasource."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from checks.evidence import CheckFailed, Passed
from checks.lab import GRAFANA_PORT, Lab


def grafana_login(lab: Lab, values_file: Path | None = None) -> tuple[str, str | None]:
    """(user, password) from our Grafana values, else the chart's generated Secret."""
    import yaml

    from labconfig.versions import REPO_ROOT, load_versions

    path = values_file or REPO_ROOT / load_versions()["charts"]["grafana"]["values"]
    values = {}
    if path.is_file():
        values = yaml.safe_load(path.read_text()) or {}
    user = values.get("adminUser") or "admin"
    password = values.get("adminPassword")
    if not password:
        # Unset in the values: the chart generates one into Secret <release> (admin-password).
        password = lab.kube.get_secret_value(lab.grafana_ns, lab.names["grafana"], "admin-password")
    return user, password


def check_grafana_datasource(lab: Lab, values_file: Path | None = None) -> Passed:
    ns, release = lab.grafana_ns, lab.names["grafana"]
    user, password = grafana_login(lab, values_file)
    client = lab.http(ns, release, GRAFANA_PORT)
    try:
        response = client.get("/api/datasources", auth=(user, password or ""))
    except httpx.HTTPError as e:
        raise CheckFailed(
            f"Grafana did not answer through the service proxy: {type(e).__name__}: {e}",
            f"Service {ns}/{release} answering on port {GRAFANA_PORT}",
            f"kubectl -n {ns} get pods,svc -l app.kubernetes.io/name=grafana",
        ) from None
    if response.status_code != 200:
        raise CheckFailed(
            f"GET /api/datasources answered {response.status_code}: {response.text[:200]}",
            f"200 with the datasource list (logged in as {user})",
            f"kubectl -n {ns} get pods; helm -n {ns} status {release}",
        )
    sources = response.json()
    lokis = [d for d in sources if d.get("type") == "loki"]
    if not lokis:
        kinds = ", ".join(f"{d.get('name')} ({d.get('type')})" for d in sources) or "none"
        raise CheckFailed(
            f"Grafana has no Loki datasource (datasources: {kinds})",
            "a datasource of type loki pointing at Loki's Service",
            "add it under `datasources:` in manifests/logging/grafana-values.yaml, then "
            f"helm upgrade --install {release} ... -f manifests/logging/grafana-values.yaml",
        )
    default = next((d for d in lokis if d.get("isDefault")), None)
    if default is None:
        raise CheckFailed(
            f"Loki datasource {lokis[0].get('name')} exists but is not the default",
            "isDefault: true, so Explore opens on Loki",
            "set isDefault: true on it in manifests/logging/grafana-values.yaml",
        )
    url = default.get("url", "")
    if lab.names["loki"] not in url:
        raise CheckFailed(
            f"the default Loki datasource points at {url!r}",
            f"Loki's Service, e.g. http://{lab.names['loki']}.{ns}.svc.cluster.local:3100",
            "fix its url in manifests/logging/grafana-values.yaml",
        )
    return Passed(f"default datasource {default.get('name')} (loki) at {url}")


@pytest.mark.checker("lab2.grafana-datasource")
def test_grafana_datasource(lab, record_outcome):
    record_outcome(check_grafana_datasource(lab))
