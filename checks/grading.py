"""Grade a class: many lab clusters (live), learners' own score files, or many submissions
(offline), into one gradebook.

    python -m checks.grading FOLDER_OF_KUBECONFIGS [--scores FOLDER] [--out DIR] [--jobs N]
                             [--timeout S] [--checker ID ...] [--allow-server HOST[:PORT] ...]
                             [--allow-servers-file FILE] [--allow-any-server]
    python -m checks.grading --scores FOLDER_OF_SCORE_FILES [--out DIR]
    python -m checks.grading --offline FOLDER_OF_SUBMISSIONS [--out DIR]

Live: every file in the folder is one learner's kubeconfig (ids: `checks.roster`). Each is
vetted first (`checks.kubeconfig`: no exec or auth-provider plugin is ever run, the server must
be on loopback or allowed by the instructor, no file outside the folder is read); the vetted
copy is graded by the same checkers a learner runs (`python -m pytest checks`) in a child
process of its own session, several at once. At the deadline the child's whole process group
gets SIGTERM, then SIGKILL; every checker that finished is already in its score file (the
checkers write it after each one), so nothing finished is lost.

Self-reported (`--scores`): `<id>.json` files, each a learner's `.lab/score.json` from their own
machine, validated by shape and against the catalogue's points; valid ones are rows with status
`self-reported`, which is only as trustworthy as the learner.

Offline: every sub-folder is one learner's submission (a repository with `manifests/`, or the
`manifests/` folder itself). Its regular files are copied without following links out of it and
checked by `validators.manifests.check_tree` against the course's own pins (this repository's
versions.toml, never the submission's).

A problem with one learner is that learner's row (status below), never the end of the run.
Output (`checks.gradebook`) in --out (default ./gradebook, ignored by git in this repository).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from checks import catalogue, kubeconfig, roster
from checks.catalogue import Checker
from checks.gradebook import write_gradebook
from checks.report import result_row, score_json
from checks.scorefile import checked_rows
from labconfig.versions import REPO_ROOT
from validators import exercises

CHECKS_DIR = Path(__file__).resolve().parent
TERM_GRACE_S = 5  # after SIGTERM at the deadline, before SIGKILL

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
OFFLINE_BY_ID = {c.id: c for c in OFFLINE_CHECKERS}
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
    status: str  # a key of checks.gradebook.STATUSES
    score: dict  # the score JSON (checkers keyed by id)
    note: str = ""


def not_graded(entry: roster.Entry, status: str, why: str, specs: dict[str, Checker]) -> Graded:
    """A row for a learner whose work could not be checked: every checker 0, with why."""
    rows = {cid: result_row(spec, diagnosis=why) for cid, spec in specs.items()}
    score = score_json(rows, submission=roster.shown(entry.path), reachable=False, error=why)
    return Graded(entry.learner, roster.shown(entry.path), status, score, why)


def isolated(grade, entry: roster.Entry, specs: dict[str, Checker], *args) -> Graded:
    """`grade(entry, *args)`, where any crash is that learner's `error` row."""
    try:
        return grade(entry, *args)
    except Exception as e:  # noqa: BLE001 - one learner never stops the class
        return not_graded(entry, "error", f"could not grade: {type(e).__name__}: {e}", specs)


def class_folder(folder: Path, what: str, **kwargs) -> list[roster.Entry]:
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder of {what} (one per learner)")
    try:
        entries = roster.class_entries(folder, **kwargs)
    except OSError as e:
        raise SystemExit(f"cannot list {folder}: {e.strerror}") from None
    if not entries:
        raise SystemExit(f"{folder} holds no {what}: put one per learner there")
    return entries


# -- live ----------------------------------------------------------------------------------
def run_bounded(cmd: list[str], *, timeout: float, log: Path, cwd: Path, env: dict):
    """Run `cmd` in a new session; at `timeout` SIGTERM its process group, then SIGKILL.

    Returns (exit code, timed out). Whatever the child started is killed with it, even a
    process that ignores SIGTERM or left the child's process (the group is the unit).
    """
    with log.open("wb") as sink:
        child = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _signal_group(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=TERM_GRACE_S)
        _signal_group(child.pid, signal.SIGKILL)  # nothing of this run outlives it
        child.wait()
    return child.returncode, timed_out


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, sig)


def grade_cluster(entry, out: Path, vetted_dir: Path, timeout, checkers, policy) -> Graded:
    """Vet one learner's kubeconfig, then run the checkers on it in a bounded child."""
    specs = {cid: catalogue.get(cid) for cid in checkers}
    if entry.status:
        return not_graded(entry, entry.status, entry.problem, specs)
    try:
        vetted = kubeconfig.vet(kubeconfig.read(entry.path), source=entry.path, policy=policy)
    except kubeconfig.KubeconfigRefused as e:
        return not_graded(entry, "refused", str(e), specs)
    except kubeconfig.KubeconfigError as e:
        return not_graded(entry, "error", str(e), specs)
    safe = vetted_dir / f"{entry.learner}.yaml"
    fd = os.open(safe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(vetted, f)
    return run_checkers(entry.learner, safe, roster.shown(entry.path), out, timeout, specs)


# What a child run must not inherit from the grader's shell: it is told whose lab it checks.
LEARNER_ENV = ("LAB_KUBECONFIG", "KUBECONFIG", "LAB_NAMESPACE", "LAB_TENANT", "LAB_LOKI_URL")


def run_checkers(
    learner: str, safe: Path, source: str, out: Path, timeout: float, specs, extra=()
) -> Graded:
    """The checkers `specs` against `safe` (a kubeconfig) in a bounded child of its own session,
    with `extra` options (a class learner's --namespace/--tenant); its score file is the row,
    and whatever it did not finish is marked so."""
    results = out / "results"
    score_path = results / f"{learner}.json"
    score_path.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "pytest", str(CHECKS_DIR), "-p", "no:cacheprovider", "-q",
        "--kubeconfig", str(safe), "--score-json", str(score_path),
        "--junitxml", str(results / f"{learner}.xml"), *extra,
    ]  # fmt: skip
    for cid in specs:
        cmd += ["--checker", cid]
    env = {k: v for k, v in os.environ.items() if k not in LEARNER_ENV}
    log = results / f"{learner}.log"
    code, timed_out = run_bounded(cmd, timeout=timeout, log=log, cwd=CHECKS_DIR.parent, env=env)
    try:
        # The diagnoses name the vetted copy, which is gone after grading: name the learner's file.
        text = score_path.read_text(errors="replace").replace(json.dumps(str(safe))[1:-1], source)
        score = json.loads(text)
        rows = checked_rows(score, specs, own=True)
    except (OSError, ValueError) as e:
        tail = log.read_text(errors="replace")[-800:]
        why = f"the checkers produced no score (exit {code}: {e}); log tail: {tail}"
        if timed_out:
            why = f"timed out after {timeout:.0f} s before any checker finished"
        rows = {cid: result_row(spec, diagnosis=why) for cid, spec in specs.items()}
        score = score_json(rows, submission=source, reachable=False, error=why)
        return Graded(learner, source, "timeout" if timed_out else "error", score, why)
    unfinished = f"not finished: grading stopped at the {timeout:.0f} s limit"
    if not timed_out:
        unfinished = f"not run: the checkers' process ended early (exit {code}, see its log)"
    missing = [cid for cid in specs if cid not in rows]
    rows = {cid: rows.get(cid) or result_row(specs[cid], diagnosis=unfinished) for cid in specs}
    about = {k: v for k, v in score.items() if k not in ("checkers", "total", "max")}
    score = score_json(rows, **(about | {"kubeconfig": source}))
    if not score.get("reachable", True):  # the likelier cause of a slow run, and the fix
        status, note = "unreachable", str(score.get("error") or "")
    elif timed_out and missing:
        status, note = "timeout", f"stopped at the {timeout:.0f} s limit; {len(missing)} unfinished"
    elif missing:
        status, note = "error", f"{len(missing)} checker(s) not run: {unfinished.split(': ', 1)[1]}"
    else:
        status, note = "graded", ("every checker finished at the time limit" if timed_out else "")
    return Graded(learner, source, status, score, note)


def grade_live(entries, out: Path, *, jobs: int, timeout: float, checkers, policy):
    out = out.resolve()  # the children run in the repository, not in the caller's directory
    (out / "results").mkdir(parents=True, exist_ok=True)
    ids = checkers or [c.id for c in catalogue.CHECKERS]
    specs = {cid: catalogue.get(cid) for cid in ids}
    with (
        tempfile.TemporaryDirectory(prefix="lab-grading-") as vetted_dir,
        ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
    ):
        args = (out, Path(vetted_dir), timeout, ids, policy)
        futures = [pool.submit(isolated, grade_cluster, e, specs, *args) for e in entries]
        return [f.result() for f in futures]


# -- score files (the checkers' own, and the learners' self-reported ones) ------------------
def import_score(entry: roster.Entry, specs: dict[str, Checker]) -> Graded:
    """One learner's self-reported score file as a row (`self-reported` or `invalid`)."""
    if entry.status:
        return not_graded(entry, entry.status, entry.problem, specs)
    try:
        with entry.path.open("rb") as f:
            raw = f.read(roster.MAX_FILE_BYTES + 1)
        if len(raw) > roster.MAX_FILE_BYTES:
            raise ValueError(f"over {roster.MAX_FILE_BYTES // 1024} KiB")
        data = json.loads(raw)
        rows = checked_rows(data, specs)
    except (OSError, ValueError, RecursionError) as e:
        why = f"not a score file the checkers wrote: {e}. Ask for `.lab/score.json` as written."
        return not_graded(entry, "invalid", why, specs)
    missing = "not in the learner's score file (not run on their machine)"
    rows = {cid: rows.get(cid) or result_row(specs[cid], diagnosis=missing) for cid in specs}
    finished = data.get("finished") if isinstance(data.get("finished"), str) else None
    source = roster.shown(entry.path)
    score = score_json(rows, submission=source, finished=finished, reachable=True, error=None)
    note = "self-reported" + (f", run {finished[:40]}" if finished else "")
    if data.get("reachable") is False:
        note += f"; their checkers could not reach their cluster: {str(data.get('error'))[:300]}"
    return Graded(entry.learner, source, "self-reported", score, note)


# -- offline -------------------------------------------------------------------------------
def _copy_work(src: Path, root: Path) -> tuple[list[str], set[str]]:
    """Copy what a learner handed in under `root`: their `manifests/` and `exercises/` (a
    repository or a folder holding them), else the folder itself as their manifests. Returns
    what was skipped and which of the two hold any YAML."""
    parts = [name for name in ("manifests", "exercises") if os.path.lexists(src / name)]
    skipped: list[str] = []
    if parts:
        for name in parts:
            skipped += roster.copy_submission(src, root, only=name)
    else:
        skipped += roster.copy_submission(src, root / "manifests")
    handed = {
        name
        for name in ("manifests", "exercises")
        if any(p.suffix in (".yaml", ".yml") for p in (root / name).rglob("*"))
    }
    return skipped, handed


def grade_submission(entry: roster.Entry, versions: dict) -> Graded:
    """The static checks on a copy of one learner's work, against the course's pins: their
    manifests (the course's own when they handed in none: unchanged files are the course's) and
    their exercises."""
    from validators.manifests import check_tree  # the validators are only needed offline

    if entry.status:
        return not_graded(entry, entry.status, entry.problem, OFFLINE_BY_ID)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-submission-") as tmp:
        root = Path(tmp)
        skipped, handed = _copy_work(entry.path, root)
        notes = [("not followed or skipped: " + ", ".join(skipped[:10])) if skipped else ""]
        if not handed:
            why = "the submission holds no work (no .yaml in manifests/, exercises/ or the folder)"
            empty = not_graded(entry, "empty", why, OFFLINE_BY_ID)
            empty.note = "; ".join(filter(None, [why, *notes]))
            return empty
        if "manifests" not in handed:
            shutil.rmtree(root / "manifests", ignore_errors=True)
            shutil.copytree(REPO_ROOT / "manifests", root / "manifests")
            notes.append("no manifests handed in: the course's own were checked")
        findings = check_tree(root, versions, helm=False)
        exercises_passed, exercises_text = exercises.grade(root)
    note = "; ".join(filter(None, notes))
    seconds = time.monotonic() - started
    groups: dict[str, list] = {c.id: [] for c in OFFLINE_CHECKERS}
    for f in findings:
        groups[OFFLINE_GROUPS.get(f.check, "static.consistency")].append(f)
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
        rows[cid] = result_row(OFFLINE_BY_ID[cid], passed=passed, diagnosis=text, seconds=seconds)
    rows["static.exercises"] = result_row(
        OFFLINE_BY_ID["static.exercises"],
        passed=exercises_passed,
        diagnosis=exercises_text.replace(str(root) + "/", ""),
        seconds=seconds,
    )
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    source = roster.shown(entry.path)
    score = score_json(rows, submission=source, reachable=True, error=None, finished=finished)
    return Graded(entry.learner, source, "graded", score, note)


def grade_offline(entries) -> list[Graded]:
    from labconfig.versions import load_versions

    course_pins = load_versions()  # this repository's, never a submission's own versions.toml
    return [isolated(grade_submission, e, OFFLINE_BY_ID, course_pins) for e in entries]


# -- command line --------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m checks.grading",
        description="Grade lab-2 clusters (a folder of kubeconfigs), learners' own score files "
        "(--scores) or, with --offline, submissions (a folder of learner folders).",
    )
    add = parser.add_argument
    add("folder", type=Path, nargs="?", help="folder of kubeconfigs, one file per learner")
    add("--scores", type=Path, metavar="FOLDER", help="folder of <id>.json self-reported scores")
    add("--offline", type=Path, metavar="FOLDER", help="folder of submissions (static checks)")
    add("--out", type=Path, default=Path("gradebook"), help="output folder (default ./gradebook)")
    add("--jobs", type=int, default=4, help="clusters graded at once")
    add("--timeout", type=float, default=600, help="seconds per cluster")
    add("--checker", action="append", default=[], metavar="ID", help="only these checkers")
    add("--allow-server", action="append", default=[], metavar="HOST[:PORT]",
        help="also grade clusters at this address (loopback is always allowed)")  # fmt: skip
    add("--allow-servers-file", type=Path, metavar="FILE", help="one HOST[:PORT] per line")
    add("--allow-any-server", action="store_true", help="grade a cluster at any address")
    args = parser.parse_args(argv)
    if not (args.timeout > 0 and args.jobs >= 1):
        parser.error("--timeout must be a positive number of seconds and --jobs at least 1")
    for given in (args.folder, args.scores, args.offline):
        if given and args.out.resolve().is_relative_to(given.resolve()):
            parser.error(f"--out {args.out} is inside {given}: put the gradebook outside it")
    if args.offline and (args.folder or args.scores):
        parser.error("--offline grades submissions alone; run live grading separately")
    if not (args.folder or args.scores or args.offline):
        parser.error("give a FOLDER of kubeconfigs, --scores FOLDER, or --offline FOLDER")
    unknown = [c for c in args.checker if c not in catalogue.BY_ID]
    if unknown:
        known = ", ".join(catalogue.BY_ID)
        parser.error(f"unknown checker id(s) {', '.join(unknown)}; known: {known}")
    allowed = list(args.allow_server)
    try:
        if args.allow_servers_file:
            allowed += kubeconfig.read_allow_file(args.allow_servers_file)
        for server in allowed:
            kubeconfig.parse_server(server)
    except (OSError, kubeconfig.KubeconfigError) as e:
        parser.error(str(e))
    args.allowed = allowed
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.offline:
        entries = class_folder(args.offline, "submission folders", want="dir")
        graded, specs, mode = grade_offline(entries), OFFLINE_BY_ID, "offline"
    else:
        ids = args.checker or [c.id for c in catalogue.CHECKERS]
        specs, graded, mode = {cid: catalogue.get(cid) for cid in ids}, [], "live"
        # Both folders are listed before anything runs: a usage error never comes after a
        # class's worth of live grading.
        clusters = args.folder and class_folder(
            args.folder, "kubeconfig files", want="file", suffixes=roster.KUBECONFIG_SUFFIXES
        )
        scores = args.scores and class_folder(
            args.scores, "score files", want="file", suffixes=(".json",)
        )
        if clusters:
            policy = kubeconfig.grading_policy(args.folder, args.allowed, args.allow_any_server)
            print(f"grading {len(clusters)} cluster(s), {args.jobs} at once, "
                  f"{args.timeout:.0f} s each...")  # fmt: skip
            graded = grade_live(clusters, args.out, jobs=args.jobs, timeout=args.timeout,
                                checkers=args.checker, policy=policy)  # fmt: skip
        taken = {g.learner.casefold() for g in graded}
        for g in (isolated(import_score, e, specs, specs) for e in scores or []):
            if g.learner.casefold() in taken:  # graded live too: keep both rows, apart
                g.learner += ".self-reported"
            while g.learner.casefold() in taken:
                g.learner += "~"
            taken.add(g.learner.casefold())
            graded.append(g)
    paths = write_gradebook(graded, args.out, mode=mode, specs=specs)
    for g in graded:
        extra = f"  ({g.note[:100]})" if g.note else ""
        line = f"  {g.learner:<24} {g.status:<13} {g.score['total']:>4}/{g.score['max']:<4}{extra}"
        print(line.encode("utf-8", "backslashreplace").decode("utf-8"))
    print("gradebook: " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
