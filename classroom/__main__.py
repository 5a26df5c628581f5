"""`python -m classroom plan|render` (nox -s class -- ...): a class on one shared cluster.

plan    what a roster needs and what would be created, touching nothing
render  write every learner's objects and the class's Helm values into a folder (default
        .class/, git-ignored: it holds the tenants' passwords), for review or `kubectl apply`
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from classroom.learners import bookstore_objects, learner_objects
from classroom.plan import make_plan, render_plan
from classroom.roster import NAMESPACE_PREFIX, RosterError, load_roster
from classroom.values import alloy_overlay, new_passwords, tenants_values

DEFAULT_OUT = Path(".class")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the Alloy pipeline) as readable `|` blocks."""


_BlockDumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None),
)
TENANTS_FILE = "loki-tenants.yaml"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "render"):
        p = sub.add_parser(name)
        p.add_argument("--roster", required=True, type=Path, help="CSV with an `id` column")
        p.add_argument("--class", dest="class_name", default="lab2", help="class label value")
        p.add_argument("--nodes", type=int, default=3, help="worker nodes (one agent each)")
        if name == "render":
            p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


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
    fd = os.open(tenants, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(tenants_values(learners, passwords), f, sort_keys=False)
    return [*written, alloy, tenants]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        learners = load_roster(args.roster)
    except RosterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.nodes < 1:
        print("error: --nodes must be at least 1", file=sys.stderr)
        return 2
    plan = make_plan(learners, args.class_name, args.nodes)
    if args.command == "plan":
        print(render_plan(plan, args.class_name))
        return 1 if plan.quota_problems else 0
    paths = render(learners, args.class_name, args.out)
    print(f"wrote {len(paths)} files under {args.out}/ (keep {TENANTS_FILE} private)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
