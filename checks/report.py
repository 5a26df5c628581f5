"""The report formats every checker run shares: live (pytest), graded, or offline.

A result row is what the score JSON holds per checker id; the learner report is the plain-text
view of a score JSON. Grading and the offline static checks build the same rows, so a learner,
an instructor and a CI job read one format.
"""

from __future__ import annotations

from checks.catalogue import Checker, docs_url


def result_row(spec: Checker, *, passed: bool = False, diagnosis: str = "", seconds: float = 0.0):
    """A checker's row in the score JSON (points follow `passed`).

    `hint` starts as the catalogue's general hint; a failure with a diagnosis replaces it with
    the diagnosis' own next step, so the hint never contradicts what was observed.
    """
    return {
        "title": spec.title,
        "points": spec.points if passed else 0,
        "max_points": spec.points,
        "passed": passed,
        "informational": spec.informational,
        "seconds": round(seconds, 2),
        "diagnosis": diagnosis,
        "hint": spec.hint,
        "docs": spec.docs,
        "docs_url": docs_url(spec),
        "measurements": {},
    }


def score_json(rows: dict[str, dict], **about) -> dict:
    """A score JSON: what was checked (`about`), then the totals of its rows, then the rows."""
    return {
        **about,
        "total": sum(r["points"] for r in rows.values()),
        "max": sum(r["max_points"] for r in rows.values()),
        "checkers": rows,
    }


def learner_report(data: dict) -> list[str]:
    """One line per checker, diagnosis and hint under each failure, then the total."""
    where = data.get("cluster") or data.get("submission") or data.get("kubeconfig") or "?"
    lines = [f"Lab 2 checkers on {where}"]
    for cid, row in data["checkers"].items():
        informational = row.get("informational", False)
        mark = "PASS" if row["passed"] else ("INFO" if informational else "FAIL")
        lines.append(
            f"  {mark}  {cid:<28} {row['points']:>3}/{row['max_points']:<3} "
            f"{row['seconds']:>6.1f}s  {row['title']}"
        )
        if not row["passed"]:
            lines += [f"        {part}" for part in row["diagnosis"].splitlines()]
            if row["hint"] not in row["diagnosis"]:
                lines.append(f"        hint: {row['hint']}")
            lines.append(f"        docs: {row.get('docs_url') or row['docs']}")
        for name, value in row["measurements"].items():
            label = name.removesuffix("_seconds").replace("_to_", " -> ").replace("_", " ")
            unit = " s" if name.endswith("_seconds") else ""
            lines.append(f"        measured: {label}: {value}{unit}")
    scored = [r for r in data["checkers"].values() if not r.get("informational", False)]
    passed = sum(1 for r in scored if r["passed"])
    extra = len(data["checkers"]) - len(scored)
    lines.append(
        f"Total: {data['total']}/{data['max']} points "
        f"({passed} of {len(scored)} checkers passed"
        + (f"; {extra} informational)" if extra else ")")
    )
    return lines
