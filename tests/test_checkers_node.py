"""lab2.node-rotation against the fake kubelet: rotation with our kind config passes."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed
from checks.kube import KubeError
from checks.test_lab2_node import check_node_rotation, parse_quantity
from tests.fakes_ruler import Extras, fake_lab, kubelet_from_kind


def failure(lab) -> CheckFailed:
    with pytest.raises(CheckFailed) as caught:
        check_node_rotation(lab)
    return caught.value


def test_our_kind_config_makes_the_kubelet_rotate_and_loki_keeps_the_line():
    assert kubelet_from_kind() == {"containerLogMaxSize": "64Ki", "containerLogMaxFiles": 3}
    lab, cluster = fake_lab()
    result = check_node_rotation(lab)
    assert "the kubelet rotated 0.log (containerLogMaxSize 65536 bytes, 3 files kept)" in (
        result.summary
    )
    # The marker is in a rotated file on the node, not in what `kubectl logs` reads.
    marker_pod = result.summary.split()[1]
    rotated = cluster.rotated[(marker_pod, "catalog")]
    assert any("lab2-check-" in line for old in rotated for line in old)
    assert len(rotated) <= 2  # containerLogMaxFiles 3: the current file and two rotated ones


def test_default_kubelet_size_fails_with_recreate_the_cluster():
    lab, _ = fake_lab(
        extras=Extras(kubelet={"containerLogMaxSize": "10Mi", "containerLogMaxFiles": 5})
    )
    err = failure(lab)
    assert "rotates container logs at 10Mi" in err.observed
    assert "manifests/kind/cluster.yaml" in err.next_step and "kind delete cluster" in err.next_step


def test_no_rotation_within_the_deadline_points_at_the_node_files():
    lab, _ = fake_lab(extras=Extras(rotates=False))
    err = failure(lab)
    assert "the marker is still in `kubectl logs" in err.observed
    assert err.next_step.startswith("docker exec lab2-logging-")
    assert "/var/log/pods/bookstore_catalog-" in err.next_step


def test_loki_losing_the_line_at_rotation_fails():
    lab, cluster = fake_lab()
    rotate = cluster._rotate_due

    def rotate_and_forget():
        before = {k: len(v) for k, v in cluster.rotated.items()}
        rotate()
        for (pod, _), old in cluster.rotated.items():
            if len(old) != before.get((pod, _), 0):
                cluster.loki.forget_pods.add(pod)  # the agent lost the rotated file's lines

    cluster._rotate_due = rotate_and_forget
    err = failure(lab)
    assert "Loki no longer returns it" in err.observed


def test_unreadable_kubelet_config_names_the_raw_command():
    lab, cluster = fake_lab()

    def forbidden(node):
        raise KubeError(f"GET node {node} proxy/configz: HTTP 403: nodes/proxy is forbidden")

    cluster.kubelet_config = forbidden
    err = failure(lab)
    assert "HTTP 403" in err.observed
    assert err.next_step.startswith("kubectl get --raw /api/v1/nodes/lab2-logging-")


@pytest.mark.parametrize(
    ("text", "size"), [("64Ki", 65536), ("10Mi", 10485760), ("1000", 1000), ("1M", 1000000)]
)
def test_quantities(text, size):
    assert parse_quantity(text) == size


def test_bad_quantity_is_refused():
    with pytest.raises(ValueError, match="not a size"):
        parse_quantity("64 KB")


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_node_clock_minutes_off_still_passes(skew):
    # The marker carries the node's CRI timestamp; asking Loki up to "now" on this machine
    # would miss it when the node runs ahead.
    lab, _ = fake_lab(node_clock_skew_s=skew)
    assert "Loki still returns it" in check_node_rotation(lab).summary


def test_loki_losing_the_line_fails_with_the_node_clock_ahead_too():
    lab, cluster = fake_lab(node_clock_skew_s=300)
    rotate = cluster._rotate_due

    def rotate_and_forget():
        rotate()
        cluster.loki.forget_pods.update(pod for pod, _ in cluster.rotated)

    cluster._rotate_due = rotate_and_forget
    assert "Loki no longer returns it" in failure(lab).observed
