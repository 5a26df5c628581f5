"""Lab 2 of the logging chapter, as data: the steps, their commands, checkers and hints.

Follows the chapter's hands-on part: prerequisites (cluster, bookstore), the JSON on stdout,
Loki in `logging` and an Alloy DaemonSet in `logging-agent`, one request found across services
with LogQL, the extension that deletes a pod and finds its logs in Loki anyway, an optional
Grafana, and the hands-on extras (retention, the node's log files, alerting, an incident).

Every version, chart, release, namespace and values path comes from `versions.toml`; every
kubectl/helm command carries the lab's own kubeconfig so the learner's default one is never
touched. `build(settings)` adapts deadlines and image options to a machine; `LAB` is the
default build that the docs page renders.

Each step's `actions` are the reference solution (`--solve`); steps 1-4 also carry the learner's
`Task` (`_task_json`, `_task_agent`, `_task_queries`, `_task_deletion`): the exercise learner
mode stops at, with its set-up, files, hints and checkers. Every step has a learning objective
and an estimate in minutes, shown on the lab page and in the instructor guide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

from labconfig.settings import LAB_DIR
from labconfig.versions import load_versions
from labs.model import (
    CHECK,
    CLUSTER,
    DOCTOR,
    LOAD_IMAGE,
    POLL,
    Action,
    CheckRef,
    Lab,
    Step,
    Task,
    checker_argv,
)
from labs.settings import LOAD_ARCHIVE, Settings
from labs.tools import host_platform

KIND_CONFIG = "manifests/kind/cluster.yaml"
BOOKSTORE_KUSTOMIZATION = "manifests/bookstore"
LOADGEN = "manifests/bookstore/loadgen.yaml"
LOGGING_NAMESPACE_FILE = "manifests/logging/namespace.yaml"
DOCKERFILE = "bookstore/Dockerfile"
IMAGE_ARCHIVES = f"{LAB_DIR}/images"
GRAFANA_URL = "http://localhost:30300"
LOKI_PORT = 3100

# The containerd-image-store failure of `kind load docker-image` (kubernetes-sigs/kind#3795,
# #3845, #4224): ctr answers "content digest sha256:<hex>: not found". Only that error triggers
# the fallback: kind wraps every other import error as "failed to load image" too, and `kind
# load docker-image` is itself `docker save` + the same `ctr images import` as `kind load
# image-archive` (pkg/cluster/nodeutils/util.go), so the fallback must differ: it saves only the
# node's platform (`docker save --platform`, Docker 28+, API 1.48), the workaround in kind#3795.
KIND_LOAD_FALLBACK_ON = (r"content digest \S+ not found",)

# What the chapter asks the learner to try once logs arrive (LogQL; ids are parsed, not labels).
QUERY_ALL = '{namespace="bookstore"}'
QUERY_ERRORS = '{namespace="bookstore"} | json | level="ERROR"'
QUERY_TRACE = '{namespace="bookstore"} | json | trace_id="<trace_id from an ERROR line>"'
QUERY_BY_POD = 'sum by (pod) (count_over_time({namespace="bookstore", app="catalog"}[30m]))'


def kubectl(settings: Settings, *args: str) -> tuple[str, ...]:
    """A kubectl command against the lab cluster only."""
    return ("kubectl", "--kubeconfig", settings.kubeconfig, *args)


def helm(settings: Settings, *args: str) -> tuple[str, ...]:
    """A helm command against the lab cluster only."""
    return ("helm", "--kubeconfig", settings.kubeconfig, *args)


def loki_path(namespace: str, service: str, path: str, **params: str) -> str:
    """A Loki API path through the API server's service proxy (survives pod deletions,
    unlike `kubectl port-forward`)."""
    query = f"?{urlencode(params, quote_via=quote)}" if params else ""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{LOKI_PORT}/proxy{path}{query}"


def _loki_get(settings: Settings, namespace: str, path: str, **params: str) -> tuple[str, ...]:
    """`kubectl get --raw` of a Loki API path (Service `loki`) through the service proxy."""
    return kubectl(settings, "get", "--raw", loki_path(namespace, "loki", path, **params))


def _helm_install(settings: Settings, chart: dict[str, Any], timeout: float) -> Action:
    seconds = settings.seconds(timeout)
    return Action(
        argv=helm(
            settings,
            "upgrade",
            "--install",
            chart["release"],
            f"{chart['repo_name']}/{chart['chart']}",
            "--version",
            chart["version"],
            "--namespace",
            chart["namespace"],
            "--values",
            chart["values"],
            "--wait",
            "--timeout",
            f"{seconds}s",
        ),
        title=f"Install or upgrade the {chart['chart']} chart {chart['version']} "
        f"as release `{chart['release']}`",
        timeout=seconds + 30,
        namespaces=(chart["namespace"],),
        releases=((chart["release"], chart["namespace"]),),
    )


def _helm_status(settings: Settings, chart: dict[str, Any]) -> Action:
    return Action(
        argv=helm(settings, "status", chart["release"], "--namespace", chart["namespace"]),
        title=f"Report the status of release `{chart['release']}`",
        timeout=60,
    )


def _repo_adds(charts: list[dict[str, Any]]) -> list[Action]:
    """`helm repo add --force-update` once per repository (idempotent on a second run)."""
    seen: dict[str, str] = {}
    for chart in charts:
        seen.setdefault(chart["repo_name"], chart["repo_url"])
    return [
        Action(
            argv=("helm", "repo", "add", "--force-update", name, url),
            title=f"Add (or refresh) the `{name}` chart repository",
            timeout=120,
        )
        for name, url in seen.items()
    ]


def _rollout(settings: Settings, namespace: str, workload: str, timeout: float) -> Action:
    seconds = settings.seconds(timeout)
    return Action(
        argv=kubectl(
            settings, "rollout", "status", workload, "-n", namespace, f"--timeout={seconds}s"
        ),
        title=f"Wait for {workload} in `{namespace}` to be rolled out",
        timeout=seconds + 30,
        namespaces=(namespace,),
    )


def _with_checks(settings: Settings, namespaces: tuple[str, ...], step: Step) -> Step:
    """The step with its checkers' command as its last action.

    The ids are spelled once, in `step.checks`; the command is derived from them, so the step's
    declared checkers and the checkers it runs cannot disagree.
    """
    if not step.checks:
        return step
    action = Action(
        argv=checker_argv(settings.kubeconfig, tuple(c.id for c in step.checks)),
        title="Run the checkers of this step",
        kind=CHECK,
        env=CHECK_ENV.get(step.id, ()),
        timeout=settings.seconds(300),
        # A failing checker is explained by the state of both namespaces.
        namespaces=namespaces,
    )
    return replace(step, actions=(*step.actions, action))


def _images(settings: Settings, versions: dict[str, Any], cluster: str) -> list[Action]:
    base_image = settings.base_image or versions["python"]["base_image"]
    # kind's nodes run on this machine's CPU: the archive holds only that platform.
    platform = f"linux/{host_platform()[1]}"
    actions: list[Action] = []
    for service, image in versions["images"].items():
        build = [
            settings.docker,  # the client chosen by labconfig.docker_client
            "build",
            "--file",
            DOCKERFILE,
            "--build-arg",
            f"SERVICE={service}",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
        ]
        if settings.extra_ca:
            # A BuildKit secret: pip trusts the proxy's CA during the build, the image never
            # contains it.
            build += ["--secret", f"id=extra_ca,src={settings.extra_ca}"]
        build += ["--tag", image, "."]
        actions.append(
            Action(
                argv=tuple(build),
                title=f"Build the {service} image for this machine's platform",
                env=(("DOCKER_BUILDKIT", "1"),),
                timeout=settings.seconds(900),
            )
        )
    for service, image in versions["images"].items():
        archive = f"{IMAGE_ARCHIVES}/{service}.tar"
        via_archive = (
            Action(
                argv=(settings.docker, "save", "--platform", platform, "--output", archive, image),
                title=f"Save the {platform} {service} image to {archive}",
                timeout=settings.seconds(300),
            ),
            Action(
                argv=("kind", "load", "image-archive", "--name", cluster, archive),
                title=f"Load {archive} into the kind node",
                timeout=settings.seconds(300),
            ),
        )
        if settings.image_load == LOAD_ARCHIVE:
            actions.extend(via_archive)
        else:
            actions.append(
                Action(
                    argv=("kind", "load", "docker-image", "--name", cluster, image),
                    title=f"Load the {service} image into the kind node "
                    "(kind skips it when the node already has this image id)",
                    kind=LOAD_IMAGE,
                    timeout=settings.seconds(300),
                    fallback_on=KIND_LOAD_FALLBACK_ON,
                    fallback=via_archive,
                )
            )
    return actions


@dataclass(frozen=True)
class _Context:
    """What every step's definition reads: the machine's settings and versions.toml."""

    settings: Settings
    versions: dict[str, Any]

    @property
    def cluster(self) -> str:
        return self.versions["kind"]["cluster_name"]

    def chart(self, name: str) -> dict[str, Any]:
        return self.versions["charts"][name]

    @property
    def app_ns(self) -> str:
        v = self.versions
        return v["bookstore"]["namespace"] if "bookstore" in v else "bookstore"

    @property
    def log_ns(self) -> str:
        return self.chart("loki")["namespace"]

    @property
    def agent_ns(self) -> str:
        """The agent's namespace: the only privileged one (hostPath /var/log)."""
        return self.chart("alloy")["namespace"]


def _traffic(c: _Context) -> tuple[Action, ...]:
    """The loadgen Job run afresh: the traffic step 3 queries."""
    return tuple(_loadgen_run(c.settings, c.app_ns))


def _step0(c: _Context) -> Step:
    """Set-up: the machine, the cluster, the images and the bookstore."""
    settings = c.settings
    v = c.versions
    app_ns = c.app_ns
    cluster = c.cluster
    return Step(
        number=0,
        id="prerequisites",
        objective=(
            "Stand up a local cluster that runs two services under Pod Security `restricted`."
        ),
        minutes=15,
        title="Prerequisites: a kind cluster running the bookstore",
        docs="lab-2.md#step-0",
        summary=(
            "Check the machine, create a local Kubernetes cluster with kind, build the two "
            "bookstore images, load them into the node and deploy them into the `bookstore` "
            "namespace, which enforces Pod Security `restricted`."
        ),
        actions=(
            Action(
                argv=("python", "-m", "labs", "doctor"),
                title="Check Docker and a BuildKit build, the downloads ahead, memory, ports, disk",
                kind=DOCTOR,
            ),
            Action(
                # The exact command pytest-kind's KindCluster.create runs for us.
                argv=(
                    "kind",
                    "create",
                    "cluster",
                    f"--name={cluster}",
                    f"--kubeconfig={settings.kubeconfig}",
                    f"--image={v['kind']['node_image']}",
                    "--config",
                    KIND_CONFIG,
                ),
                title=f"Create the kind cluster `{cluster}` (reused when it already exists)",
                kind=CLUSTER,
                timeout=settings.seconds(600),
                skip_if=("kind", "get", "clusters"),
            ),
            Action(
                argv=kubectl(
                    settings,
                    "wait",
                    "--for=condition=Ready",
                    "nodes",
                    "--all",
                    f"--timeout={settings.seconds(180)}s",
                ),
                title="Wait for every node (control plane and worker) to be Ready",
                timeout=settings.seconds(180) + 30,
            ),
            *_images(settings, v, cluster),
            Action(
                argv=kubectl(settings, "apply", "-k", BOOKSTORE_KUSTOMIZATION),
                title="Deploy the bookstore (namespace, config, deployments, services)",
                timeout=settings.seconds(120),
                namespaces=(app_ns,),
            ),
            _rollout(settings, app_ns, "deployment/catalog", 240),
            _rollout(settings, app_ns, "deployment/orders", 240),
        ),
        hints=(
            "If a Deployment sits at 0 ready, the Pod Security rejection is only in the "
            f"ReplicaSet events: `kubectl --kubeconfig {settings.kubeconfig} get events "
            f"-n {app_ns} --field-selector reason=FailedCreate`.",
            "On Apple Silicon, if `kind load docker-image` fails with `content digest ... not "
            "found`, run with LAB_IMAGE_LOAD=archive.",
            "Behind a TLS-intercepting proxy, set BOOKSTORE_EXTRA_CA to your CA bundle; without "
            "a registry, set BOOKSTORE_BASE_IMAGE to a base image you built or mirrored.",
            "`BuildKit is enabled but the buildx component is missing`: install the buildx "
            "plugin, or point LAB_DOCKER at a docker client that builds with BuildKit.",
        ),
    )


def _step1(c: _Context) -> Step:
    """The services' JSON lines on stdout, read with `kubectl logs`."""
    settings = c.settings
    app_ns = c.app_ns
    return Step(
        number=1,
        id="json-on-stdout",
        task=_task_json(c),
        objective=(
            "Tell a JSON-per-line stdout log from plain text or stderr, and fix it "
            "through configuration."
        ),
        minutes=10,
        title="JSON on stdout: one object per line from both services",
        docs="lab-2.md#step-1",
        summary=(
            "Each service prints one JSON object per line, with `level`, `msg`, `service` and, "
            "on request lines, the `trace_id`. `kubectl logs` fetches them from the kubelet of "
            "the pod's node: enough to glance at a single pod, with no history once the pod is "
            "gone."
        ),
        actions=(
            Action(
                argv=kubectl(settings, "logs", "-n", app_ns, "deploy/catalog", "--tail=5"),
                title="The last five lines of catalog",
                timeout=60,
            ),
            Action(
                argv=kubectl(settings, "logs", "-n", app_ns, "deploy/orders", "--tail=5"),
                title="The last five lines of orders",
                timeout=60,
            ),
        ),
        checks=(CheckRef("lab2.json-stdout"),),
        hints=(
            "Each line must parse as JSON on its own; a stack trace is one `stack` string, "
            "not many lines.",
        ),
    )


def _step2(c: _Context) -> Step:
    """Loki in `logging` (restricted) and the Alloy DaemonSet in its privileged namespace."""
    settings = c.settings
    log_ns, agent_ns = c.log_ns, c.agent_ns
    loki = c.chart("loki")
    alloy = c.chart("alloy")
    return Step(
        number=2,
        id="loki-and-alloy",
        task=_task_agent(c),
        objective=(
            "Run a log agent as a DaemonSet that tails /var/log/pods on its own node and "
            "pushes to Loki, without relaxing the app namespace."
        ),
        minutes=25,
        title=f"Install Loki in `{log_ns}` and the Alloy DaemonSet in `{agent_ns}`",
        docs="lab-2.md#step-2",
        summary=(
            "The log agent is platform infrastructure: one Alloy pod per node reads "
            "/var/log/pods through a hostPath and pushes to Loki. It lives in its own "
            "`privileged` namespace so that `bookstore` stays `restricted`."
        ),
        actions=(
            Action(
                argv=kubectl(settings, "apply", "-f", LOGGING_NAMESPACE_FILE),
                title=f"Create the namespaces `{agent_ns}` (Pod Security `privileged`, for the "
                f"agent) and `{log_ns}` (`restricted`, for Loki and Grafana)",
                timeout=60,
            ),
            *_repo_adds([loki, alloy]),
            _helm_install(settings, loki, 600),
            _helm_status(settings, loki),
            Action(
                argv=_loki_get(settings, log_ns, "/ready"),
                title="Wait until Loki answers `ready` (it waits ~15 s after start on purpose)",
                kind=POLL,
                expect="ready",
                timeout=settings.seconds(180),
                interval=5,
                namespaces=(log_ns,),
                releases=((loki["release"], log_ns),),
                show_output=False,
            ),
            _helm_install(settings, alloy, 300),
            _helm_status(settings, alloy),
            _rollout(settings, agent_ns, f"daemonset/{alloy['release']}", 180),
            Action(
                argv=kubectl(settings, "get", "daemonset", "-n", agent_ns),
                title="The DaemonSet: how many agent pods it wants, and how many are ready",
                timeout=60,
            ),
        ),
        checks=(CheckRef("lab2.agent-daemonset"), CheckRef("lab2.namespace-restricted")),
        hints=(
            "Alloy needs `alloy.mounts.varlog: true` to see /var/log/pods; without it, its UI "
            "(port 12345) lists no file targets (the log says so only at debug level).",
            "Keep `bookstore` restricted whatever the agent needs: the agent's namespace is the "
            "privileged one.",
        ),
    )


def _step3(c: _Context) -> Step:
    """Traffic, then one request followed across both services with LogQL."""
    settings = c.settings
    log_ns, agent_ns = c.log_ns, c.agent_ns
    loki = c.chart("loki")
    alloy = c.chart("alloy")
    return Step(
        number=3,
        id="query-one-request",
        task=_task_queries(c),
        objective=(
            "Follow one request across services by its trace id with LogQL range queries, "
            "keeping ids out of labels."
        ),
        minutes=20,
        title="Send traffic and follow one request across both services",
        docs="lab-2.md#step-3",
        summary=(
            "The loadgen Job lists books, places orders and injects a few database failures. "
            "Loki indexes only low-cardinality labels (namespace, pod, container, app and "
            "stream, plus its own service_name); the `trace_id` is parsed from the JSON at "
            "query time and joins both services."
        ),
        actions=(
            *_traffic(c),
            Action(
                argv=_loki_get(
                    settings, log_ns, "/loki/api/v1/query_range", query=QUERY_ALL, limit="5"
                ),
                title="Wait until the agent has shipped bookstore lines to Loki",
                kind=POLL,
                expect='"stream"',
                timeout=settings.seconds(180),
                interval=5,
                namespaces=(log_ns, agent_ns),
                releases=((alloy["release"], agent_ns), (loki["release"], log_ns)),
                show_output=False,
            ),
            Action(
                argv=_loki_get(
                    settings, log_ns, "/loki/api/v1/query_range", query=QUERY_ERRORS, limit="3"
                ),
                title=f"Query the errors with LogQL: {QUERY_ERRORS}",
                timeout=60,
            ),
        ),
        checks=(
            CheckRef("lab2.single-request-query"),
            CheckRef("lab2.error-traceable"),
            CheckRef("lab2.low-cardinality-labels"),
            CheckRef("lab2.no-secrets-in-loki"),
        ),
        hints=(
            "Log queries need query_range: since Loki 3.2 the instant endpoint rejects them.",
            "Take the trace_id of an ERROR line, then query for it: both services' lines "
            "come back.",
        ),
        queries=(QUERY_ALL, QUERY_ERRORS, QUERY_TRACE),
    )


def _step4(c: _Context) -> Step:
    """The pods deleted; their lines found in Loki anyway."""
    settings = c.settings
    app_ns = c.app_ns
    log_ns = c.log_ns
    return Step(
        number=4,
        id="logs-survive-deletion",
        task=_task_deletion(c),
        objective=("Show that centralised logs outlive a pod, up to the last line it wrote."),
        minutes=10,
        title="Delete the pods: their logs are still in Loki",
        docs="lab-2.md#step-4",
        summary=(
            "Deleting a pod removes its log directory from the node, so `kubectl logs` has "
            "nothing left to show. The agent shipped the lines before that: Loki still has "
            "them, labelled with the old pod's name."
        ),
        actions=(
            Action(
                argv=kubectl(settings, "delete", "pod", "-n", app_ns, "-l", "app=catalog"),
                title="Delete every catalog pod (the Deployment starts new ones)",
                timeout=settings.seconds(120),
                namespaces=(app_ns,),
            ),
            _rollout(settings, app_ns, "deployment/catalog", 180),
            Action(
                argv=_loki_get(
                    settings, log_ns, "/loki/api/v1/query_range", query=QUERY_BY_POD, step="60"
                ),
                title=f"Lines per pod in Loki, deleted pods included: {QUERY_BY_POD}",
                timeout=60,
            ),
        ),
        checks=(CheckRef("lab2.logs-survive-deletion"),),
        hints=(
            "Loki only has what the agent shipped before the pod went away: are the Alloy "
            "pods ready?",
        ),
        queries=(QUERY_BY_POD,),
    )


def _step5(c: _Context) -> Step:
    """The optional Grafana with Loki as its datasource."""
    settings = c.settings
    grafana = c.chart("grafana")
    return Step(
        number=5,
        id="grafana",
        objective=("Run the same LogQL in Grafana's Explore view."),
        minutes=10,
        title="Grafana with Loki as its datasource",
        docs="lab-2.md#step-5",
        summary=(
            "Grafana's Explore view runs the same LogQL. The datasource is provisioned from the "
            f"chart values; the UI is mapped to {GRAFANA_URL}."
        ),
        actions=(
            *_repo_adds([grafana]),
            _helm_install(settings, grafana, 300),
            _helm_status(settings, grafana),
        ),
        checks=(CheckRef("lab2.grafana-datasource"),),
        hints=("Explore → datasource Loki → paste a query from step 3.",),
        queries=(QUERY_ERRORS,),
        optional=True,
    )


# -- the learner's exercises (learner mode; the step's actions are the reference solution) ----
EXERCISES = "exercises/lab2"
# The reference answers of the extras (--solve loads the rules, the incident checker reads the
# answers from here through LAB_EXERCISES).
SOLUTIONS = "labs/solutions/lab2"
CHECK_ENV = {"incident": (("LAB_EXERCISES", SOLUTIONS),)}
ALLOY_STARTER = f"{EXERCISES}/alloy-values.yaml"
QUERIES_FILE = f"{EXERCISES}/queries.yaml"
# The reference answers, applied by --solve and shown collapsed on the lab page.
ALLOY_SOLUTION = "manifests/logging/alloy-values.yaml"
QUERIES_SOLUTION = "labs/solutions/lab2-queries.yaml"
BOOKSTORE_CONFIGMAP = "manifests/bookstore/configmap.yaml"
# The setting the JSON exercise ships wrong: the services read LOG_FORMAT (json|text, see
# bookstore/logs.py) from ConfigMap `bookstore-config` when they start.
LOG_FORMAT_KEY = "LOG_FORMAT"
# The label step 4 puts on the pods the learner must delete (the checker's EXERCISE_SELECTOR).
DELETE_ME = "lab2-exercise=delete-me"


def _ship_misconfigured(c: _Context) -> tuple[Action, ...]:
    """Set-up of the JSON exercise: catalog restarted with plain-text logging from its ConfigMap.

    Only catalog is restarted, so only catalog picks the wrong value up: the learner has to find
    which service it is and why (a pod reads its environment at start).
    """
    patch = json.dumps({"data": {LOG_FORMAT_KEY: "text"}}, separators=(",", ":"))
    return (
        Action(
            argv=kubectl(c.settings, "patch", "configmap", "bookstore-config", "-n", c.app_ns,
                         "--type", "merge", "-p", patch),
            title="Ship the bookstore mis-configured (the exercise's starting point)",
            timeout=60,
            namespaces=(c.app_ns,),
        ),
        Action(
            argv=kubectl(c.settings, "rollout", "restart", "deployment/catalog", "-n", c.app_ns),
            title="Restart catalog so that it reads the changed configuration",
            timeout=60,
            namespaces=(c.app_ns,),
        ),
        _rollout(c.settings, c.app_ns, "deployment/catalog", 180),
    )  # fmt: skip


def _task_json(c: _Context) -> Task:
    k = f"kubectl --kubeconfig {c.settings.kubeconfig} -n {c.app_ns}"
    return Task(
        goal=(
            "Both bookstore services must write exactly one JSON object per line to stdout, "
            "following the log contract. The set-up above changed a logging setting in the "
            "shared ConfigMap and restarted one service: see what that did to its output, work "
            "out why the other service is unaffected, and fix it through the configuration "
            "(not the code) so that every line it writes from now on is JSON."
        ),
        files=(BOOKSTORE_CONFIGMAP,),
        setup=_ship_misconfigured(c),
        pitfalls=(
            "Editing the file without applying it, or applying without restarting catalog: "
            "the running pods keep the environment they started with.",
            "Changing the Python code instead of the configuration.",
        ),
        checks=(CheckRef("lab2.json-stdout"),),
        hints=(
            f"Compare `{k} logs deploy/catalog --tail=5` with the same for deploy/orders: "
            "which one does not print JSON?",
            f"The services read their settings from the ConfigMap: `{k} get configmap "
            f"bookstore-config -o yaml`. Which key is not in {BOOKSTORE_CONFIGMAP}?",
            "`kubectl apply -k` does not remove a key it never set (three-way merge): remove it "
            f"with `{k} edit configmap bookstore-config` (or set it to json), then `{k} rollout "
            "restart deployment/catalog`: a pod reads its environment only when it starts.",
        ),
    )


def _task_agent(c: _Context) -> Task:
    loki, alloy = c.chart("loki"), c.chart("alloy")
    learner_alloy = {**alloy, "values": ALLOY_STARTER}
    return Task(
        goal=(
            "Get every bookstore container's lines into Loki, read by an agent pod on each "
            "node. "
            f"Complete the Alloy pipeline in {ALLOY_STARTER} (its TODOs: node-local discovery, "
            "the path of the pod log files, the CRI stage, the push URL), then install Loki and "
            f"Alloy (into `{c.log_ns}` and `{c.agent_ns}`) with the commands below. Only the "
            "agent's namespace may be "
            f"privileged; `{c.app_ns}` stays `restricted`, and only low-cardinality labels "
            "reach Loki."
        ),
        files=(ALLOY_STARTER,),
        commands=(
            Action(
                argv=kubectl(c.settings, "apply", "-f", LOGGING_NAMESPACE_FILE),
                title=f"Create the namespaces `{c.agent_ns}` (Pod Security `privileged`, for the "
                f"agent) and `{c.log_ns}` (`restricted`, for Loki and Grafana)",
                timeout=60,
            ),
            *_repo_adds([loki, alloy]),
            _helm_install(c.settings, loki, 600),
            _helm_install(c.settings, learner_alloy, 300),
            _rollout(c.settings, c.agent_ns, f"daemonset/{alloy['release']}", 180),
        ),
        # The label checker runs with the queries (step 3), as the solution runs it and as its
        # docs link says (checks/catalogue.py).
        checks=(CheckRef("lab2.agent-daemonset"), CheckRef("lab2.namespace-restricted")),
        hints=(
            f"Check your file offline first: `python -m validators.exercises {EXERCISES}` "
            "names each missing piece of the pipeline.",
            "The kubelet writes /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log; the "
            "agent sees it only with `alloy.mounts.varlog: true`.",
            "Each agent must discover only the pods of its own node: a `selectors` block with "
            'field = "spec.nodeName=" + the node name (the chart sets HOSTNAME to it).',
            "Without `stage.cri {}` every line starts with the runtime's timestamp and stream, "
            "and `| json` fails on it. Loki's push URL ends in /loki/api/v1/push.",
        ),
        solution_files=(ALLOY_SOLUTION,),
        pitfalls=(
            "Relaxing `bookstore` to `privileged` to make an agent run there: the checker "
            f"fails it; the agent belongs in `{c.agent_ns}`.",
            "A path glob that matches nothing: Alloy runs, reports no targets and ships "
            "nothing (its UI on port 12345 shows the empty target list).",
            "Turning trace_id or request_id into labels while experimenting.",
        ),
    )


def _task_queries(c: _Context) -> Task:
    return Task(
        goal=(
            f"Write three named LogQL queries in {QUERIES_FILE}: `errors` (every ERROR line of "
            "the bookstore), `one_request` (every line of one request, in both services, with "
            "`$TRACE_ID` where the trace id goes) and `deleted_pod_lines` (all lines of one pod, "
            "with `$POD` where its name goes; step 4 uses it). The checker sends a fresh request "
            "with a new trace id and runs your queries against Loki over a time range."
        ),
        files=(QUERIES_FILE,),
        setup=_traffic(c),
        pitfalls=(
            'Running a log query as an instant query (Grafana\'s "Instant" toggle, or '
            "/loki/api/v1/query): Loki 3.2+ refuses it.",
            "Selecting by pod name: it finds one replica of one service, never the request.",
        ),
        checks=(
            CheckRef("lab2.learner-queries"),
            CheckRef("lab2.error-traceable"),
            CheckRef("lab2.low-cardinality-labels"),
            CheckRef("lab2.no-secrets-in-loki"),
        ),
        hints=(
            'Start from the stream selector `{namespace="bookstore"}`; ids are not labels, so '
            "filter on them after `| json`.",
            "A pod name changes with every restart: select the request by its trace id, never "
            'by `pod`. `| json | trace_id="$TRACE_ID"` keeps only that trace.',
            "Log queries run only as range queries (query_range) since Loki 3.2: try yours in "
            "Grafana's Explore with a time range, not as an instant query.",
        ),
        solution_files=(QUERIES_SOLUTION,),
    )


def _task_deletion(c: _Context) -> Task:
    return Task(
        goal=(
            "Delete every catalog and orders pod yourself (their Deployments start new ones; "
            "you may restart the agent too). Then your `deleted_pod_lines` query must still "
            "return a deleted pod's lines from Loki, up to the last line it wrote before it "
            "stopped, although `kubectl logs` can no longer show them."
        ),
        files=(QUERIES_FILE,),
        setup=(
            Action(
                argv=kubectl(
                    c.settings,
                    "label",
                    "pods",
                    "-n",
                    c.app_ns,
                    "-l",
                    "app in (catalog,orders)",
                    DELETE_ME,
                    "--overwrite",
                ),
                title="Mark the pods that run now: the ones you will delete",
                timeout=60,
                namespaces=(c.app_ns,),
            ),
        ),
        checks=(CheckRef("lab2.learner-deleted-pod-lines"),),
        pitfalls=(
            "Deleting the pods before the agent is ready: their last lines never reach Loki.",
            "Looking for the old pod with `kubectl logs`: it is gone; only Loki has it.",
        ),
        hints=(
            f"`kubectl --kubeconfig {c.settings.kubeconfig} -n {c.app_ns} delete pod -l "
            "app=catalog` (and app=orders) deletes them; `get pods` shows the new names.",
            'Select by `pod="$POD"` inside the braces: the old pod\'s name is still a label '
            "value in Loki although the pod is gone.",
            "The last line a bookstore pod writes on SIGTERM is `shutdown complete`: if it is "
            "missing, the agent did not read the file to its end before the kubelet removed it.",
        ),
        solution_files=(QUERIES_SOLUTION,),
    )


def build(settings: Settings | None = None) -> Lab:
    """Lab 2 for this machine's settings (defaults: what the docs page shows)."""
    c = _Context(settings or Settings(), load_versions())
    settings = c.settings
    grafana = c.chart("grafana")
    watched = tuple(dict.fromkeys((c.app_ns, c.log_ns, c.agent_ns)))
    steps = [_step0(c), _step1(c), _step2(c), _step3(c), _step4(c), _step5(c)]
    steps += extra_steps(settings, c.versions)

    # grafana-values.yaml enables anonymous Editor access (enough for Explore); the admin
    # password the chart generates stays in its Secret.
    secret_cmd = (
        f"kubectl --kubeconfig {settings.kubeconfig} get secret -n {grafana['namespace']} "
        f"{grafana['release']} -o jsonpath='{{.data.admin-password}}' | base64 -d"
    )
    return Lab(
        id="lab2",
        title="Lab 2: ship the bookstore's JSON logs to Loki and follow one request",
        cluster_name=c.cluster,
        kubeconfig=settings.kubeconfig,
        steps=tuple(_with_checks(settings, watched, step) for step in steps),
        grafana_url=GRAFANA_URL,
        grafana_login=f"no login needed for Explore; admin password: `{secret_cmd}`",
        try_query=QUERY_ERRORS,
        grafana_after=5,
        query_after=3,
    )


# -- the hands-on extras: retention, the node, alerting, the incident (docs/hands-on-extras.md) --
EXERCISES = "exercises/lab2"
ALERT_RULES = f"{EXERCISES}/alert-rules.yaml"
INCIDENT_ANSWERS = f"{EXERCISES}/incident.yaml"
QUERY_ERROR_RATE = (
    'sum(rate({namespace="bookstore"} | json | level="ERROR" [5m])) / '
    'sum(rate({namespace="bookstore"}[5m]))'
)
QUERY_ABSENT = 'absent_over_time({namespace="bookstore"}[5m])'
INCIDENT_FAULT_RATE = "0.3"
# Names the Deployment the incident breaks, so that no printed command gives the service away
# (`kubectl set env -f` changes the live object the file names).
INCIDENT_TARGET = "labs/drill_files/incident-target.yaml"


def _on_node(settings: Settings, node: str, command: str, title: str) -> Action:
    """A shell command inside a kind node's container, with the docker client the lab chose."""
    argv = (settings.docker, "exec", node, "sh", "-c", command)
    return Action(argv=argv, title=title, timeout=60)


def _loadgen_run(settings: Settings, app_ns: str) -> list[Action]:
    """Run the traffic Job again (the Job is immutable: delete, apply, wait)."""
    return [
        Action(
            argv=kubectl(settings, "delete", "job", "loadgen", "-n", app_ns, "--ignore-not-found"),
            title="Remove the previous traffic run, if any",
            timeout=120,
        ),
        Action(
            argv=kubectl(settings, "apply", "-f", LOADGEN),
            title="Start the traffic Job (restricted-compliant)",
            timeout=60,
            namespaces=(app_ns,),
        ),
        Action(
            argv=kubectl(
                settings,
                "wait",
                "--for=condition=complete",
                "job/loadgen",
                "-n",
                app_ns,
                f"--timeout={settings.seconds(300)}s",
            ),  # fmt: skip
            title="Wait for the traffic Job to complete",
            timeout=settings.seconds(300) + 30,
            namespaces=(app_ns,),
        ),
    ]


def retention_step(settings: Settings, v: dict[str, Any], number: int) -> Step:
    log_ns = v["charts"]["loki"]["namespace"]
    return Step(
        number=number,
        id="retention",
        title="Retention: how long Loki keeps each stream",
        objective="Read from Loki's own configuration how long it keeps each stream, and why "
        "nothing is deleted until the compactor applies a retention period.",
        minutes=10,
        docs=f"lab-2.md#step-{number}",
        summary=(
            "Loki deletes nothing until its compactor applies retention. The Loki values turn it "
            "on, keep every stream 7 days and the traffic generator's own lines one day; Loki's "
            "`/config` shows what it actually runs with."
        ),
        actions=(
            Action(
                argv=_loki_get(settings, log_ns, "/config"),
                title="The configuration Loki runs with: look for compactor.retention_enabled, "
                "limits_config.retention_period and retention_stream",
                timeout=60,
            ),
        ),
        checks=(CheckRef("lab2.retention"),),
        hints=(
            "Loki prints durations the Prometheus way: 168h appears as 1w, 24h as 1d.",
            "A retention_stream period under 24h is refused at start-up: the index is cut in "
            "24h tables.",
        ),
    )


def node_step(settings: Settings, v: dict[str, Any], number: int) -> Step:
    app_ns = v["bookstore"]["namespace"] if "bookstore" in v else "bookstore"
    node = f"{v['kind']['cluster_name']}-worker"
    pod_dir = f"/var/log/pods/{app_ns}_catalog-*/catalog/"
    return Step(
        number=number,
        id="the-node",
        title="On the node: the CRI log files and their rotation",
        objective="See the CRI log files on the node, watch the kubelet rotate them, and "
        "compare what `kubectl logs` still shows with what Loki kept.",
        minutes=15,
        docs=f"lab-2.md#step-{number}",
        summary=(
            "What `kubectl logs` prints lives in files the container runtime writes on the "
            "node. Open them inside the kind node, watch the kubelet rotate them at the small "
            "size the kind config sets, and compare what `kubectl logs` still shows with what "
            "Loki kept."
        ),
        actions=(
            Action(
                argv=kubectl(settings, "get", "--raw", f"/api/v1/nodes/{node}/proxy/configz"),
                title="The kubelet's running configuration: containerLogMaxSize and "
                "containerLogMaxFiles",
                timeout=60,
            ),
            _on_node(
                settings,
                node,
                f"ls -l {pod_dir}",
                "The catalog containers' log files on the worker node",
            ),
            *_loadgen_run(settings, app_ns),
            _on_node(
                settings,
                node,
                f"ls -l {pod_dir}",
                "Again after the traffic: rotated files are "
                "named 0.log.<timestamp> (older ones gzipped)",
            ),
            _on_node(
                settings,
                node,
                f"tail -n 2 {pod_dir}0.log",
                "Two raw CRI lines: <time> <stream> <P|F> <the app's JSON>",
            ),
        ),
        checks=(CheckRef("lab2.node-rotation"),),
        hints=(
            "The kubelet checks sizes every 10 s, so a file can grow past the limit briefly.",
            "The kubelet settings come from manifests/kind/cluster.yaml at cluster creation: "
            "changing them needs a new cluster.",
        ),
    )


def _set_fault_rate(
    settings: Settings, app_ns: str, rate: str, title: str, restart_title: str
) -> tuple[Action, ...]:
    """FAULT_RATE in the bookstore's ConfigMap, then both services restarted to read it."""
    patch = json.dumps({"data": {"FAULT_RATE": rate}}, separators=(",", ":"))
    return (
        Action(
            argv=kubectl(
                settings,
                "-n",
                app_ns,
                "patch",
                "configmap",
                "bookstore-config",
                "--type",
                "merge",
                "--patch",
                patch,
            ),  # fmt: skip
            title=title,
            timeout=60,
        ),
        Action(
            argv=kubectl(
                settings,
                "-n",
                app_ns,
                "rollout",
                "restart",
                "deployment/catalog",
                "deployment/orders",
            ),  # fmt: skip
            title=restart_title,
            timeout=60,
        ),
        _rollout(settings, app_ns, "deployment/catalog", 180),
        _rollout(settings, app_ns, "deployment/orders", 180),
    )


def alerting_step(settings: Settings, v: dict[str, Any], number: int) -> Step:
    app_ns = v["bookstore"]["namespace"] if "bookstore" in v else "bookstore"
    log_ns = v["charts"]["loki"]["namespace"]
    return Step(
        number=number,
        id="alerting",
        title="Alerting on logs: an error-rate rule and an absence rule",
        objective="Write log-based alert rules for Loki's ruler: one that fires on an error "
        "rate, one that fires when lines stop arriving.",
        minutes=25,
        task=_task_alerting(settings, log_ns),
        docs=f"lab-2.md#step-{number}",
        summary=(
            f"Your task: fill in the two TODOs of {ALERT_RULES}. Loki's ruler evaluates the "
            "rules itself; raising the fault rate makes the error-rate rule fire, and the "
            "absent_over_time rule stays quiet while lines arrive."
        ),
        actions=(
            Action(
                argv=kubectl(settings, "apply", "-k", SOLUTIONS),
                title=f"Load the reference rules ({SOLUTIONS}/alert-rules.yaml) as ConfigMap "
                "`loki-alert-rules`",
                timeout=60,
                namespaces=(log_ns,),
            ),
            Action(
                argv=_loki_get(settings, log_ns, "/prometheus/api/v1/rules"),
                title="Wait until the ruler has loaded the rules (it re-reads them every 15 s)",
                kind=POLL,
                expect='"type":"alerting"',
                timeout=settings.seconds(240),
                interval=10,
                namespaces=(log_ns,),
            ),
            *_set_fault_rate(
                settings,
                app_ns,
                "0.3",
                "Raise the simulated database's fault rate to 0.3",
                "Restart both services so they read the new rate",
            ),
            *_loadgen_run(settings, app_ns),
            Action(
                argv=_loki_get(settings, log_ns, "/prometheus/api/v1/alerts"),
                title="The ruler's active alerts (pending first, firing after `for:`)",
                timeout=60,
            ),
            *_set_fault_rate(
                settings,
                app_ns,
                "0",
                "Put the fault rate back to 0 (the checker makes failures of its own)",
                "Restart both services with the rate back at 0",
            ),
        ),
        checks=(CheckRef("lab2.alert-rules"),),
        hints=(
            "`count_over_time(...) == 0` never fires: with no lines there is no series to "
            "compare. absent_over_time returns 1 exactly then.",
            "Try each expression in Grafana Explore first; a rule the ruler cannot evaluate "
            "shows health `err` and its error in /prometheus/api/v1/rules.",
        ),
        queries=(QUERY_ERROR_RATE, QUERY_ABSENT),
    )


def _incident_start(settings: Settings, app_ns: str) -> tuple[Action, ...]:
    """Start the incident: a fault rate on one service (named only in a file), then traffic."""
    return (
        Action(
            argv=kubectl(
                settings,
                "-n",
                app_ns,
                "set",
                "env",
                "-f",
                INCIDENT_TARGET,
                f"FAULT_RATE={INCIDENT_FAULT_RATE}",
            ),  # fmt: skip
            title="Start the incident in one service (the file names which: find it in the "
            "logs instead)",
            timeout=60,
        ),
        # Both, so that the waits do not say which one restarts.
        _rollout(settings, app_ns, "deployment/catalog", 180),
        _rollout(settings, app_ns, "deployment/orders", 180),
        *_loadgen_run(settings, app_ns),
    )


def incident_step(settings: Settings, v: dict[str, Any], number: int) -> Step:
    app_ns = v["bookstore"]["namespace"] if "bookstore" in v else "bookstore"
    return Step(
        number=number,
        id="incident",
        title="Incident challenge: intermittent 503s",
        objective="Find a failing dependency from the logs alone, and show it with one query.",
        minutes=20,
        task=_task_incident(settings, app_ns),
        docs=f"lab-2.md#step-{number}",
        summary=(
            "Unguided: some requests now fail with 503. From the logs alone, find the dependency "
            "that "
            f"fails, and write its name and the LogQL query that shows it into "
            f"{INCIDENT_ANSWERS}."
        ),
        actions=_incident_start(settings, app_ns),
        checks=(CheckRef("lab2.incident"),),
        hints=(
            "Start from the ERROR lines, follow one trace_id through both services, and read "
            "the WARN lines of the same request too.",
            f"End the incident afterwards: `kubectl -n {app_ns} set env -f {INCIDENT_TARGET} "
            "FAULT_RATE-`.",
        ),
    )


def _task_alerting(settings: Settings, log_ns: str) -> Task:
    return Task(
        goal=(
            f"Fill in the two TODOs of {ALERT_RULES}: an error-rate rule that fires when more "
            "than a few percent of the bookstore's lines are errors, and a rule that fires when "
            "its lines stop arriving. Load them into Loki's ruler with the command below (again "
            "after each edit)."
        ),
        files=(ALERT_RULES,),
        commands=(
            Action(
                argv=kubectl(settings, "apply", "-k", EXERCISES),
                title=f"Load {ALERT_RULES} as ConfigMap `loki-alert-rules` in `{log_ns}`",
                timeout=60,
            ),
        ),
        checks=(CheckRef("lab2.alert-rules"),),
        hints=(
            "A ratio of two `sum(rate(...))` over the same selector gives the error share; "
            "compare it with a threshold such as 0.05.",
            "`count_over_time(...) == 0` never fires: with no lines there is no series to "
            "compare. absent_over_time returns 1 exactly then.",
            "Try each expression in Grafana Explore first; a rule the ruler cannot evaluate "
            "shows health `err` and its error in /prometheus/api/v1/rules.",
        ),
        solution_files=(f"{SOLUTIONS}/alert-rules.yaml",),
        pitfalls=("`== 0` absence rules that can never fire; a `for:` longer than the test.",),
    )


def _task_incident(settings: Settings, app_ns: str) -> Task:
    return Task(
        goal=(
            "Orders fail now and then. From the logs alone (Grafana Explore or Loki's API), "
            "find the dependency that fails, then write its name and the LogQL query that "
            f"shows it into {INCIDENT_ANSWERS}."
        ),
        files=(INCIDENT_ANSWERS,),
        setup=_incident_start(settings, app_ns),
        checks=(CheckRef("lab2.incident"),),
        hints=(
            "Start from the ERROR lines, follow one trace_id through both services, and read "
            "the WARN lines of the same request too.",
            "The failing dependency is named in a field of the lines that report it.",
        ),
        solution_files=(f"{SOLUTIONS}/incident.yaml",),
    )


def extra_steps(settings: Settings, v: dict[str, Any], first: int = 6) -> tuple[Step, ...]:
    """The hands-on extras after the core steps: the two that only look come first, then the
    two where the learner writes something (rules, answers)."""
    makers = (retention_step, node_step, alerting_step, incident_step)
    return tuple(make(settings, v, first + i) for i, make in enumerate(makers))


LAB = build()
