"""Grade a class: many lab clusters (live) or many submissions (offline) into one gradebook.

    python -m checks.grading FOLDER_OF_KUBECONFIGS [--out DIR] [--jobs N] [--timeout S]
                             [--checker ID ...]
    python -m checks.grading --offline FOLDER_OF_SUBMISSIONS [--out DIR]

Live: every file in the folder is one learner's kubeconfig (the learner id is the file name
without its extension). Each cluster is graded by the same checkers a learner runs
(`python -m pytest checks --kubeconfig ...`) in its own process, several at once, each bounded
in time: at the deadline it is interrupted (so the checkers that finished still count), then
killed. An unreachable cluster or a timeout is a row in the gradebook, never the end of the run.

Offline: every sub-folder is one learner's submission (a repository with `manifests/`, or the
`manifests/` folder itself); the static checks of `validators.manifests.check_tree` (schema, Pod
Security, Alloy lint, consistency) grade it, with the same report format.

Output in --out (default ./gradebook): gradebook.csv, gradebook.json, gradebook.html, and per
learner `reports/<id>.txt` (the learner report) and `results/<id>.json` (the score JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from checks import catalogue
from checks.catalogue import Checker
from checks.report import learner_report, result_row, score_json
from validators import exercises

CHECKS_DIR = Path(__file__).resolve().parent
INTERRUPT_GRACE_S = 15  # after SIGINT, pytest writes the score of the checkers that finished

# The static checks, grouped as the issue names them; finding names from validators.manifests.
OFFLINE_CHECKERS = (
    Checker(
        "static.schema",
        "Every YAML file parses and every object validates against the pinned Kubernetes schema",
        10,
        "Run `nox -s lint` (or `python -m validators.manifests`) and fix the first file it names.",
        "reference/checkers.md",
    ),
    Checker(
        "static.pod-security",
        "Every bookstore pod template passes Pod Security `restricted`",
        10,
        "`python -m validators.pss manifests/bookstore` lists each violating field and its fix.",
        "lab-2.md#step-0",
    ),
    Checker(
        "static.alloy-lint",
        "The Alloy pipeline is complete and ships low-cardinality labels to Loki",
        10,
        "Compare manifests/logging/alloy-values.yaml with the pipeline on the lab page.",
        "lab-2.md#step-2",
    ),
    Checker(
        "static.consistency",
        "Names, ports and versions agree across the manifests, values and versions.toml",
        10,
        "Run `python -m validators.manifests` and fix the mismatch each line names.",
        "reference/checkers.md",
    ),
    Checker(
        "static.exercises",
        "The lab-2 exercises (exercises/lab2: Alloy pipeline, LogQL queries) are complete",
        10,
        "Run `python -m validators.exercises` and fix each finding it prints.",
        "lab-2.md#step-2",
    ),
)
OFFLINE_GROUPS = {
    "yaml": "static.schema",
    "schema": "static.schema",
    "schemas": "static.schema",
    "pss": "static.pod-security",
    "pod-security": "static.pod-security",
    "alloy": "static.alloy-lint",
}


@dataclass
class Graded:
    learner: str
    source: str
    status: str  # graded | unreachable | timeout | error
    score: dict  # the score JSON (checkers keyed by id)
    note: str = ""


# -- live ----------------------------------------------------------------------------------
def kubeconfigs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder of kubeconfigs (one file per learner)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise SystemExit(f"{folder} holds no kubeconfig files: put one file per learner there")
    seen: dict[str, Path] = {}
    for f in files:
        who = learner_id(f)
        if who in seen:
            raise SystemExit(
                f"{seen[who].name} and {f.name} are both learner {who!r}: "
                "keep one kubeconfig per learner"
            )
        seen[who] = f
    return files


def learner_id(path: Path) -> str:
    name = path.name
    for suffix in (".kubeconfig", ".yaml", ".yml", ".conf", ".json"):
        name = name.removesuffix(suffix)
    return name


def empty_score(source: str, ids: Iterable[str], error: str, specs=catalogue.BY_ID) -> dict:
    rows = {cid: result_row(specs[cid], diagnosis=error) for cid in ids}
    return score_json(rows, kubeconfig=source, reachable=False, error=error)


def grade_cluster(kubeconfig: Path, out: Path, timeout: float, checkers: list[str]) -> Graded:
    """Run the checkers against one cluster in a child process bounded by `timeout`."""
    who = learner_id(kubeconfig)
    score_path, junit = out / "results" / f"{who}.json", out / "results" / f"{who}.xml"
    score_path.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "pytest", str(CHECKS_DIR), "-p", "no:cacheprovider", "-q",
        "--kubeconfig", str(kubeconfig), "--score-json", str(score_path),
        "--junitxml", str(junit),
    ]  # fmt: skip
    for cid in checkers:
        cmd += ["--checker", cid]
    env = {k: v for k, v in os.environ.items() if k != "LAB_KUBECONFIG"}
    log = out / "results" / f"{who}.log"
    with log.open("w") as sink:
        child = subprocess.Popen(
            cmd, cwd=CHECKS_DIR.parent, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            child.send_signal(signal.SIGINT)  # pytest still writes the finished checkers
            try:
                child.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    ids = checkers or [c.id for c in catalogue.CHECKERS]
    if score_path.is_file():
        score = json.loads(score_path.read_text())
        # Checkers that never ran (interrupted) still appear, with why.
        for cid in ids:
            if cid not in score["checkers"]:
                why = f"not finished: grading stopped at the {timeout:.0f} s limit"
                score["checkers"][cid] = result_row(catalogue.get(cid), diagnosis=why)
        score["max"] = sum(r["max_points"] for r in score["checkers"].values())
    else:
        tail = log.read_text()[-800:]
        why = f"the checkers produced no score (exit {child.returncode}); log tail: {tail}"
        if timed_out:
            why = f"timed out after {timeout:.0f} s before any checker finished"
        score = empty_score(str(kubeconfig), ids, why)
    if timed_out:
        status, note = "timeout", f"stopped at the {timeout:.0f} s limit"
    elif not score.get("reachable", True):
        status, note = "unreachable", score.get("error") or ""
    elif score_path.is_file():
        status, note = "graded", ""
    else:
        status, note = "error", score["error"]
    return Graded(who, str(kubeconfig), status, score, note)


def grade_live(
    folder: Path, out: Path, *, jobs: int, timeout: float, checkers: list[str]
) -> list[Graded]:
    # Absolute paths: the children run in the repository, not in the caller's directory.
    files = [f.resolve() for f in kubeconfigs(folder)]
    out = out.resolve()
    (out / "results").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(grade_cluster, f, out, timeout, checkers) for f in files]
        return [f.result() for f in futures]


# -- offline -------------------------------------------------------------------------------
def submissions(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder of submissions (one folder per learner)")
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise SystemExit(f"{folder} holds no submission folders: one folder per learner")
    return subs


def grade_submission(sub: Path) -> Graded:
    """The static checks on one learner's manifests, as a score JSON."""
    from validators.manifests import check_tree

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = sub
        if not (sub / "manifests").is_dir():  # the manifests folder itself was handed in
            root = Path(tmp)
            (root / "manifests").symlink_to(sub.resolve(), target_is_directory=True)
        findings = check_tree(root, helm=False)
    seconds = time.monotonic() - started
    groups: dict[str, list] = {c.id: [] for c in OFFLINE_CHECKERS}
    for f in findings:
        groups[OFFLINE_GROUPS.get(f.check, "static.consistency")].append(f)
    specs = {c.id: c for c in OFFLINE_CHECKERS}
    rows = {}
    groups.pop("static.exercises")  # judged apart below: no finding at all is a pass there
    for cid, found in groups.items():
        failed = [f for f in found if not f.ok and not f.skipped]
        if not found:
            text, passed = "nothing of this kind was found in the submission", False
        elif failed:
            text = "\n".join(
                f"{f.check}: {f.message}" + (f" ({f.file})" if f.file else "") for f in failed
            )
            passed = False
        else:
            text, passed = "; ".join(f.message for f in found if f.ok)[:500], True
        rows[cid] = result_row(specs[cid], passed=passed, diagnosis=text, seconds=seconds)
    passed, text = exercises.grade(sub)
    rows["static.exercises"] = result_row(
        specs["static.exercises"], passed=passed, diagnosis=text, seconds=seconds
    )
    score = score_json(
        rows,
        kubeconfig=None,
        submission=str(sub),
        reachable=True,
        error=None,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return Graded(sub.name, str(sub), "graded", score)


def grade_offline(folder: Path, out: Path) -> list[Graded]:
    (out / "results").mkdir(parents=True, exist_ok=True)
    graded = []
    for sub in submissions(folder):
        try:
            graded.append(grade_submission(sub))
        except Exception as e:  # noqa: BLE001 - one broken submission never stops the class
            ids = [c.id for c in OFFLINE_CHECKERS]
            why = f"could not check: {type(e).__name__}: {e}"
            specs = {c.id: c for c in OFFLINE_CHECKERS}
            graded.append(
                Graded(sub.name, str(sub), "error", empty_score(str(sub), ids, why, specs), why)
            )
    return graded


# -- the gradebook -------------------------------------------------------------------------
def write_gradebook(graded: list[Graded], out: Path, *, mode: str) -> dict[str, Path]:
    """gradebook.csv/.json/.html plus each learner's text report and score JSON."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    out.mkdir(parents=True, exist_ok=True)
    (out / "reports").mkdir(exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    ids: list[str] = []
    for g in graded:
        ids += [cid for cid in g.score["checkers"] if cid not in ids]
    for g in graded:
        (out / "reports" / f"{g.learner}.txt").write_text("\n".join(learner_report(g.score)) + "\n")
        (out / "results" / f"{g.learner}.json").write_text(json.dumps(g.score, indent=2) + "\n")

    book = {
        "mode": mode,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "checkers": ids,
        "learners": [
            {
                "learner": g.learner,
                "source": g.source,
                "status": g.status,
                "note": g.note,
                "total": g.score["total"],
                "max": g.score["max"],
                "checkers": g.score["checkers"],
            }
            for g in graded
        ],
    }
    paths = {
        "json": out / "gradebook.json",
        "csv": out / "gradebook.csv",
        "html": out / "gradebook.html",
    }
    paths["json"].write_text(json.dumps(book, indent=2) + "\n")
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", "status", "total", "max", *ids, "note"])
        for row in book["learners"]:
            points = [row["checkers"].get(cid, {}).get("points", "") for cid in ids]
            writer.writerow([row["learner"], row["status"], row["total"], row["max"], *points,
                             row["note"]])  # fmt: skip
    env = Environment(
        loader=FileSystemLoader(CHECKS_DIR / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html = env.get_template("gradebook.html.j2").render(book=book)
    paths["html"].write_text(html)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m checks.grading",
        description="Grade lab-2 clusters (a folder of kubeconfigs) or, with --offline, "
        "submissions (a folder of learner folders), into one gradebook.",
    )
    parser.add_argument("folder", type=Path, nargs="?", help="folder of kubeconfigs")
    parser.add_argument(
        "--offline", type=Path, metavar="FOLDER", help="folder of submissions (static checks)"
    )
    parser.add_argument("--out", type=Path, default=Path("gradebook"), help="output folder")
    parser.add_argument("--jobs", type=int, default=4, help="clusters graded at once")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per cluster")
    parser.add_argument(
        "--checker", action="append", default=[], metavar="ID", help="only these checkers"
    )
    args = parser.parse_args(argv)
    if bool(args.folder) == bool(args.offline):
        parser.error("give a FOLDER of kubeconfigs, or --offline FOLDER of submissions")
    unknown = [c for c in args.checker if c not in catalogue.ALL_BY_ID]
    if unknown:
        parser.error(
            f"unknown checker id(s) {', '.join(unknown)}; known: {', '.join(catalogue.ALL_BY_ID)}"
        )
    if args.offline:
        graded, mode = grade_offline(args.offline, args.out), "offline"
    else:
        print(f"grading {args.folder} ({args.jobs} at once, {args.timeout:.0f} s each)...")
        graded = grade_live(
            args.folder, args.out, jobs=args.jobs, timeout=args.timeout, checkers=args.checker
        )
        mode = "live"
    paths = write_gradebook(graded, args.out, mode=mode)
    for g in graded:
        extra = f"  ({g.note[:100]})" if g.note else ""
        print(f"  {g.learner:<24} {g.status:<12} {g.score['total']:>4}/{g.score['max']:<4}{extra}")
    print("gradebook: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
