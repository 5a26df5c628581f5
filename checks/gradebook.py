"""The gradebook of a graded class: CSV, JSON and HTML, plus each learner's report and score.

One summary per learner (points, status, the first failed check and its reason), the class's
pass rate per check, and every check of every learner with its diagnosis, hint and docs link.
Checks worth 0 points are informational: shown, never counted or coloured as failures.
Everything a learner controls (their id, a diagnosis quoting their logs) is text: escaped in
the HTML, and kept from starting a formula in the CSV.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from checks.catalogue import Checker
from checks.report import learner_report

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Spreadsheets run a cell that starts with these as a formula (OWASP "CSV Injection").
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r", "\n")
COUNTED = ("graded", "timeout", "self-reported")  # rows whose checkers looked at the work
STATUSES = {  # every status a gradebook row can have, as the legend explains it
    "graded": "the checkers ran to the end",
    "timeout": "stopped at the time limit; the checkers that finished count",
    "unreachable": "no API server answered at the kubeconfig's address",
    "refused": "not graded: the kubeconfig would run a program, connect outside the lab or read "
    "a file outside the class folder, or the entry is a link out of the folder",
    "duplicate": "not graded: two files name the same learner",
    "error": "not graded: the file or folder could not be used (the note says why)",
    "empty": "the submission holds no manifests: 0 points",
    "self-reported": "from the learner's own score file: only as trustworthy as the learner",
    "invalid": "a score file that is not what the checkers write: 0 points",
}
WRITE = {"encoding": "utf-8", "errors": "backslashreplace"}  # never fail on a stray surrogate


def csv_cell(value):
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_LEAD):
        return "'" + value
    return value


def docs_link(row: dict) -> str | None:
    """The published docs page of a result row: its `docs_url`, which the catalogue gives
    (`checks.report.result_row`); never a learner's file's (rows are rebuilt), never a script."""
    url = row.get("docs_url")
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def status_class(status: str) -> str:
    """The colour of a status badge: green graded, amber self-reported, red anything else."""
    return {"graded": "pass", "self-reported": "warn"}.get(status, "fail")


def first_failure(row: dict, status: str) -> tuple[str, str]:
    """(check id, first line of its diagnosis) of the first failed scoring check, or why the
    learner was not graded."""
    if status not in COUNTED:
        return "", (row["note"] or status).splitlines()[0] if (row["note"] or status) else ""
    for cid, check in row["checkers"].items():
        if not check["passed"] and check["max_points"] > 0:
            lines = check["diagnosis"].strip().splitlines() or ["(no diagnosis)"]
            return cid, lines[0]
    return "", ""


def pass_rates(learners: list[dict], specs: dict[str, Checker]) -> list[dict]:
    looked = [r for r in learners if r["status"] in COUNTED]
    rates = []
    for cid, spec in specs.items():
        passed = sum(1 for r in looked if r["checkers"].get(cid, {}).get("passed"))
        rates.append({
            "id": cid, "title": spec.title, "points": spec.points, "passed": passed,
            "of": len(looked), "percent": round(100 * passed / len(looked)) if looked else 0,
            "informational": spec.points == 0,
        })  # fmt: skip
    return rates


def book_of(graded, *, mode: str, specs: dict[str, Checker], statuses: dict[str, str]) -> dict:
    learners = []
    for g in graded:
        row = {
            "learner": g.learner, "source": g.source, "status": g.status, "note": g.note,
            "total": g.score["total"], "max": g.score["max"], "checkers": g.score["checkers"],
        }  # fmt: skip
        row["first_failed"], row["reason"] = first_failure(row, g.status)
        learners.append(row)
    return {
        "mode": mode,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "checkers": list(specs),
        "statuses": {s: statuses[s] for s in statuses if any(r["status"] == s for r in learners)},
        "pass_rates": pass_rates(learners, specs),
        "learners": learners,
    }


def write_gradebook(graded, out: Path, *, mode: str, specs: dict[str, Checker]) -> dict:
    """gradebook.csv/.json/.html plus each learner's text report and score JSON."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "reports").mkdir(exist_ok=True)
    (out / "results").mkdir(exist_ok=True)
    for g in graded:
        report = "\n".join(learner_report(g.score)) + "\n"
        try:  # ids are file-safe (checks.roster); still, one learner's file never stops the rest
            (out / "reports" / f"{g.learner}.txt").write_text(report, **WRITE)
            (out / "results" / f"{g.learner}.json").write_text(json.dumps(g.score, indent=2) + "\n")
        except OSError as e:
            g.note = "; ".join(filter(None, [g.note, f"no per-learner files: {e.strerror}"]))
    book = book_of(graded, mode=mode, specs=specs, statuses=STATUSES)
    paths = {
        "json": out / "gradebook.json",
        "csv": out / "gradebook.csv",
        "html": out / "gradebook.html",
    }
    paths["json"].write_text(json.dumps(book, indent=2) + "\n")
    with paths["csv"].open("w", newline="", **WRITE) as f:
        writer = csv.writer(f)
        writer.writerow(["learner", "status", "total", "max", *book["checkers"], "first_failed",
                         "reason", "note"])  # fmt: skip
        for row in book["learners"]:
            points = [row["checkers"].get(cid, {}).get("points", "") for cid in book["checkers"]]
            cells = [row["learner"], row["status"], row["total"], row["max"], *points,
                     row["first_failed"], row["reason"], row["note"]]  # fmt: skip
            writer.writerow([csv_cell(c) for c in cells])
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.globals["docs_link"] = docs_link
    env.filters["status_class"] = status_class
    html = env.get_template("gradebook.html.j2").render(book=book, counted=COUNTED)
    paths["html"].write_text(html, **WRITE)
    return paths
