"""The ruler fake is built on the shared fakes and agrees with them and with versions.toml."""

from __future__ import annotations

from labconfig.versions import load_versions
from tests.fakes_ruler import fake_lab


def test_the_lab_looks_where_versions_toml_and_the_fake_cluster_put_things():
    lab, cluster = fake_lab()
    charts = load_versions()["charts"]
    assert lab.logging_ns == charts["loki"]["namespace"]
    assert lab.grafana_ns == charts["grafana"]["namespace"]
    # The agent checks find the DaemonSet the fake cluster runs for a correct lab.
    assert [d["metadata"]["namespace"] for d in cluster.daemonsets] == [lab.agent_ns]


def test_rotated_files_are_the_runtimes_cri_lines_and_kubectl_logs_forgets_them():
    lab, cluster = fake_lab()
    pod = next(p for p in cluster.pods.values() if p["metadata"]["labels"].get("app") == "catalog")
    name = pod["metadata"]["name"]
    first = cluster.pod_logs("bookstore", name, "catalog").splitlines()[0]
    for i in range(800):  # over 64Ki of request lines per pod, as the node checker sends them
        lab.send("catalog", "GET", "/lab2-rotate", request_id=f"fill-{i}")
    cluster.clock.sleep(10)  # the kubelet's next monitor tick
    assert first not in cluster.pod_logs("bookstore", name, "catalog")
    rotated = cluster.rotated[(name, "catalog")]
    assert any(first in line for line in rotated[0])
    assert rotated and all(" stdout F {" in line for old in rotated for line in old)
    # Each rotated file reached containerLogMaxSize (64Ki, manifests/kind/cluster.yaml).
    assert all(sum(len(line) + 1 for line in old) >= 64 * 1024 for old in rotated)
    assert len(rotated) <= 2
