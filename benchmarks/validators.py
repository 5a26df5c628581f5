"""How long the offline validators take on a large submission (the grader's worst honest case).

A copy of the repository's `manifests/` and `versions.toml` plus 10,000 extra objects (the
lab's own Deployment, Service and ConfigMap, renamed, in files of 1,000) goes through
`validators.manifests.check_tree` as the grader runs it (no helm). Each round runs in a fresh
process, so the schema cache starts cold every time, as it does for `python -m
validators.manifests`. The target is judged on the child's CPU time (like the other benchmarks:
on a shared machine the wall clock also counts other processes' turns); the wall clock is
printed too, and the median of the rounds counts, with the spread shown.

    python -m benchmarks.validators [--objects N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from labconfig.versions import REPO_ROOT
from validators import files

OBJECTS = 10_000
MAX_SECONDS = 15.0
MAX_BOMB_SECONDS = 0.1  # "well under a second" for a 1 KB alias bomb, refused
PER_FILE = 1_000
TEMPLATES = ("bookstore/catalog.yaml", "bookstore/configmap.yaml")

# Runs in the child: one check_tree over the folder, the findings' count as a sanity check.
_CHILD = (
    "import sys, time; from pathlib import Path; from validators.manifests import check_tree; "
    "w, c = time.perf_counter(), time.process_time(); f = check_tree(Path(sys.argv[1]), "
    "helm=False); print(time.process_time() - c, time.perf_counter() - w, "
    "sum(not x.ok for x in f))"
)


def _templates() -> list[dict]:
    docs = []
    for rel in TEMPLATES:
        text = (REPO_ROOT / "manifests" / rel).read_text(encoding="utf-8")
        docs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    return docs


def make_submission(root: Path, objects: int = OBJECTS) -> Path:
    """A lab tree with `objects` more objects under manifests/bulk/."""
    shutil.copytree(REPO_ROOT / "manifests", root / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", root / "versions.toml")
    bulk = root / "manifests" / "bulk"
    bulk.mkdir()
    templates = _templates()
    batch: list[dict] = []
    for n in range(objects):
        obj = json.loads(json.dumps(templates[n % len(templates)]))
        obj["metadata"]["name"] = f"{obj['metadata']['name']}-{n}"
        batch.append(obj)
        if len(batch) == PER_FILE or n == objects - 1:
            path = bulk / f"part-{n // PER_FILE:03d}.yaml"
            path.write_text(yaml.safe_dump_all(batch, sort_keys=False), encoding="utf-8")
            batch = []
    return root


def _one_round(root: Path) -> tuple[float, float, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=REPO_ROOT,
    ).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def measure(objects: int = OBJECTS, rounds: int = 3) -> dict:
    """Seconds per check_tree run over a submission with `objects` extra objects."""
    with tempfile.TemporaryDirectory(prefix="bench-validators-") as tmp:
        started = time.perf_counter()
        root = make_submission(Path(tmp), objects)
        made = time.perf_counter() - started
        runs = [_one_round(root) for _ in range(rounds)]
    cpu = [c for c, _, _ in runs]
    wall = [w for _, w, _ in runs]
    return {
        "objects": objects,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "median": statistics.median(cpu),
        "median_wall": statistics.median(wall),
        "failed_findings": runs[0][2],
        "setup_seconds": made,
    }


def alias_bomb_seconds(rounds: int = 5) -> float:
    """CPU seconds to refuse a 1 KB "billion laughs" file (best of `rounds`)."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    text = "\n".join(lines) + "\n"
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        try:
            files.parse_yaml(text, "bomb.yaml")
        except files.FileProblem:
            pass
        else:
            raise AssertionError("the alias bomb was accepted")
        best = min(best, time.process_time() - start)
    return best


def report(objects: int = OBJECTS, rounds: int = 3) -> bool:
    """Print the section for `python -m benchmarks`; True when the target is met."""
    result = measure(objects, rounds)
    met = result["median"] <= MAX_SECONDS
    cpu = ", ".join(f"{s:.2f}" for s in result["cpu_seconds"])
    wall = ", ".join(f"{s:.2f}" for s in result["wall_seconds"])
    print(f"offline validators, check_tree on a submission with {objects:,} extra objects:")
    print(f"  CPU seconds per run: {cpu}; wall clock: {wall} (fresh process each)")
    print(
        f"  median {result['median']:6.2f} s CPU ({result['median_wall']:.2f} s wall)   "
        f"target <= {MAX_SECONDS:.0f} s  {'ok' if met else 'MISSED'}"
    )
    if result["failed_findings"]:
        print(f"  (the run reported {result['failed_findings']} failed findings: look at it)")
    bomb = alias_bomb_seconds()
    bomb_ok = bomb <= MAX_BOMB_SECONDS
    print(
        f"  a 1 KB alias bomb refused in {bomb * 1000:.1f} ms CPU   target <= "
        f"{MAX_BOMB_SECONDS * 1000:.0f} ms  {'ok' if bomb_ok else 'MISSED'}"
    )
    return met and bomb_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.validators", description=__doc__)
    parser.add_argument("--objects", type=int, default=OBJECTS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    return 0 if report(args.objects, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
