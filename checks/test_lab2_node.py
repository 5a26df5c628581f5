"""The node: the kubelet rotates a pod's CRI log file, `kubectl logs` forgets, Loki does not.

The kind config (manifests/kind/cluster.yaml) makes the kubelet rotate container logs at a small
size. The checker writes a marker line, waits until Loki has it, then sends requests until that
line has left the file `kubectl logs` reads (the kubelet renamed it to 0.log.<timestamp>), and
asks Loki again: the agent read the line from the node before rotation, so it is still there.
"""

from __future__ import annotations

import re

import pytest

from checks.evidence import CheckFailed, Passed, new_marker
from checks.kube import KubeError
from checks.lab import Lab
from checks.loki import LokiError
from checks.polling import DeadlineExceeded, poll

SERVICE = "catalog"
KIND_CONFIG = "manifests/kind/cluster.yaml"
# Above this the checker would need too many requests to see a rotation (the default is 10Mi).
MAX_LOG_SIZE = 1024 * 1024
QUANTITY = re.compile(r"(\d+)(Ki|Mi|Gi|k|M|G)?")
FACTORS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2, "G": 1000**3}


def parse_quantity(text: object) -> int:
    """Bytes of a Kubernetes quantity such as `64Ki` or `10Mi`; ValueError otherwise."""
    m = QUANTITY.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(m.group(1)) * FACTORS[m.group(2)]


def _recreate(lab: Lab) -> str:
    return (
        f"the kubelet reads containerLogMaxSize when the node starts: recreate the cluster with "
        f"{KIND_CONFIG} (`kind delete cluster --name <cluster>`, then the lab's step 0)"
    )


def rotation_settings(lab: Lab, node: str) -> tuple[int, int]:
    """(containerLogMaxSize in bytes, containerLogMaxFiles) of the node's kubelet."""
    try:
        config = lab.kube.kubelet_config(node)
    except KubeError as e:
        raise CheckFailed(
            f"could not read the kubelet configuration of node {node}: {e}",
            "the kubelet's configz through the API server",
            f"kubectl get --raw /api/v1/nodes/{node}/proxy/configz",
        ) from None
    raw = config.get("containerLogMaxSize", "10Mi")  # the kubelet's defaults when unset
    try:
        size = parse_quantity(raw)
    except ValueError:
        raise CheckFailed(
            f"node {node}: containerLogMaxSize is {raw!r}",
            "a size such as 64Ki",
            f"fix the KubeletConfiguration patch in {KIND_CONFIG}; " + _recreate(lab),
        ) from None
    if size > MAX_LOG_SIZE:
        raise CheckFailed(
            f"the kubelet on node {node} rotates container logs at {raw}",
            f"a small containerLogMaxSize (at most 1Mi; the lab's {KIND_CONFIG} sets 64Ki), so "
            "a rotation happens within a few hundred requests",
            _recreate(lab),
        )
    return size, int(config.get("containerLogMaxFiles", 5))


def check_node_rotation(lab: Lab, timeout: float = 240, batch: int = 40) -> Passed:
    lab.confirm_pipeline_ready()
    marker = new_marker()
    start_ns = lab.evidence_start_ns()
    lab.send(SERVICE, "GET", "/books", request_id=marker)
    query = f'{{namespace="{lab.app_ns}", app="{SERVICE}"}} |= "{marker}"'
    found = lab.wait_in_loki(
        query, bool, start_ns=start_ns, timeout=90, what="the marker request never reached Loki"
    )
    pod = found.entries[0].labels.get("pod", "")
    spec = (lab.kube.get_pod(lab.app_ns, pod) or {}).get("spec", {})
    node = spec.get("nodeName")
    if not node:
        raise CheckFailed(
            f"the marker came from pod {pod!r}, which the API server no longer knows",
            "the pod that wrote the marker still running while the checker fills its log file",
            f"kubectl -n {lab.app_ns} get pods -o wide; then run the checker again",
        )
    size, files = rotation_settings(lab, node)
    sent = [0]

    def fill() -> str:
        # Unknown paths answer 404 and always log a WARN line (sampling keeps every non-2xx).
        for _ in range(batch):
            lab.send(SERVICE, "GET", "/lab2-rotate", request_id=new_marker())
            sent[0] += 1
        try:
            return lab.kube.pod_logs(lab.app_ns, pod, SERVICE)
        except KubeError as e:
            raise CheckFailed(
                f"`kubectl logs {pod}` failed while the checker filled its log: {e}",
                "the pod's current log file readable through the API server",
                f"kubectl -n {lab.app_ns} get pod {pod}",
            ) from None

    try:
        waited = poll(
            fill, lambda text: marker not in text, what="the kubelet to rotate the marker away",
            timeout=lab.timeout(timeout), clock=lab.clock, interval=1,
        )  # fmt: skip
    except DeadlineExceeded as e:
        raise CheckFailed(
            f"after {sent[0]} requests in {e.timeout:.0f} s the marker is still in `kubectl logs "
            f"{pod}`: the kubelet on {node} did not rotate its 0.log (containerLogMaxSize "
            f"{size} bytes)",
            "the kubelet renaming 0.log once it passes containerLogMaxSize (it checks every 10 s)",
            f"docker exec {node} sh -c 'ls -l /var/log/pods/{lab.app_ns}_{pod}_*/{SERVICE}/'",
        ) from None
    again = f'{{namespace="{lab.app_ns}", pod="{pod}"}} |= "{marker}"'
    try:
        kept = lab.loki.entries(again, start_ns=start_ns, end_ns=lab.evidence_end_ns())
    except LokiError as e:
        raise CheckFailed(
            str(e), "Loki answers query_range", f"kubectl -n {lab.logging_ns} get pods"
        ) from None
    if not kept:
        raise CheckFailed(
            f"the marker left `kubectl logs {pod}` and Loki no longer returns it ({again})",
            "Loki keeps what the agent shipped before the kubelet rotated the file",
            "check retention in manifests/logging/loki-values.yaml "
            f"and `kubectl -n {lab.agent_ns} logs ds/{lab.names['alloy']} --tail=30`",
        )
    return Passed(
        f"pod {pod} on {node}: the kubelet rotated 0.log (containerLogMaxSize {size} bytes, "
        f"{files} files kept) after {sent[0]} requests; `kubectl logs` lost the marker, Loki "
        "still returns it",
        {"seconds_to_rotation": round(waited.seconds, 1)},
    )


@pytest.mark.checker("lab2.node-rotation")
def test_node_rotation(lab, record_outcome):
    record_outcome(check_node_rotation(lab))
