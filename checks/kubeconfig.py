"""Reading a kubeconfig without running anything it names, and deciding where it may connect.

The `kubernetes` client runs a kubeconfig's `users[].user.exec` command, and the gcp
auth-provider's `cmd-path`, while it *loads* the file, with the caller's environment and
credentials (kubernetes-client/python: config/kube_config.py, `ExecProvider(...).run()` in
`_load_from_exec_plugin`, `CommandTokenSource` in `_refresh_credentials_with_cmd_path`). A
grader loading a learner's file would run the learner's program as the instructor. So every
kubeconfig the checkers use is read here as plain YAML first and reduced to the one context it
will use, with every file it names inlined; only that vetted dict ever reaches the client.

Two policies:
- `LEARNER` (a learner's own `pytest checks`): no exec and no auth-provider, files anywhere,
  any server. The lab's kind kubeconfig embeds everything and needs neither plugin.
- `grading_policy(...)` (the instructor's grader): also the server, and a `proxy-url`, must be
  on loopback or in the instructor's allow-list, and `certificate-authority`, `client-certificate`,
  `client-key` and `tokenFile` must be regular files inside the class folder (a path elsewhere
  would read one of the instructor's own keys or tokens and send it to the learner's server).
  `insecure-skip-tls-verify` stays allowed: it only weakens the learner's own connection, and the
  grader sends the learner's credentials, never the instructor's.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

MAX_BYTES = 1 << 20  # a kind kubeconfig is ~6 KB; anything near 1 MiB is not a kubeconfig

# Field names from client-go's clientcmd/api/v1 types (Cluster, AuthInfo), which kubectl and the
# python client share. Only what the python client reads is kept in the vetted copy.
FILE_FIELDS = {  # file field -> the field that holds the same content inline
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
    "tokenFile": "token",
}
CLUSTER_KEEP = ("server", "certificate-authority-data", "insecure-skip-tls-verify",
                "tls-server-name", "proxy-url")  # fmt: skip
USER_KEEP = ("token", "client-certificate-data", "client-key-data", "username", "password")
RUNS_CODE = ("exec", "auth-provider")


class KubeconfigError(ValueError):
    """The file is not a usable kubeconfig; the message says what is wrong and what to do."""


class KubeconfigRefused(KubeconfigError):
    """The kubeconfig asks for something the checkers never do (run a program, leave the lab)."""


@dataclass(frozen=True)
class Policy:
    """What a kubeconfig may ask for. `servers` None: any server; else loopback plus these
    (host, port) pairs (port None: any port). `files_under` None: files anywhere."""

    servers: frozenset[tuple[str, int | None]] | None = None
    files_under: Path | None = None
    every_user: bool = False  # refuse a plugin on any user, not only on the one in use


LEARNER = Policy()


def grading_policy(folder: Path, allow_servers: Iterable[str] = (), any_server: bool = False):
    """The grader's policy for the kubeconfigs in `folder`."""
    servers = None if any_server else frozenset(parse_server(s) for s in allow_servers)
    return Policy(servers=servers, files_under=Path(os.path.realpath(folder)), every_user=True)


def parse_server(text: str) -> tuple[str, int | None]:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or a URL, as (lowercase host, port or None)."""
    text = text.strip()
    try:
        return str(ipaddress.ip_address(text.strip("[]"))), None
    except ValueError:
        pass
    parts = urlsplit(text if "://" in text else f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or parts.path not in ("", "/"):
        raise KubeconfigError(
            f"{text!r} is not a server: write HOST or HOST:PORT, e.g. 10.0.0.5:6443"
        )
    return _norm_host(parts.hostname), port


def read_allow_file(path: Path) -> list[str]:
    """One server per line; blank lines and `#` comments ignored."""
    lines = Path(path).read_text().splitlines()
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def is_loopback(host: str) -> bool:
    host = _norm_host(host)
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


# scheme://host[:port][/path] and nothing else: no user info, backslash, space or fragment that
# two URL parsers (ours and urllib3's) could read as two different hosts.
PLAIN_URL = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[\w.~/-]*)?")


def server_allowed(url: str, policy: Policy) -> bool:
    if policy.servers is None:
        return True
    if not PLAIN_URL.fullmatch(url):
        return False
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    host = _norm_host(parts.hostname or "")
    if not host:
        return False
    return is_loopback(host) or (host, port) in policy.servers or (host, None) in policy.servers


def read(path: Path) -> dict:
    """The kubeconfig as a mapping (plain YAML: nothing is resolved or run)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise KubeconfigError(f"cannot read {path.name}: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise KubeconfigError(f"{path.name} is over {MAX_BYTES // 1024} KiB: not a kubeconfig")
    try:
        doc = yaml.safe_load(raw)
    except RecursionError:
        raise KubeconfigError(f"{path.name} is nested too deeply to be a kubeconfig") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise KubeconfigError(f"{path.name} is not valid YAML{at}: {problem}") from None
    if not isinstance(doc, dict):
        raise KubeconfigError(
            f"{path.name} is not a kubeconfig (a YAML mapping with clusters, users, contexts); "
            "it holds " + type(doc).__name__
        )
    return doc


def vet(doc: dict, *, source: Path, policy: Policy = LEARNER, context: str | None = None):
    """A self-contained kubeconfig with only the context in use, or KubeconfigRefused/Error.

    The grader checks every user for plugins, not only the active one: a learner's file that
    carries a program is refused as a whole, so what is graded never depends on which context
    happens to be set. A learner's own run checks the user it will use (their ~/.kube/config
    may well hold a cloud user beside the lab's).
    """
    users = _named(doc, "users")
    for name, entry in users.items():
        user = entry.get("user") or {}
        if not isinstance(user, dict):
            raise KubeconfigError(f"user {name!r} is not a mapping")
        for key in RUNS_CODE if policy.every_user else ():
            if key in user:
                raise KubeconfigRefused(_runs_code_message(name, key, user[key]))
    contexts, clusters = _named(doc, "contexts"), _named(doc, "clusters")
    current = context or doc.get("current-context")
    if current is None:
        known = ", ".join(map(str, contexts)) or "none"
        raise KubeconfigError(f"no `current-context` is set (contexts in the file: {known})")
    if not isinstance(current, str) or current not in contexts:
        known = ", ".join(map(str, contexts)) or "none"
        raise KubeconfigError(f"context {current!r} is not in the file (contexts: {known})")
    ctx = contexts[current].get("context") or {}
    if not isinstance(ctx, dict) or str(ctx.get("cluster")) not in clusters:
        raise KubeconfigError(f"context {current!r} names no cluster defined in the file")
    cname, uname = str(ctx["cluster"]), ctx.get("user")
    cluster = _kept(clusters[cname].get("cluster"), CLUSTER_KEEP, source, policy)
    server = cluster.get("server")
    if not isinstance(server, str) or urlsplit(server).scheme not in ("http", "https"):
        raise KubeconfigError(f"cluster {cname!r} has no https:// server address")
    for field in ("server", "proxy-url"):
        url = cluster.get(field)
        if url is not None and not (isinstance(url, str) and server_allowed(url, policy)):
            raise KubeconfigRefused(_not_a_lab_message(field, url))
    vetted = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [{"name": cname, "cluster": cluster}],
        "contexts": [{"name": current, "context": {"cluster": cname}}],
        "users": [],
    }
    if uname is not None:
        if str(uname) not in users:
            raise KubeconfigError(f"context {current!r} names user {uname!r}, not in the file")
        raw = users[str(uname)].get("user") or {}
        for key in RUNS_CODE:
            if key in raw:
                raise KubeconfigRefused(_runs_code_message(str(uname), key, raw[key]))
        user = _kept(raw, USER_KEEP, source, policy)
        vetted["users"] = [{"name": str(uname), "user": user}]
        vetted["contexts"][0]["context"]["user"] = str(uname)
    return vetted


def load_client_config(path: Path, client_configuration, *, context=None, policy=LEARNER):
    """Fill a kubernetes.client.Configuration from a vetted copy of the kubeconfig at `path`."""
    from kubernetes import config  # imported late: the grader vets files without the client

    vetted = vet(read(path), source=Path(path), policy=policy, context=context)
    config.load_kube_config_from_dict(
        vetted, client_configuration=client_configuration, persist_config=False
    )


# -- helpers -------------------------------------------------------------------------------
def _norm_host(host: str) -> str:
    host = host.strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _named(doc: dict, key: str) -> dict[str, dict]:
    entries = doc.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KubeconfigError(f"`{key}` is not a list of entries with a name")
    return {str(e.get("name")): e for e in entries}


def _kept(section, keep: tuple[str, ...], source: Path, policy: Policy) -> dict:
    """`keep` fields of a cluster/user section, every file field read and inlined."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise KubeconfigError("a cluster or user entry is not a mapping")
    out = {k: section[k] for k in keep if k in section}
    for key, value in out.items():  # scalars only: an aliased structure never reaches the client
        wanted = bool if key == "insecure-skip-tls-verify" else str
        if not isinstance(value, wanted):
            raise KubeconfigError(f"`{key}` is not a {wanted.__name__}")
    for file_field, data_field in FILE_FIELDS.items():
        if data_field not in keep or file_field not in section:
            continue
        content = _read_referenced(section[file_field], file_field, source, policy)
        # client-go (tools/clientcmd/api/v1/types.go, AuthInfo and Cluster): `*-data` overrides
        # its file, while a readable `tokenFile` takes precedence over `token`.
        if file_field == "tokenFile":
            out[data_field] = content.decode("utf-8", "replace").strip()
        elif data_field not in section:
            out[data_field] = base64.b64encode(content).decode()
    return out


def _read_referenced(value, field: str, source: Path, policy: Policy) -> bytes:
    if not isinstance(value, str) or not value:
        raise KubeconfigError(f"`{field}` is not a file path")
    path = Path(os.path.expanduser(value)) if policy.files_under is None else Path(value)
    if not path.is_absolute():
        path = source.parent / path  # kubectl resolves relative paths from the file's folder
    real = Path(os.path.realpath(path))
    if policy.files_under is not None and not real.is_relative_to(policy.files_under):
        raise KubeconfigRefused(
            f"`{field}: {value}` points outside the class folder; the grader reads no file of "
            "this machine for a learner. Ask for a kubeconfig with the data embedded "
            f"(`{FILE_FIELDS[field]}`), as kind writes it."
        )
    if not real.is_file():
        raise KubeconfigError(f"`{field}: {value}` is not a readable file")
    with real.open("rb") as f:
        content = f.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise KubeconfigError(f"`{field}: {value}` is over {MAX_BYTES // 1024} KiB")
    return content


def _runs_code_message(user: str, key: str, value) -> str:
    what = value.get("command") if key == "exec" and isinstance(value, dict) else None
    if key == "auth-provider" and isinstance(value, dict):
        what = value.get("name")
    named = f" ({str(what)[:80]!r})" if what else ""
    return (
        f"user {user!r} has `{key}`{named}: loading it would run a program on this machine. "
        "The checkers never run programs named in a kubeconfig. Use the lab's own kubeconfig "
        "(kind writes one with embedded certificates: `kind get kubeconfig --name "
        "lab2-logging`) or one with a token."
    )


def _not_a_lab_message(field: str, url) -> str:
    return (
        f"`{field}: {str(url)[:200]}` is not a lab cluster: only loopback addresses (kind) and "
        "servers the instructor allows are graded. If this is a learner's cluster, grade again "
        "with `--allow-server HOST[:PORT]` (or `--allow-servers-file FILE`); "
        "`--allow-any-server` lifts the check."
    )
