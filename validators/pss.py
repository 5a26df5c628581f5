"""Pod Security Standards, evaluated offline on manifests before a cluster ever sees them.

Why: a Deployment that violates the namespace's `restricted` level is not rejected by
`kubectl apply`; its ReplicaSet silently fails to create pods and the rollout sits at 0 ready.
Checking the YAML first turns that hour of head-scratching into a one-line message naming the
field and the fix.

The controls and their allowed values follow the Kubernetes page "Pod Security Standards"
(kubernetes.io/docs/concepts/security/pod-security-standards) and the admission plugin that
implements it (kubernetes/pod-security-admission, `policy/check_*.go`), including the versions
at which a control appeared or changed. `--version latest` applies the newest rules known here
(the plugin's source as of Kubernetes 1.37 development); `--version v1.34` evaluates what a
namespace pinned with `pod-security.kubernetes.io/enforce-version: v1.34` enforces.

    python -m validators.pss [--level restricted|baseline] [--version vX.Y|latest|pinned]
                         [--json] PATH...

Exit status: 0 all pod specs pass, 1 something violates, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from validators import files

Version = tuple[int, int]

# The newest minor at which any control changed (1.37 adds two safe sysctls). "latest" means
# "every control at its newest behaviour", as the admission plugin defines it.
LATEST: Version = (1, 37)
LEVELS = ("baseline", "restricted")


class InputError(Exception):
    """A manifest could not be read or is not shaped like a Kubernetes object."""


@dataclass(frozen=True)
class Violation:
    """One field of one pod spec that the chosen level forbids."""

    kind: str
    namespace: str
    name: str
    control: str  # the control's title on the Pod Security Standards page
    level: str  # the level that defines the control: baseline or restricted
    path: str  # field path from the object's root, e.g. spec.template.spec.containers[0]...
    found: str
    expected: str
    fix: str
    source: str = ""  # file:line of the document, when read from a file

    @property
    def object(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def __post_init__(self) -> None:
        # Kind, names and values come from the file: a message quotes them, never at any length.
        for name, value in asdict(self).items():
            object.__setattr__(self, name, files.clip(value, 500))

    def to_dict(self) -> dict[str, str]:
        return {"object": self.object, **asdict(self)}

    def __str__(self) -> str:
        return (
            f"{self.object}: {self.path} is {self.found}; Pod Security {self.level} "
            f"({self.control}) allows {self.expected}. Fix: {self.fix}"
        )


# --- reading manifests ------------------------------------------------------------------------


def _load_with_sources(paths: Iterable[str | Path]) -> list[tuple[dict, str]]:
    """(object, "file:line") for every document; every unreadable file is named in one error."""
    loaded: list[tuple[dict, str]] = []
    problems: list[str] = []
    for item in files.iter_yaml_files(list(paths)):
        try:
            if isinstance(item, files.FileProblem):
                raise item
            loaded += _objects_of(item)
        except (files.FileProblem, InputError) as e:
            problems.append(str(e))
    if problems:
        raise InputError("\n".join(problems))
    return loaded


def _objects_of(file: Path) -> list[tuple[dict, str]]:
    found = []
    for number, doc in enumerate(files.yaml_documents(file), start=1):
        if doc.value is None:
            continue
        if not isinstance(doc.value, dict):
            raise InputError(
                f"{files.clip(file)}:{doc.line}: document {number} is a "
                f"{type(doc.value).__name__}, not a Kubernetes object (a mapping with apiVersion "
                "and kind)."
            )
        found.append((doc.value, f"{file}:{doc.line}"))
    return found


def load_objects(paths: Iterable[str | Path]) -> list[dict]:
    """Every YAML document in the given files and directories (recursively, *.yaml/*.yml)."""
    return [doc for doc, _ in _load_with_sources(paths)]


# --- finding pod specs ------------------------------------------------------------------------

# Where each workload kind keeps its pod template (metadata + spec), as a path from the root.
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "PodTemplate": ("template",),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _mapping(value: Any, path: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(
            f"{path} should be a mapping, found {type(value).__name__} "
            f"{files.clip(repr(value), 80)}"
        )
    return value


def _sequence(value: Any, path: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(
            f"{path} should be a list, found {type(value).__name__} {files.clip(repr(value), 80)}"
        )
    return value


@dataclass
class _Pod:
    """One pod spec, with the paths needed to name its fields in messages."""

    spec: dict
    meta: dict
    spec_path: str
    meta_path: str
    containers: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def sc(self) -> dict:
        return _mapping(self.spec.get("securityContext"), f"{self.spec_path}.securityContext")

    @property
    def windows(self) -> bool:
        return _mapping(self.spec.get("os"), f"{self.spec_path}.os").get("name") == "windows"

    @property
    def user_namespace(self) -> bool:
        # hostUsers: false runs the pod in its own user namespace: root inside is not root
        # on the node, so 1.35+ relaxes the root-related controls for such pods.
        return self.spec.get("hostUsers") is False


def _pod(meta: Any, spec: Any, base: str) -> _Pod:
    prefix = f"{base}." if base else ""
    pod = _Pod(
        spec=_mapping(spec, f"{prefix}spec"),
        meta=_mapping(meta, f"{prefix}metadata"),
        spec_path=f"{prefix}spec",
        meta_path=f"{prefix}metadata",
    )
    for list_name in CONTAINER_LISTS:
        items = _sequence(pod.spec.get(list_name), f"{pod.spec_path}.{list_name}")
        for i, container in enumerate(items):
            path = f"{pod.spec_path}.{list_name}[{i}]"
            pod.containers.append((path, _mapping(container, path)))
    return pod


def _pod_specs(obj: dict) -> list[_Pod]:
    kind = obj.get("kind")
    if kind == "Pod":
        return [_pod(obj.get("metadata"), obj.get("spec"), "")]
    steps = TEMPLATE_PATHS.get(kind)  # type: ignore[arg-type]
    if steps is None:
        return []
    node: Any = obj
    for depth, step in enumerate(steps):
        node = _mapping(node, ".".join(steps[:depth]) or "the object").get(step)
    base = ".".join(steps)
    template = _mapping(node, base)
    if not isinstance(template.get("spec"), dict):
        raise InputError(
            f"{kind} {_name(obj)} has no pod spec at {base}.spec: a {kind} needs one "
            "(is the indentation under `template:` right?)"
        )
    return [_pod(template.get("metadata"), template.get("spec"), base)]


def _name(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return files.clip(meta.get("name", "<unnamed>"), 100)


def _flatten(objects: Iterable[dict]) -> Iterator[dict]:
    for obj in objects:
        if not isinstance(obj, dict):
            raise InputError(f"expected a Kubernetes object (a mapping), found {obj!r:.60}")
        if obj.get("kind") == "List":
            yield from _flatten(_sequence(obj.get("items"), "List.items"))
        else:
            yield obj


# --- the controls -----------------------------------------------------------------------------

# (path, found, expected, fix) for one offending field.
Finding = tuple[str, str, str, str]
CheckFn = Callable[[_Pod, Version], Iterator[Finding]]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    level: str
    since: Version
    check: CheckFn
    # Baseline controls this restricted control replaces (it is stricter on the same fields).
    overrides: tuple[str, ...] = ()


def _show(value: Any) -> str:
    return "not set" if value is None else files.clip(json.dumps(value), 200)


def _cname(container: dict) -> str:
    return f'container "{container.get("name", "?")}"'


def _container_sc(path: str, container: dict) -> dict:
    return _mapping(container.get("securityContext"), f"{path}.securityContext")


def _pod_and_containers(pod: _Pod) -> Iterator[tuple[str, str, dict]]:
    """(field path of the securityContext, who it belongs to, the securityContext)."""
    yield f"{pod.spec_path}.securityContext", "the pod", pod.sc
    for path, c in pod.containers:
        yield f"{path}.securityContext", _cname(c), _container_sc(path, c)


def check_host_process(pod: _Pod, v: Version) -> Iterator[Finding]:
    for path, who, sc in _pod_and_containers(pod):
        opts = _mapping(sc.get("windowsOptions"), f"{path}.windowsOptions")
        if opts.get("hostProcess") is True:
            yield (
                f"{path}.windowsOptions.hostProcess",
                "true",
                "false or unset",
                f"remove windowsOptions.hostProcess from {who}: a HostProcess container runs "
                "with full access to the Windows node.",
            )


def check_host_namespaces(pod: _Pod, v: Version) -> Iterator[Finding]:
    for key, shares in (("hostNetwork", "network"), ("hostPID", "PID"), ("hostIPC", "IPC")):
        if pod.spec.get(key) is True:
            yield (
                f"{pod.spec_path}.{key}",
                "true",
                "false or unset",
                f"delete `{key}: true`: it shares the node's {shares} namespace with the pod.",
            )


def check_privileged(pod: _Pod, v: Version) -> Iterator[Finding]:
    for path, c in pod.containers:
        if _container_sc(path, c).get("privileged") is True:
            yield (
                f"{path}.securityContext.privileged",
                "true",
                "false or unset",
                f"remove `privileged: true` from {_cname(c)}; grant the single capability it "
                "needs instead (a privileged container is root on the node).",
            )


BASELINE_CAPABILITIES = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)


def _caps(path: str, c: dict) -> tuple[str, dict]:
    caps_path = f"{path}.securityContext.capabilities"
    return caps_path, _mapping(_container_sc(path, c).get("capabilities"), caps_path)


def check_capabilities_baseline(pod: _Pod, v: Version) -> Iterator[Finding]:
    for path, c in pod.containers:
        caps_path, caps = _caps(path, c)
        for i, cap in enumerate(_sequence(caps.get("add"), f"{caps_path}.add")):
            if cap not in BASELINE_CAPABILITIES:
                yield (
                    f"{caps_path}.add[{i}]",
                    _show(cap),
                    "only the container runtime's default set ("
                    + ", ".join(sorted(BASELINE_CAPABILITIES))
                    + ")",
                    f"drop {cap} from capabilities.add of {_cname(c)}.",
                )


def check_host_path_volumes(pod: _Pod, v: Version) -> Iterator[Finding]:
    for i, vol in enumerate(_sequence(pod.spec.get("volumes"), f"{pod.spec_path}.volumes")):
        vol = _mapping(vol, f"{pod.spec_path}.volumes[{i}]")
        if "hostPath" in vol:
            yield (
                f"{pod.spec_path}.volumes[{i}].hostPath",
                f"set (volume {vol.get('name', '?')!r})",
                "no hostPath volumes",
                "use an emptyDir, configMap, secret or persistentVolumeClaim; a workload that "
                "truly needs the node's files (a log agent) belongs in a privileged namespace.",
            )


def check_host_ports(pod: _Pod, v: Version) -> Iterator[Finding]:
    for path, c in pod.containers:
        for j, port in enumerate(_sequence(c.get("ports"), f"{path}.ports")):
            port = _mapping(port, f"{path}.ports[{j}]")
            if port.get("hostPort") not in (None, 0):
                yield (
                    f"{path}.ports[{j}].hostPort",
                    _show(port.get("hostPort")),
                    "0 or unset",
                    f"remove hostPort from {_cname(c)} and expose it with a Service "
                    "(NodePort if it must be reached from outside).",
                )


APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
ALLOWED_PROFILE_TYPES = ("RuntimeDefault", "Localhost")


def check_apparmor(pod: _Pod, v: Version) -> Iterator[Finding]:
    annotations = _mapping(pod.meta.get("annotations"), f"{pod.meta_path}.annotations")
    for key, value in sorted(annotations.items()):
        if not str(key).startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        if value in ("", None, "runtime/default") or str(value).startswith("localhost/"):
            continue
        yield (
            f"{pod.meta_path}.annotations['{key}']",
            _show(value),
            '"runtime/default", "localhost/<profile>" or unset',
            "delete the annotation (the runtime default profile then applies) or name a "
            "localhost/ profile.",
        )
    for path, who, sc in _pod_and_containers(pod):
        profile = sc.get("appArmorProfile")
        if profile is None:
            continue
        profile = _mapping(profile, f"{path}.appArmorProfile")
        if profile.get("type") not in ALLOWED_PROFILE_TYPES:
            yield (
                f"{path}.appArmorProfile.type",
                _show(profile.get("type")),
                '"RuntimeDefault", "Localhost" or no appArmorProfile',
                f"set appArmorProfile.type: RuntimeDefault on {who} (Unconfined turns "
                "AppArmor off).",
            )


def _selinux_types(v: Version) -> frozenset[str]:
    types = {"", "container_t", "container_init_t", "container_kvm_t"}
    if v >= (1, 31):
        types.add("container_engine_t")
    return frozenset(types)


def check_selinux(pod: _Pod, v: Version) -> Iterator[Finding]:
    allowed = _selinux_types(v)
    for path, who, sc in _pod_and_containers(pod):
        opts = sc.get("seLinuxOptions")
        if opts is None:
            continue
        opts = _mapping(opts, f"{path}.seLinuxOptions")
        if opts.get("type", "") not in allowed:
            yield (
                f"{path}.seLinuxOptions.type",
                _show(opts.get("type")),
                "unset or one of " + ", ".join(sorted(t for t in allowed if t)),
                f"remove seLinuxOptions.type from {who} (the runtime assigns container_t).",
            )
        for key in ("user", "role"):
            if opts.get(key):
                yield (
                    f"{path}.seLinuxOptions.{key}",
                    _show(opts.get(key)),
                    "unset or empty",
                    f"remove seLinuxOptions.{key} from {who}: custom SELinux users and roles "
                    "are forbidden.",
                )


def _proc_mount(pod: _Pod) -> Iterator[Finding]:
    for path, c in pod.containers:
        value = _container_sc(path, c).get("procMount")
        if value not in (None, "Default"):
            yield (
                f"{path}.securityContext.procMount",
                _show(value),
                '"Default" or unset',
                f"remove procMount from {_cname(c)}: Unmasked exposes the host's /proc paths.",
            )


def check_proc_mount_baseline(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 35) and pod.user_namespace:
        return
    yield from _proc_mount(pod)


def check_proc_mount_restricted(pod: _Pod, v: Version) -> Iterator[Finding]:
    yield from _proc_mount(pod)


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def check_seccomp_baseline(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v < (1, 19):  # before seccompProfile existed, the profile was an annotation
        annotations = _mapping(pod.meta.get("annotations"), f"{pod.meta_path}.annotations")
        keys = [SECCOMP_POD_ANNOTATION]
        keys += [SECCOMP_CONTAINER_ANNOTATION + str(c.get("name")) for _, c in pod.containers]
        for key in keys:
            value = annotations.get(key)
            if value is None or value in ("runtime/default", "docker/default"):
                continue
            if str(value).startswith("localhost/"):
                continue
            yield (
                f"{pod.meta_path}.annotations['{key}']",
                _show(value),
                '"runtime/default", "docker/default", "localhost/<profile>" or unset',
                "set the annotation to runtime/default.",
            )
        return
    for path, who, sc in _pod_and_containers(pod):
        profile = sc.get("seccompProfile")
        if profile is None:
            continue
        profile = _mapping(profile, f"{path}.seccompProfile")
        if profile.get("type") not in ALLOWED_PROFILE_TYPES:
            yield (
                f"{path}.seccompProfile.type",
                _show(profile.get("type")),
                '"RuntimeDefault", "Localhost" or unset',
                f"set seccompProfile.type: RuntimeDefault on {who}; Unconfined disables the "
                "syscall filter.",
            )


def check_seccomp_restricted(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 25) and pod.windows:
        return
    pod_profile = _mapping(
        pod.sc.get("seccompProfile"), f"{pod.spec_path}.securityContext.seccompProfile"
    )
    pod_ok = pod_profile.get("type") in ALLOWED_PROFILE_TYPES
    for path, who, sc in _pod_and_containers(pod):
        profile = sc.get("seccompProfile")
        if profile is None:
            if who != "the pod" and not pod_ok:
                yield (
                    f"{path}.seccompProfile",
                    "not set (and the pod sets no valid seccompProfile)",
                    'type "RuntimeDefault" or "Localhost" on the pod or on every container',
                    f"set spec.securityContext.seccompProfile.type: RuntimeDefault once for "
                    f"the whole pod (or on {who}).",
                )
            continue
        profile = _mapping(profile, f"{path}.seccompProfile")
        if profile.get("type") not in ALLOWED_PROFILE_TYPES:
            yield (
                f"{path}.seccompProfile.type",
                _show(profile.get("type")),
                '"RuntimeDefault" or "Localhost"',
                f"set seccompProfile.type: RuntimeDefault on {who}.",
            )


def _safe_sysctls(v: Version) -> frozenset[str]:
    names = {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
    if v >= (1, 27):
        names.add("net.ipv4.ip_local_reserved_ports")
    if v >= (1, 29):
        names |= {
            "net.ipv4.tcp_keepalive_time",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_keepalive_intvl",
            "net.ipv4.tcp_keepalive_probes",
        }
    if v >= (1, 32):
        names |= {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
    if v >= (1, 37):
        names |= {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}
    return frozenset(names)


def check_sysctls(pod: _Pod, v: Version) -> Iterator[Finding]:
    allowed = _safe_sysctls(v)
    path = f"{pod.spec_path}.securityContext.sysctls"
    for i, item in enumerate(_sequence(pod.sc.get("sysctls"), path)):
        name = _mapping(item, f"{path}[{i}]").get("name")
        if name not in allowed:
            yield (
                f"{path}[{i}].name",
                _show(name),
                "one of the safe, pod-namespaced sysctls: " + ", ".join(sorted(allowed)),
                f"remove {name} from the pod (it is not isolated from other pods on the node).",
            )


PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HANDLERS = ("httpGet", "tcpSocket")


def check_host_probes(pod: _Pod, v: Version) -> Iterator[Finding]:
    for path, c in pod.containers:
        places: list[tuple[str, Any]] = [(f"{path}.{p}", c.get(p)) for p in PROBES]
        lifecycle = _mapping(c.get("lifecycle"), f"{path}.lifecycle")
        places += [(f"{path}.lifecycle.{h}", lifecycle.get(h)) for h in ("postStart", "preStop")]
        for where, handler in places:
            handler = _mapping(handler, where)
            for kind in HANDLERS:
                host = _mapping(handler.get(kind), f"{where}.{kind}").get("host")
                if host:
                    yield (
                        f"{where}.{kind}.host",
                        _show(host),
                        "unset or empty (the kubelet then probes the pod's own IP)",
                        f"delete `host` from {_cname(c)}'s {kind}: a host lets the kubelet be "
                        "pointed at any address, inside or outside the cluster.",
                    )


RESTRICTED_VOLUME_SOURCES = frozenset(
    [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ]
)


def check_volume_types(pod: _Pod, v: Version) -> Iterator[Finding]:
    for i, vol in enumerate(_sequence(pod.spec.get("volumes"), f"{pod.spec_path}.volumes")):
        vol = _mapping(vol, f"{pod.spec_path}.volumes[{i}]")
        # A volume with no source is defaulted to emptyDir by the API server.
        for source in sorted(k for k in vol if k != "name"):
            if source not in RESTRICTED_VOLUME_SOURCES:
                yield (
                    f"{pod.spec_path}.volumes[{i}].{source}",
                    f"set (volume {vol.get('name', '?')!r})",
                    "only " + ", ".join(sorted(RESTRICTED_VOLUME_SOURCES)),
                    f"replace the {source} volume with a persistentVolumeClaim (the cluster "
                    "admin defines the storage) or an emptyDir for scratch space.",
                )


def check_privilege_escalation(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 25) and pod.windows:
        return
    for path, c in pod.containers:
        value = _container_sc(path, c).get("allowPrivilegeEscalation")
        if value is not False:
            yield (
                f"{path}.securityContext.allowPrivilegeEscalation",
                _show(value),
                "false (it must be set explicitly)",
                f"set securityContext.allowPrivilegeEscalation: false on {_cname(c)}.",
            )


def check_run_as_non_root(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 35) and pod.user_namespace:
        return
    pod_value = pod.sc.get("runAsNonRoot")
    if pod_value is not None and pod_value is not True:
        yield (
            f"{pod.spec_path}.securityContext.runAsNonRoot",
            _show(pod_value),
            "true",
            "set spec.securityContext.runAsNonRoot: true and run the image as a non-zero UID.",
        )
    for path, c in pod.containers:
        value = _container_sc(path, c).get("runAsNonRoot")
        if value is None and pod_value is None:
            yield (
                f"{path}.securityContext.runAsNonRoot",
                "not set (nor at the pod level)",
                "true on the pod or on every container",
                "set spec.securityContext.runAsNonRoot: true once for the whole pod "
                f"(or on {_cname(c)}).",
            )
        elif value is not None and value is not True:
            yield (
                f"{path}.securityContext.runAsNonRoot",
                _show(value),
                "true or unset (when the pod sets true)",
                f"set runAsNonRoot: true on {_cname(c)} (or delete it to inherit the pod's).",
            )


def check_run_as_user(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 35) and pod.user_namespace:
        return
    for path, who, sc in _pod_and_containers(pod):
        value = sc.get("runAsUser")
        if value == 0 and not isinstance(value, bool):
            yield (
                f"{path}.runAsUser",
                "0",
                "a non-zero UID or unset",
                f"set runAsUser on {who} to the image's non-root UID (e.g. 10001).",
            )


def check_capabilities_restricted(pod: _Pod, v: Version) -> Iterator[Finding]:
    if v >= (1, 25) and pod.windows:
        return
    for path, c in pod.containers:
        caps_path, caps = _caps(path, c)
        drop = _sequence(caps.get("drop"), f"{caps_path}.drop")
        if "ALL" not in drop:
            yield (
                f"{caps_path}.drop",
                _show(drop or None),
                'a list containing "ALL"',
                f'set securityContext.capabilities.drop: ["ALL"] on {_cname(c)}.',
            )
        for i, cap in enumerate(_sequence(caps.get("add"), f"{caps_path}.add")):
            if cap != "NET_BIND_SERVICE":
                yield (
                    f"{caps_path}.add[{i}]",
                    _show(cap),
                    'only "NET_BIND_SERVICE"',
                    f"remove {cap} from capabilities.add of {_cname(c)}.",
                )


# The table: (id, title on the page, level, first version, check, baseline ids it overrides).
CONTROLS: tuple[Control, ...] = (
    Control("hostProcess", "HostProcess", "baseline", (1, 0), check_host_process),
    Control("hostNamespaces", "Host Namespaces", "baseline", (1, 0), check_host_namespaces),
    Control("privileged", "Privileged Containers", "baseline", (1, 0), check_privileged),
    Control("capabilities", "Capabilities", "baseline", (1, 0), check_capabilities_baseline),
    Control("hostPathVolumes", "HostPath Volumes", "baseline", (1, 0), check_host_path_volumes),
    Control("hostPorts", "Host Ports", "baseline", (1, 0), check_host_ports),
    Control("appArmor", "AppArmor", "baseline", (1, 0), check_apparmor),
    Control("seLinux", "SELinux", "baseline", (1, 0), check_selinux),
    Control("procMount", "/proc Mount Type", "baseline", (1, 0), check_proc_mount_baseline),
    Control("seccomp", "Seccomp", "baseline", (1, 0), check_seccomp_baseline),
    Control("sysctls", "Sysctls", "baseline", (1, 0), check_sysctls),
    Control(
        "hostProbesAndLifecycle",
        "Host Probes / Lifecycle Hooks",
        "baseline",
        (1, 34),
        check_host_probes,
    ),
    Control(
        "volumeTypes",
        "Volume Types",
        "restricted",
        (1, 0),
        check_volume_types,
        ("hostPathVolumes",),
    ),
    Control(
        "privilegeEscalation",
        "Privilege Escalation",
        "restricted",
        (1, 8),
        check_privilege_escalation,
    ),
    Control("runAsNonRoot", "Running as Non-root", "restricted", (1, 0), check_run_as_non_root),
    Control("runAsUser", "Running as Non-root user", "restricted", (1, 23), check_run_as_user),
    Control(
        "seccompRestricted",
        "Seccomp",
        "restricted",
        (1, 19),
        check_seccomp_restricted,
        ("seccomp",),
    ),
    Control(
        "capabilitiesRestricted",
        "Capabilities",
        "restricted",
        (1, 22),
        check_capabilities_restricted,
        ("capabilities",),
    ),
    Control(
        "procMountRestricted",
        "/proc Mount Type",
        "restricted",
        (1, 35),
        check_proc_mount_restricted,
        ("procMount",),
    ),
)


def active_controls(level: str, version: Version) -> list[Control]:
    """The controls a namespace at `level` with this enforce-version applies, in page order."""
    if level not in LEVELS:
        raise InputError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    levels = LEVELS[: LEVELS.index(level) + 1]
    active = [c for c in CONTROLS if c.level in levels and c.since <= version]
    replaced = {o for c in active for o in c.overrides}
    return [c for c in active if c.id not in replaced]


def parse_version(text: str) -> Version:
    """'latest' -> LATEST; 'v1.34', '1.34' and 'v1.34.0' -> (1, 34); newer clamps to LATEST."""
    if text == "latest":
        return LATEST
    if text == "pinned":
        return parse_version(pinned_version())
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    if not match or int(match.group(1)) != 1:
        raise InputError(f"unknown version {text!r}: use latest, pinned or v1.N (e.g. v1.34)")
    return min((1, int(match.group(2))), LATEST)


def pinned_version() -> str:
    """The Kubernetes minor pinned in versions.toml, as the namespace's enforce-version."""
    from labconfig.versions import load_versions

    major, minor, *_ = str(load_versions()["kubernetes"]["version"]).lstrip("v").split(".")
    return f"v{major}.{minor}"


def _identity(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), _name(obj)


def evaluate(
    objects: Iterable[dict], level: str = "restricted", version: str = "latest"
) -> list[Violation]:
    """Every violation of `level` in the pod specs of these objects, in document order.

    Objects that hold no pod spec (Services, ConfigMaps, ...) are ignored; a workload whose
    pod template is missing or malformed raises InputError.
    """
    parsed = parse_version(version)
    controls = active_controls(level, parsed)
    violations: list[Violation] = []
    for obj in _flatten(objects):
        kind, namespace, name = _identity(obj)
        for pod in _pod_specs(obj):
            for control in controls:
                for path, found, expected, fix in control.check(pod, parsed):
                    violations.append(
                        Violation(
                            kind, namespace, name, control.title, control.level, path, found,
                            expected, fix,
                        )
                    )  # fmt: skip
    return violations


def count_pod_specs(objects: Iterable[dict]) -> int:
    return sum(len(_pod_specs(obj)) for obj in _flatten(objects))


# --- command line -----------------------------------------------------------------------------


def _report_text(violations: list[Violation], checked: int, level: str, version: str) -> str:
    label = f"Pod Security {level} ({'Kubernetes ' + version if version != 'latest' else version})"
    if not violations:
        if checked == 0:
            return f"no pod specs found: nothing to check against {label}."
        return f"ok: {checked} pod spec(s) pass {label}."
    lines: list[str] = []
    current = None
    for v in violations:
        header = f"{v.object}" + (f"  ({v.source})" if v.source else "")
        if header != current:
            lines.append(f"\nFAIL {header}")
            current = header
        lines += [
            f"  [{v.level}: {v.control}] {v.path}",
            f"      found:    {v.found}",
            f"      expected: {v.expected}",
            f"      fix:      {v.fix}",
        ]
    objects = len({(v.source, v.object) for v in violations})
    lines.append(
        f"\n{len(violations)} violation(s) in {objects} object(s); {checked} pod spec(s) "
        f"checked against {label}. A namespace enforcing this level would refuse these pods: "
        "the ReplicaSet shows FailedCreate and the Deployment stays at 0 ready."
    )
    return "\n".join(lines).lstrip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m validators.pss",
        description="Check Kubernetes manifests against the Pod Security Standards.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or directories")
    parser.add_argument("--level", choices=LEVELS, default="restricted")
    parser.add_argument(
        "--version",
        default="latest",
        help="latest (default), pinned (versions.toml [kubernetes].version) or v1.N",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    files.safe_output()
    try:
        version = pinned_version() if args.version == "pinned" else args.version
        parse_version(version)
        loaded = _load_with_sources(args.paths)
        violations: list[Violation] = []
        checked = 0
        for obj, source in loaded:
            checked += count_pod_specs([obj])
            found = evaluate([obj], level=args.level, version=version)
            violations += [replace(v, source=source) for v in found]
    except InputError as e:
        print(f"validators.pss: {e}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            "level": args.level,
            "version": version,
            "pod_specs_checked": checked,
            "ok": not violations,
            "violations": [v.to_dict() for v in violations],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(_report_text(violations, checked, args.level, version))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
