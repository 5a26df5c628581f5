"""Reading a score JSON back: the checkers' own (a graded child's) and a learner's self-reported
`.lab/score.json`, both checked against the catalogue before a gradebook believes them.

Only `passed`, the diagnosis, the seconds and numeric measurements are taken from a file; the
title, points, hint and docs link come from the catalogue, so a file cannot award itself points,
rename a check or put its own links into the gradebook.
"""

from __future__ import annotations

import math

from checks import catalogue
from checks.catalogue import Checker
from checks.report import result_row

MAX_DIAGNOSIS = 4000  # characters of a diagnosis kept from a file


def checked_rows(data, specs: dict[str, Checker], *, own: bool = False) -> dict[str, dict]:
    """The rows of a score JSON, rebuilt from the catalogue: only `passed`, the diagnosis, the
    seconds and finite measurements are taken from the file (and, from the checkers' `own` file,
    the failure's hint, which names its next step). ValueError names what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("checkers"), dict):
        raise ValueError("not a score file: no `checkers` mapping")
    problems, rows = [], {}
    for cid, row in data["checkers"].items():
        spec = specs.get(cid) or catalogue.BY_ID.get(cid)
        if spec is None:
            problems.append(f"unknown checker {str(cid)[:60]!r}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("passed"), bool):
            problems.append(f"{cid}: no true/false `passed`")
            continue
        expected = spec.points if row["passed"] else 0
        if row.get("points") != expected or row.get("max_points") != spec.points:
            problems.append(
                f"{cid}: points {row.get('points')!r}/{row.get('max_points')!r}, the catalogue "
                f"gives {expected}/{spec.points} when passed is {row['passed']}"
            )
            continue
        diagnosis, seconds = row.get("diagnosis", ""), row.get("seconds", 0.0)
        if not isinstance(diagnosis, str) or not _finite(seconds):
            problems.append(f"{cid}: `diagnosis` is not text or `seconds` not a number")
            continue
        rows[cid] = result_row(
            spec, passed=row["passed"], diagnosis=diagnosis[:MAX_DIAGNOSIS], seconds=seconds
        )
        measured = row.get("measurements")
        if isinstance(measured, dict):
            rows[cid]["measurements"] = {
                str(k)[:60]: v for k, v in list(measured.items())[:20] if _finite(v)
            }
        if own and isinstance(row.get("hint"), str):
            rows[cid]["hint"] = row["hint"][:MAX_DIAGNOSIS]
    total = data.get("total")
    if not problems and total is not None and total != sum(r["points"] for r in rows.values()):
        problems.append(f"total {total!r} is not the sum of the checkers' points")
    if problems:
        raise ValueError("; ".join(problems[:4]))
    return {cid: rows[cid] for cid in specs if cid in rows}


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
