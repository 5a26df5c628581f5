"""`python -m classroom COMMAND` (nox -s class -- COMMAND): a class on one shared cluster.

Every command takes the roster (a CSV with an `id` column) except `down`; the ones that touch the
cluster take the instructor's `--kubeconfig`. Files go under `--out` (default .class/,
git-ignored: it holds the tenants' passwords and the learners' kubeconfigs).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from checks import catalogue
from checks.kube import Kube, KubeError
from classroom.cluster import ClassCluster, ClassClusterError
from classroom.commands import (
    Outcome,
    down,
    label_logging_namespaces,
    logging_namespaces,
    status,
    up,
    write_kubeconfigs,
)
from classroom.grade import CLASS_CHECKERS, grade_class, write_class_gradebook
from classroom.grafana import grafana_objects, setup_objects_to_remove
from classroom.grafana import set_up as grafana_set_up
from classroom.isolation import grafana_probes, kube_probes, loki_probes
from classroom.learners import bookstore_objects, learner_objects
from classroom.plan import make_plan, render_plan
from classroom.roster import NAMESPACE_PREFIX, RosterError, load_roster
from classroom.stack import helm_commands
from classroom.values import alloy_overlay, new_passwords, tenants_values

DEFAULT_OUT = Path(".class")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the Alloy pipeline) as readable `|` blocks."""


_BlockDumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)
TENANTS_FILE = "loki-tenants.yaml"
GRAFANA_SETUP_FILE = "grafana-setup.yaml"


COMMANDS = {
    "plan": "what the roster needs and what `up` would create; touches nothing",
    "render": "write each learner's objects and the class's Helm values under --out",
    "up": "create or update every learner's namespace and bookstore, then the shared stack",
    "kubeconfigs": "write one kubeconfig per learner (a token that expires) under --out",
    "status": "a readiness row per learner",
    "grade": "run the live checkers for every learner (their namespace and tenant) in parallel",
    "down": "delete the class's learner namespaces (found by label) and nothing else",
    "isolation": "prove with the learners' own credentials that none can reach another",
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name not in ("down",):
            p.add_argument("--roster", required=True, type=Path, help="CSV with an `id` column")
        p.add_argument("--class", dest="class_name", default="lab2", help="class label value")
        if name in ("plan", "render", "up"):
            p.add_argument("--nodes", type=int, default=3, help="worker nodes (one agent each)")
        if name in ("render", "up", "kubeconfigs"):
            p.add_argument("--out", type=Path, default=DEFAULT_OUT)
        if name == "isolation":
            p.add_argument("--kubeconfigs", required=True, type=Path, help="from `kubeconfigs`")
            p.add_argument("--loki-url", required=True, help="the gateway, as learners reach it")
            p.add_argument("--grafana-url", help="the shared Grafana, as learners reach it")
            p.add_argument("--tenants", type=Path, default=DEFAULT_OUT / TENANTS_FILE)
        if name in ("up", "kubeconfigs", "status", "grade", "down"):
            p.add_argument("--kubeconfig", required=True, type=Path, help="the instructor's")
        if name == "up":
            p.add_argument("--skip-stack", action="store_true", help="learners only, no helm")
        if name == "kubeconfigs":
            p.add_argument("--hours", type=float, default=8.0, help="token lifetime")
        if name == "grade":
            _grade_arguments(p)
    return parser.parse_args(argv)


def _grade_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=25, help="learners graded at once (default 25)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per learner (default 300)")
    p.add_argument("--out", type=Path, default=Path("gradebook"), help="default ./gradebook")
    p.add_argument("--checker", action="append", default=[], metavar="ID",
                   help=f"only these checkers (default: {', '.join(CLASS_CHECKERS)})")  # fmt: skip
    p.add_argument("--loki-url", default=None, metavar="URL",
                   help="Loki as the grader reaches it, e.g. a `kubectl port-forward` to the Loki "
                   "pod (default: the API server's service proxy)")  # fmt: skip


def _grade(args, learners) -> int:
    if not (args.timeout > 0 and args.jobs >= 1):
        print("error: --timeout must be positive and --jobs at least 1", file=sys.stderr)
        return 2
    unknown = [c for c in args.checker if c not in catalogue.ALL_BY_ID]
    if unknown:
        print(f"error: unknown checker id(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not args.kubeconfig.is_file():
        print(f"error: {args.kubeconfig} is not a file (the instructor's kubeconfig)",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"grading {len(learners)} learner(s), {args.jobs} at once, {args.timeout:.0f} s each...",
          flush=True)  # fmt: skip
    graded, specs = grade_class(
        learners, args.kubeconfig, args.out, jobs=args.jobs, timeout=args.timeout,
        checkers=args.checker, loki_url=args.loki_url,
    )  # fmt: skip
    paths = write_class_gradebook(graded, args.out, specs)
    for g in graded:
        extra = f"  ({g.note[:100]})" if g.note else ""
        print(f"  {g.learner:<24} {g.status:<13} {g.score['total']:>4}/{g.score['max']:<4}{extra}")
    print("gradebook: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _known_passwords(path: Path) -> dict[str, str]:
    """Passwords already handed out stay valid when the roster grows."""
    if not path.is_file():
        return {}
    tenants = ((yaml.safe_load(path.read_text()) or {}).get("loki") or {}).get("tenants") or []
    return {
        t["name"].removeprefix(NAMESPACE_PREFIX): t["password"] for t in tenants if "password" in t
    }


def render(learners, class_name: str, out: Path) -> list[Path]:
    (out / "learners").mkdir(parents=True, exist_ok=True)
    written = []
    for lrn in learners:
        path = out / "learners" / f"{lrn.id}.yaml"
        objects = learner_objects(lrn, class_name) + bookstore_objects(lrn)
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        written.append(path)
    alloy = out / "alloy-class-values.yaml"
    alloy.write_text(yaml.dump(alloy_overlay(), Dumper=_BlockDumper, sort_keys=False))
    tenants = out / TENANTS_FILE
    passwords = new_passwords(learners, _known_passwords(tenants))
    _write_private(tenants, yaml.safe_dump(tenants_values(learners, passwords), sort_keys=False))
    # What `up` applies for the shared Grafana, to read before it does (a Secret: private too).
    grafana = out / GRAFANA_SETUP_FILE
    objects = grafana_objects(learners, passwords, class_name)
    _write_private(grafana, yaml.safe_dump_all(objects, sort_keys=False))
    return [*written, alloy, tenants, grafana]


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file with wider permissions is narrowed too
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _print_rows(rows: list[Outcome]) -> int:
    width = max((len(r.learner) for r in rows), default=7)
    for r in rows:
        print(f"  {r.learner:{width}}  {'ok ' if r.ok else 'NO '} {r.detail}")
    bad = [r for r in rows if not r.ok]
    print(f"{len(rows) - len(bad)}/{len(rows)} learners ok")
    return 1 if bad else 0


def _cluster(kubeconfig: Path) -> ClassCluster:
    return ClassCluster(Kube(kubeconfig).http_client())


def _up(args, learners, cluster: ClassCluster, run=subprocess.call, sleep=None) -> int:
    render(learners, args.class_name, args.out)
    label_logging_namespaces(cluster, logging_namespaces())
    print(f"learners ({len(learners)}):")
    status = _print_rows(up(cluster, learners, args.class_name))
    if args.skip_stack:
        return status
    for command in helm_commands(args.kubeconfig, args.out):
        print("$ " + shlex.join(command), flush=True)
        if run(command) != 0:
            print("error: the shared stack failed at the command above; fix it and run `up` "
                  "again (it is idempotent)", file=sys.stderr)  # fmt: skip
            return 1
    passwords = _known_passwords(args.out / TENANTS_FILE)
    objects = grafana_objects(learners, passwords, args.class_name)
    ok, detail = grafana_set_up(cluster, objects, **({"sleep": sleep} if sleep else {}))
    print(f"grafana: {'ok ' if ok else 'NO '} {detail}")
    return status if ok else 1


def _isolation(
    args, learners, api_for=None, gateway: httpx.Client | None = None, grafana=None
) -> int:
    """Each learner against the next one on the roster (a ring: every learner is probed and is
    a target once), with their own kubeconfig and Loki password."""
    if len(learners) < 2:
        print("error: isolation needs at least two learners on the roster", file=sys.stderr)
        return 2
    passwords = _known_passwords(args.tenants)
    missing = [lrn.id for lrn in learners if lrn.id not in passwords]
    if missing:
        print(f"error: {args.tenants} has no password for {', '.join(missing)}", file=sys.stderr)
        return 2
    api_for = api_for or (lambda lrn: Kube(args.kubeconfigs / f"{lrn.id}.kubeconfig").http_client())
    gateway = gateway or httpx.Client(base_url=args.loki_url, timeout=30)
    if grafana is None and getattr(args, "grafana_url", None):
        grafana = httpx.Client(base_url=args.grafana_url, timeout=30)
    probes = []
    for me, other in zip(learners, learners[1:] + learners[:1], strict=True):
        probes += kube_probes(me, other, api_for(me))
        probes += loki_probes(me, passwords[me.id], other, gateway)
        if grafana is not None:
            probes += grafana_probes(me, passwords[me.id], other, grafana)
    for p in probes:
        print(f"  {p.learner}  {'refused' if p.ok else 'BREACH '}  {p.what}: {p.detail}")
    breaches = [p for p in probes if not p.ok]
    print(f"{len(probes) - len(breaches)}/{len(probes)} attempts refused")
    return 1 if breaches else 0


def main(
    argv: list[str] | None = None, cluster: ClassCluster | None = None, run=None, sleep=None
) -> int:
    args = _arguments(argv)
    learners: list = []
    if args.command != "down":
        try:
            learners = load_roster(args.roster)
        except RosterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if getattr(args, "nodes", 1) < 1:
        print("error: --nodes must be at least 1", file=sys.stderr)
        return 2
    if args.command in ("plan", "render", "up"):
        plan = make_plan(learners, args.class_name, args.nodes)
        if plan.quota_problems or args.command == "plan":
            print(render_plan(plan, args.class_name))
            return 1 if plan.quota_problems else 0
        if args.command == "render":
            paths = render(learners, args.class_name, args.out)
            print(f"wrote {len(paths)} files under {args.out}/ (keep {TENANTS_FILE} and "
                  f"{GRAFANA_SETUP_FILE} private: they hold the passwords)")  # fmt: skip
            return 0
    if args.command == "isolation":
        return _isolation(args, learners)
    if args.command == "grade":
        return _grade(args, learners)
    try:
        cluster = cluster or _cluster(args.kubeconfig)
        if args.command == "up":
            return _up(args, learners, cluster, run or subprocess.call, sleep)
        if args.command == "kubeconfigs":
            rows = write_kubeconfigs(cluster, learners, args.kubeconfig, args.out, args.hours)
            return _print_rows(rows)
        if args.command == "status":
            return _print_rows(status(cluster, learners))
        names = down(cluster, args.class_name, setup_objects_to_remove())
        print(f"deleted {len(names)}: {', '.join(names) or 'nothing carried the class labels'}")
        return 0
    except (ClassClusterError, KubeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
