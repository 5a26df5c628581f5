"""The JSON-on-stdout checker on real container output: the bookstore images, run restricted.

The fixtures come from tests/conftest.py (`docker_client`, `bookstore_images`: skipped with the
reason without a Docker engine, a failure under CI=true) and the container helpers from
tests/test_containers.py. A Kube-shaped adapter answers `list_pods` with the containers and
`pod_logs` with `docker logs`, and the service proxy with the containers' loopback ports, so the
real `check_json_stdout` reads exactly what the runtime captured.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from checks.evidence import CheckFailed
from checks.lab import Lab
from checks.test_lab2_json_stdout import check_json_stdout
from tests.fakes import LAB_NAMES
from tests.test_containers import RESTRICTED, Container, checked, run_docker, start, wait_ready

pytestmark = pytest.mark.docker

NAMES = LAB_NAMES


class DockerKube:
    """The few Kube calls check_json_stdout makes, answered by a Docker engine."""

    host = "docker (local engine)"

    def __init__(self, client: str, containers: dict[str, Container]):
        self.client, self.containers = client, containers

    def list_pods(self, namespace, label_selector=None):
        return [
            {
                "metadata": {"name": c.name, "namespace": namespace, "labels": {"app": service}},
                "spec": {"nodeName": "docker", "containers": [{"name": service}]},
                "status": {"phase": "Running"},
            }
            for service, c in self.containers.items()
        ]

    def pod_logs(self, namespace, name, container, *, tail_lines=None):
        args = ["logs", *(["--tail", str(tail_lines)] if tail_lines else []), name]
        result = run_docker(self.client, *args)
        # `kubectl logs` shows both streams; so does this (stderr lines are checked too).
        return result.stdout + result.stderr

    def container_log_file(self, pod, container):
        """The CRI file a kubelet would serve: `docker logs` keeps the two streams apart
        (the container's stdout on ours, its stderr on ours), each line stamped."""
        result = run_docker(self.client, "logs", "--timestamps", pod["metadata"]["name"])
        out = []
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            for line in text.splitlines():
                stamp, _, content = line.partition(" ")
                out.append(f"{stamp} {stream} F {content}\n")
        return "".join(out)

    def service_client(self, namespace, service, port):
        return httpx.Client(base_url=self.containers[service].url, timeout=10)


@pytest.fixture(scope="module")
def network(docker_client: str) -> Iterator[tuple[str, str, list[str]]]:
    name = f"lab2-checks-{uuid.uuid4().hex[:8]}"
    checked(docker_client, "network", "create", name)
    started: list[str] = []
    yield docker_client, name, started
    for container in started:
        run_docker(docker_client, "rm", "--force", container)
    run_docker(docker_client, "network", "rm", name)


@pytest.fixture(scope="module")
def services(network, bookstore_images) -> dict[str, Container]:
    client, net, started = network
    catalog = start(client, bookstore_images["catalog"], "catalog", net)
    started.append(catalog.name)
    orders = start(
        client, bookstore_images["orders"], "orders", net, "CATALOG_URL=http://catalog:8080"
    )
    started.append(orders.name)
    for container in (catalog, orders):
        wait_ready(client, container)
    return {"catalog": catalog, "orders": orders}


def test_real_bookstore_output_passes_the_checker(network, services):
    client = network[0]
    result = check_json_stdout(Lab(DockerKube(client, services), names=NAMES))
    assert "from 2 pods, all on stdout, all validate" in result.summary


def test_a_plain_text_line_from_a_real_container_is_named_with_its_container(
    network, services, bookstore_images
):
    """The same image, started through a shell that prints one line of its own first."""
    client, net, started = network
    name = f"{net}-catalog-plain"
    script = "echo 'Starting catalog on :8080'; exec python -m bookstore catalog"
    checked(
        client, "run", "--detach", "--name", name, "--network", net, *RESTRICTED,
        "--publish", "127.0.0.1::8080", "--entrypoint", "sh", bookstore_images["catalog"],
        "-c", script,
    )  # fmt: skip
    started.append(name)
    port = checked(client, "port", name, "8080/tcp").splitlines()[0].strip()
    plain = Container(service="catalog", name=name, url=f"http://{port}")
    wait_ready(client, plain)
    lab = Lab(DockerKube(client, {"catalog": plain, "orders": services["orders"]}), names=NAMES)
    with pytest.raises(CheckFailed) as caught:
        check_json_stdout(lab)
    assert f"pod {name} container catalog" in caught.value.observed
    assert "Starting catalog on :8080" in caught.value.observed
    assert "not JSON" in caught.value.observed
