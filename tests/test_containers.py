"""The service images as the cluster runs them: read-only root, UID 10001, no capabilities.

One module-scoped scenario builds both images (conftest), runs catalog and orders on a
user-defined network with the restrictions of Pod Security `restricted`, drives a few requests
(a list, an order, injected faults), stops both with `docker stop`, and keeps what `docker logs`
returned; each test asserts one promise on that record. A few tests inspect the images instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bookstore import logschema
from labconfig.versions import REPO_ROOT, load_versions

# The flags a restricted pod gets, spelled the docker way.
RESTRICTED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--user",
    "10001:10001",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]
READY_DEADLINE_S = 60
LOADGEN_REQUESTS = 40
# Sent inside a rejected order: none of it may reach a log line.
SECRETS = ("4111 1111 1111 1111", "4111111111111111", "correct horse battery staple")
STOP_GRACE_S = 30
DOCKERFILE = REPO_ROOT / "bookstore" / "Dockerfile"


def run_docker(client: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [client, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def checked(client: str, *args: str, timeout: float = 120) -> str:
    result = run_docker(client, *args, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"`docker {' '.join(args)}` failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}",
            pytrace=False,
        )
    return result.stdout


def inspect(client: str, name: str) -> dict[str, Any]:
    return json.loads(checked(client, "inspect", name))[0]


@dataclass
class Container:
    service: str
    name: str
    url: str = ""
    exit_code: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: str = ""

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout]


@dataclass
class Scenario:
    catalog: Container
    orders: Container
    responses: dict[str, httpx.Response]
    trace_id: str
    loadgen: subprocess.CompletedProcess


def start(client: str, image: str, service: str, network: str, *env: str) -> Container:
    name = f"{network}-{service}"
    env_args = [arg for kv in env for arg in ("--env", kv)]
    checked(
        client,
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        network,
        "--network-alias",
        service,
        *RESTRICTED,
        # Loopback only, on a free host port: nothing is exposed beyond this machine.
        "--publish",
        "127.0.0.1::8080",
        *env_args,
        image,
    )
    host_port = checked(client, "port", name, "8080/tcp").splitlines()[0].strip()
    return Container(service=service, name=name, url=f"http://{host_port}")


def wait_ready(client: str, container: Container) -> None:
    """Poll /readyz until 200; fail early, with its logs, if the container exits."""
    deadline = time.monotonic() + READY_DEADLINE_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        state = inspect(client, container.name)["State"]
        if not state["Running"]:
            logs = run_docker(client, "logs", container.name)
            pytest.fail(
                f"{container.service} exited (code {state['ExitCode']}) before it was ready.\n"
                f"stdout:\n{logs.stdout}\nstderr:\n{logs.stderr}",
                pytrace=False,
            )
        try:
            response = httpx.get(f"{container.url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    pytest.fail(
        f"{container.service} was not ready within {READY_DEADLINE_S}s (last: {last})",
        pytrace=False,
    )


def stop_and_collect(client: str, container: Container) -> None:
    checked(client, "stop", "--time", str(STOP_GRACE_S), container.name, timeout=STOP_GRACE_S + 30)
    container.exit_code = inspect(client, container.name)["State"]["ExitCode"]
    logs = run_docker(client, "logs", container.name)
    container.stdout = logs.stdout.splitlines()
    container.stderr = logs.stderr


def drive_traffic(catalog: Container, orders: Container) -> tuple[dict[str, httpx.Response], str]:
    responses: dict[str, httpx.Response] = {}
    with httpx.Client(timeout=10) as http:
        responses["list"] = http.get(f"{catalog.url}/books")
        responses["order"] = http.post(
            f"{orders.url}/orders",
            json={"book_id": 1, "qty": 1},
            headers={"X-Request-ID": "container-test-order"},
        )
        order_id = responses["order"].json().get("order_id", "missing")
        responses["get_order"] = http.get(f"{orders.url}/orders/{order_id}")
        fault = {"X-Inject-Fault": "database"}
        responses["catalog_fault"] = http.get(f"{catalog.url}/books", headers=fault)
        responses["order_fault"] = http.post(
            f"{orders.url}/orders", json={"book_id": 2, "qty": 1}, headers=fault
        )
        responses["secret_body"] = http.post(
            f"{orders.url}/orders",
            json={
                "book_id": 1,
                "qty": "two",
                "payment": {"card_number": SECRETS[0]},
                "customer": {"password": SECRETS[2]},
            },
        )
    return responses, responses["order"].headers.get("X-Trace-ID", "")


@pytest.fixture(scope="module")
def scenario(docker_client: str, bookstore_images: dict[str, str]) -> Iterator[Scenario]:
    client = docker_client
    network = f"bookstore-test-{uuid.uuid4().hex[:8]}"
    started: list[str] = []
    checked(client, "network", "create", network)
    try:
        catalog = start(client, bookstore_images["catalog"], "catalog", network)
        started.append(catalog.name)
        orders = start(
            client,
            bookstore_images["orders"],
            "orders",
            network,
            # Found by its network alias, as a Service name in the cluster.
            "CATALOG_URL=http://catalog:8080",
        )
        started.append(orders.name)
        wait_ready(client, catalog)
        wait_ready(client, orders)
        responses, trace_id = drive_traffic(catalog, orders)
        # The lab's traffic Job, as manifests/bookstore/loadgen.yaml runs it (orders image).
        loadgen = run_docker(
            client,
            "run",
            "--rm",
            "--network",
            network,
            *RESTRICTED,
            "--entrypoint",
            "python",
            bookstore_images["orders"],
            *("-m", "bookstore", "loadgen", "--catalog-url", "http://catalog:8080"),
            *("--orders-url", "http://orders:8080", "--requests", str(LOADGEN_REQUESTS)),
            *("--wait", "30", "--seed", "7"),
            timeout=180,
        )
        # orders first: it should not see catalog vanish while shutting down.
        stop_and_collect(client, orders)
        stop_and_collect(client, catalog)
        yield Scenario(catalog, orders, responses, trace_id, loadgen)
    finally:
        for name in started:
            run_docker(client, "rm", "--force", name)
        run_docker(client, "network", "rm", network)


# --- the running services ----------------------------------------------------------------------


@pytest.mark.docker
def test_requests_answered_across_the_network(scenario: Scenario) -> None:
    r = scenario.responses
    assert r["list"].status_code == 200, r["list"].text
    assert r["list"].json()["books"], "catalog listed no books"
    # 201 proves orders reached catalog by its network alias and reserved the stock there.
    assert r["order"].status_code == 201, r["order"].text
    assert r["get_order"].status_code == 200, r["get_order"].text
    assert r["get_order"].json()["order_id"] == r["order"].json()["order_id"]
    assert r["catalog_fault"].status_code == 503, r["catalog_fault"].text
    assert r["order_fault"].status_code in (502, 503), r["order_fault"].text
    assert 400 <= r["secret_body"].status_code < 500, r["secret_body"].text


@pytest.mark.docker
@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_docker_logs_follow_the_schema(scenario: Scenario, service: str) -> None:
    container: Container = getattr(scenario, service)
    assert container.stdout, f"{service} wrote nothing to stdout"
    problems = logschema.invalid_lines(container.stdout)
    assert not problems, f"{service} lines break bookstore/log-schema.json:\n" + "\n".join(
        problems[:20]
    )


@pytest.mark.docker
@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_nothing_goes_to_stderr(scenario: Scenario, service: str) -> None:
    container: Container = getattr(scenario, service)
    assert container.stderr == "", f"{service} wrote to stderr:\n{container.stderr[:2000]}"


@pytest.mark.docker
@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_no_secret_reaches_docker_logs(scenario: Scenario, service: str) -> None:
    output = "\n".join(getattr(scenario, service).stdout)
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"{service} logged {leaked} (redaction must happen before writing)"


@pytest.mark.docker
def test_loadgen_job_runs_restricted_in_the_orders_image(scenario: Scenario) -> None:
    run = scenario.loadgen
    assert run.returncode == 0, f"loadgen exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    lines = run.stdout.splitlines()
    assert not logschema.invalid_lines(lines), logschema.invalid_lines(lines)[:10]
    summary = json.loads(lines[-1])
    assert summary["msg"] == "loadgen finished" and summary["requests"] == LOADGEN_REQUESTS
    assert summary["succeeded"] > 0 and summary["unexpected_5xx"] == 0, summary
    # Every one of its requests reached a service over the network and left a request line.
    served = [x for c in (scenario.catalog, scenario.orders) for x in c.lines() if "status" in x]
    assert len(served) >= LOADGEN_REQUESTS + len(scenario.responses), len(served)


@pytest.mark.docker
def test_one_order_shares_its_trace_id_across_both_containers(scenario: Scenario) -> None:
    trace_id = scenario.trace_id
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), f"X-Trace-ID was {trace_id!r}"
    order_id = scenario.responses["order"].json()["order_id"]
    orders_lines = [x for x in scenario.orders.lines() if x.get("trace_id") == trace_id]
    catalog_lines = [x for x in scenario.catalog.lines() if x.get("trace_id") == trace_id]
    placed = [x for x in orders_lines if x["msg"] == "order placed"]
    assert placed and placed[0]["order_id"] == order_id, orders_lines
    assert any(x.get("route") == "/books/{book_id}/reserve" for x in catalog_lines), (
        f"no catalog reserve line with trace_id {trace_id}; catalog saw: {catalog_lines}"
    )


@pytest.mark.docker
def test_injected_faults_log_database_errors(scenario: Scenario) -> None:
    errors = [
        (c.service, x)
        for c in (scenario.catalog, scenario.orders)
        for x in c.lines()
        if x["level"] == "ERROR" and x.get("error_type") == "DatabaseConnectionError"
    ]
    # The fault is raised in catalog (the "database" lives there): its line carries the stack.
    raised = [x for service, x in errors if service == "catalog"]
    assert raised and all(x.get("stack") for x in raised), errors
    # orders names the cause of its 503 and shares the trace of the catalog call that failed.
    forwarded = [x for service, x in errors if service == "orders"]
    assert forwarded, f"orders logged no ERROR naming DatabaseConnectionError: {errors}"
    assert forwarded[0]["trace_id"] in {x["trace_id"] for x in raised}


@pytest.mark.docker
@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_docker_stop_ends_with_a_final_line(scenario: Scenario, service: str) -> None:
    container: Container = getattr(scenario, service)
    # 137 would mean SIGKILL after the grace period: SIGTERM was not handled by PID 1.
    assert container.exit_code == 0, f"{service} exited {container.exit_code} on docker stop"
    last = container.lines()[-1]
    assert last["msg"] == "shutdown complete" and last["service"] == service, last


# --- the images --------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_image_defaults_are_non_root_and_labelled(
    docker_client: str, bookstore_images: dict[str, str], service: str
) -> None:
    config = inspect(docker_client, bookstore_images[service])["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "bookstore"]
    assert config["Cmd"] == [service]
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PORT"] == "8080" and env["DATA_DIR"].startswith("/tmp/")
    # The CA secret is pointed at only inside one RUN; nothing of it may reach the config.
    assert not {"PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"} & env.keys(), env
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"bookstore-{service}"
    assert labels["org.opencontainers.image.version"] == pyproject_version()
    for key in ("description", "source", "licenses"):
        assert f"org.opencontainers.image.{key}" in labels, labels


@pytest.mark.docker
def test_extra_ca_bundle_is_not_in_the_image(
    docker_client: str, bookstore_images: dict[str, str], image_build_settings: Any
) -> None:
    bundle = image_build_settings.extra_ca
    if bundle is None:
        pytest.skip("the images were built without an extra CA bundle; nothing to look for")
    data = bundle.read_bytes()
    # Walk the image's filesystem for any file with the bundle's size and hash.
    finder = (
        "import hashlib, os, sys\n"
        "size, digest = int(sys.argv[1]), sys.argv[2]\n"
        "for top in ('/opt', '/app', '/etc', '/usr', '/root', '/run', '/var', '/home', '/src'):\n"
        "    for root, dirs, files in os.walk(top):\n"
        "        for name in files:\n"
        "            path = os.path.join(root, name)\n"
        "            try:\n"
        "                if os.path.getsize(path) == size and not os.path.islink(path):\n"
        "                    with open(path, 'rb') as f:\n"
        "                        if hashlib.sha256(f.read()).hexdigest() == digest:\n"
        "                            print(path)\n"
        "            except OSError:\n"
        "                pass\n"
        "print('secret dir exists' if os.path.exists('/run/secrets/extra_ca') else 'done')\n"
    )
    output = checked(
        docker_client,
        "run",
        "--rm",
        "--user",
        "0",
        "--entrypoint",
        "python",
        bookstore_images["catalog"],
        "-c",
        finder,
        str(len(data)),
        hashlib.sha256(data).hexdigest(),
    )
    assert output.splitlines() == ["done"], f"the CA bundle {bundle} is in the image: {output}"
    history = checked(docker_client, "history", "--no-trunc", bookstore_images["catalog"])
    assert "BEGIN CERTIFICATE" not in history


def locked_set(lock: str, python_version: str) -> dict[str, str]:
    """{normalized name: version} a hashed lock installs on this Python (markers evaluated)."""
    from packaging.markers import Marker
    from packaging.utils import canonicalize_name

    major_minor = ".".join(python_version.split(".")[:2])
    environment = {"python_full_version": python_version, "python_version": major_minor}
    environment |= {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
    found = {}
    for line in (REPO_ROOT / "requirements" / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+?)(?: ; (.+?))? \\$", line)
        if match and (match[3] is None or Marker(match[3]).evaluate(environment)):
            found[canonicalize_name(match[1])] = match[2]
    return found


@pytest.mark.docker
def test_the_image_holds_exactly_the_locked_runtime(
    docker_client: str, bookstore_images: dict[str, str]
) -> None:
    # Every distribution in the venv (pip itself was removed), read by the image's own Python.
    lister = (
        "import importlib.metadata as m, platform, json\n"
        "print(json.dumps({'python': platform.python_version(), 'dists': "
        "{d.metadata['Name']: d.version for d in m.distributions()}}))\n"
    )
    seen = json.loads(
        checked(
            docker_client,
            "run",
            "--rm",
            *RESTRICTED,
            "--entrypoint",
            "python",
            bookstore_images["catalog"],
            "-c",
            lister,
        )
    )
    from packaging.utils import canonicalize_name

    installed = {canonicalize_name(name): version for name, version in seen["dists"].items()}
    project = installed.pop("k8s-logging-lab", None)
    assert project == pyproject_version(), "the services themselves are missing from the image"
    expected = locked_set("bookstore.txt", seen["python"])
    assert installed == expected, (
        f"the image's packages differ from requirements/bookstore.txt: extra "
        f"{sorted(installed.keys() - expected.keys())}, missing "
        f"{sorted(expected.keys() - installed.keys())}, other versions "
        f"{sorted(k for k in installed.keys() & expected.keys() if installed[k] != expected[k])}"
    )


@pytest.mark.docker
def test_bytecode_is_precompiled_for_a_read_only_root(
    docker_client: str, bookstore_images: dict[str, str]
) -> None:
    # `python -v` names every module it had to compile from source ("code object from x.py").
    result = run_docker(
        docker_client,
        "run",
        "--rm",
        *RESTRICTED,
        "--entrypoint",
        "python",
        bookstore_images["orders"],
        "-v",
        "-c",
        "import bookstore.catalog, bookstore.orders, bookstore.server",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from_source = re.findall(r"code object from '?(/opt/venv/\S+\.py)'?$", result.stderr, re.M)
    assert not from_source, f"compiled at run time (not in the image): {from_source[:10]}"
    assert "/opt/venv/" in result.stderr, "python -v output did not show the venv's modules"


@pytest.mark.docker
def test_without_a_writable_tmp_the_failure_is_logged_as_json(
    docker_client: str, bookstore_images: dict[str, str]
) -> None:
    # What a learner sees when a Deployment forgets the /tmp emptyDir: an exit, not a hang, and
    # ERROR lines (still one JSON object each) that name the path that could not be written.
    restricted_without_tmpfs = [f for f in RESTRICTED if f not in ("--tmpfs", "/tmp")]
    result = run_docker(
        docker_client, "run", "--rm", *restricted_without_tmpfs, bookstore_images["catalog"]
    )
    assert result.returncode != 0, result.stdout[-2000:]
    lines = result.stdout.splitlines()
    assert lines and not logschema.invalid_lines(lines), logschema.invalid_lines(lines)[:10]
    assert result.stderr == ""
    errors = [line for line in lines if json.loads(line)["level"] == "ERROR"]
    assert any("/tmp/bookstore" in x and "Read-only file system" in x for x in errors), errors


@pytest.mark.docker
def test_build_without_service_names_the_fix(
    docker_client: str, bookstore_images: dict[str, str], image_build_settings: Any
) -> None:
    # Every layer is cached by the session build, so this costs only the failing RUN.
    cmd = ["build", "--file", "bookstore/Dockerfile"]
    cmd += ["--build-arg", f"BASE_IMAGE={image_build_settings.base_image}"]
    if image_build_settings.extra_ca:
        cmd += ["--secret", f"id=extra_ca,src={image_build_settings.extra_ca}"]
    result = subprocess.run(
        [docker_client, *cmd, "."],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "--build-arg SERVICE=catalog or --build-arg SERVICE=orders" in (
        result.stdout + result.stderr
    )


# --- scripts/prepare-docker.sh ------------------------------------------------------------------

PREPARE = REPO_ROOT / "scripts" / "prepare-docker.sh"


@pytest.mark.docker
def test_prepare_docker_is_idempotent_and_safe_to_eval(docker_client: str, tmp_path: Any) -> None:
    if not os.environ.get("BOOKSTORE_BASE_IMAGE"):
        # Unprepared, the script may install packages or debootstrap a base: not for a test.
        pytest.skip('run after `eval "$(scripts/prepare-docker.sh)"` (as .ci/run does)')
    env_file = tmp_path / "docker.env"
    runs = [
        subprocess.run(
            [str(PREPARE), "--env-file", str(env_file)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert all(re.fullmatch(r"export [A-Z_]+=\S+", x) for x in run.stdout.splitlines()), (
            f"stdout must hold only `export` lines (it is eval'd):\n{run.stdout}"
        )
    assert runs[0].stdout == runs[1].stdout
    exported = dict(x.removeprefix("export ").split("=", 1) for x in runs[1].stdout.splitlines())
    assert exported["BOOKSTORE_BASE_IMAGE"] == os.environ["BOOKSTORE_BASE_IMAGE"]
    assert exported["DOCKER_BUILDKIT"] == "1"
    assert env_file.read_text().splitlines() == [f"{k}={v}" for k, v in exported.items()]
    # Already prepared: nothing was installed, started or built the second time.
    assert not re.search(r"installing|starting dockerd|debootstrap", runs[1].stderr), runs[1].stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--bogus"], "unknown argument: --bogus"), (["--env-file"], "--env-file needs a path")],
)
def test_prepare_docker_rejects_bad_arguments_with_usage(args: list[str], says: str) -> None:
    run = subprocess.run(
        [str(PREPARE), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 1 and run.stdout == ""
    assert says in run.stderr and "prepare-docker.sh" in run.stderr


# --- what must agree with versions.toml and pyproject.toml (no Docker needed) -------------------


def dockerfile_arg_default(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S*)$", DOCKERFILE.read_text(), re.M)
    assert match, f"bookstore/Dockerfile declares no `ARG {name}=...` default"
    return match.group(1)


def pyproject_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_dockerfile_base_image_default_is_the_pinned_one() -> None:
    # A Dockerfile cannot read TOML, so the default is spelled twice; this keeps them equal.
    assert dockerfile_arg_default("BASE_IMAGE") == load_versions()["python"]["base_image"]


def test_image_version_label_and_tags_follow_the_project_version() -> None:
    version = pyproject_version()
    assert dockerfile_arg_default("VERSION") == version
    for service, image in load_versions()["images"].items():
        assert image.rsplit(":", 1)[1] == version, f"[images].{service} = {image!r}"
