"""Extra (informational, 0 points): Grafana has the lab's Loki as its default datasource.

The checker talks to Grafana through the API server's service proxy and sends no credentials:
the API server deletes `Authorization` after it authenticates the checker
(k8s.io/apiserver pkg/endpoints/filters/authentication.go), so a Basic login could never reach
Grafana that way. The lab's values turn on anonymous access; without it Grafana answers 401
and the checker says so. The datasource URL must name the lab's Loki Service (host and port),
not merely contain the word `loki`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from checks.evidence import CheckFailed, Passed
from checks.lab import GRAFANA_PORT, LOKI_PORT, Lab

VALUES = "manifests/logging/grafana-values.yaml"


def loki_hosts(service: str, namespace: str) -> set[str]:
    """Every DNS name of a Service a pod in the cluster can resolve."""
    return {
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    }


def check_grafana_datasource(lab: Lab) -> Passed:
    ns, release = lab.grafana_ns, lab.names["grafana"]
    client = lab.http(ns, release, GRAFANA_PORT)
    try:
        response = client.get("/api/datasources")
    except httpx.HTTPError as e:
        raise CheckFailed(
            f"Grafana did not answer through the service proxy: {type(e).__name__}: {e}",
            f"Service {ns}/{release} answering on port {GRAFANA_PORT}",
            f"kubectl -n {ns} get pods,svc -l app.kubernetes.io/name=grafana",
        ) from None
    if response.status_code in (401, 403):
        raise CheckFailed(
            f"GET /api/datasources answered {response.status_code} to an anonymous request",
            "anonymous read access (grafana.ini auth.anonymous.enabled: true in the lab's "
            "values): the checker cannot log in through the API server, which strips "
            "Authorization",
            f"set auth.anonymous in {VALUES}, or look in the UI yourself: Connections -> Data "
            "sources (`kubectl -n logging port-forward svc/grafana 3000:80`)",
        )
    if response.status_code != 200:
        raise CheckFailed(
            f"GET /api/datasources answered {response.status_code}: {response.text[:200]}",
            "200 with the datasource list",
            f"kubectl -n {ns} get pods; helm -n {ns} status {release}",
        )
    sources = response.json()
    lokis = [d for d in sources if d.get("type") == "loki"]
    if not lokis:
        kinds = ", ".join(f"{d.get('name')} ({d.get('type')})" for d in sources) or "none"
        raise CheckFailed(
            f"Grafana has no Loki datasource (datasources: {kinds})",
            "a datasource of type loki pointing at Loki's Service",
            f"add it under `datasources:` in {VALUES}, then "
            f"helm upgrade --install {release} ... -f {VALUES}",
        )
    default = next((d for d in lokis if d.get("isDefault")), None)
    if default is None:
        raise CheckFailed(
            f"Loki datasource {lokis[0].get('name')} exists but is not the default",
            "isDefault: true, so Explore opens on Loki",
            f"set isDefault: true on it in {VALUES}",
        )
    url = default.get("url", "")
    parts = urlsplit(url)
    hosts = loki_hosts(lab.names["loki"], ns)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = None
    if parts.hostname not in hosts or port != LOKI_PORT:
        raise CheckFailed(
            f"the default Loki datasource points at {url!r} (host {parts.hostname!r}, port {port})",
            f"Loki's Service: http://{lab.names['loki']}.{ns}.svc.cluster.local:{LOKI_PORT} "
            f"(host one of {', '.join(sorted(hosts))}; port {LOKI_PORT})",
            f"fix its url in {VALUES}, then helm upgrade --install {release} ... -f {VALUES}",
        )
    return Passed(f"default datasource {default.get('name')} (loki) at {url}")


@pytest.mark.checker("lab2.grafana-datasource")
def test_grafana_datasource(lab, record_outcome):
    record_outcome(check_grafana_datasource(lab))
