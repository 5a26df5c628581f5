"""The shared logging stack of a class: the helm commands `up` runs, built from versions.toml.

Each chart is installed with the laptop lab's values first and the class overlay second, so the
class differs from the lab only where the overlay says (auth on, the gateway, the tenant stage,
Grafana behind a login).
"""

from __future__ import annotations

from pathlib import Path

from labconfig.versions import REPO_ROOT, load_versions

OVERLAYS = {
    "loki": ("manifests/class/loki-values.yaml", "{out}/loki-tenants.yaml"),
    "alloy": ("{out}/alloy-class-values.yaml",),
    "grafana": ("manifests/class/grafana-values.yaml",),
}


def helm_commands(kubeconfig: Path, out: Path, root: Path = REPO_ROOT) -> list[list[str]]:
    """`helm repo add` per repository, then one `helm upgrade --install` per chart."""
    charts = load_versions(root / "versions.toml")["charts"]
    commands = []
    for repo in sorted({(c["repo_name"], c["repo_url"]) for c in charts.values()}):
        commands.append(["helm", "repo", "add", "--force-update", *repo])
    for name, chart in charts.items():
        values = [chart["values"], *(v.format(out=out) for v in OVERLAYS.get(name, ()))]
        command = [
            "helm", "upgrade", "--install", chart["release"],
            f"{chart['repo_name']}/{chart['chart']}", "--version", chart["version"],
            "--namespace", chart["namespace"], "--create-namespace",
            "--kubeconfig", str(kubeconfig), "--wait", "--timeout", "10m",
        ]  # fmt: skip
        for path in values:
            command += ["--values", path]
        commands.append(command)
    return commands
