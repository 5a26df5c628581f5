"""A class roster: one learner id per row of a CSV file, checked before anything is created.

Each id becomes part of Kubernetes names (namespace `lab2-<id>`, a Loki tenant of the same name),
so it must be a DNS label that still fits once prefixed. A roster with any bad row is refused as a
whole: `up` never creates half a class and leaves the instructor to guess which half.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

NAMESPACE_PREFIX = "lab2-"
# A namespace name is a DNS label of at most 63 characters (RFC 1123).
MAX_ID_LENGTH = 63 - len(NAMESPACE_PREFIX)
ID_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_ROSTER_BYTES = 1_000_000  # a class of thousands fits; a mistaken upload of a dump does not
MAX_LEARNERS = 500
ID_COLUMNS = ("id", "learner", "learner_id")


@dataclass(frozen=True)
class Learner:
    id: str
    name: str = ""

    @property
    def namespace(self) -> str:
        return NAMESPACE_PREFIX + self.id

    @property
    def tenant(self) -> str:
        """The learner's Loki tenant: the namespace name, which Alloy sets from the stream label."""
        return self.namespace


@dataclass(frozen=True)
class RowProblem:
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text!r}: {self.reason}"


class RosterError(ValueError):
    """The roster cannot be used; the message lists every bad row and the fix."""


def id_problem(learner_id: str) -> str | None:
    """Why an id cannot name a namespace and a tenant, or None when it can."""
    if not learner_id:
        return "the id is empty"
    if len(learner_id) > MAX_ID_LENGTH:
        return (
            f"{len(learner_id)} characters; at most {MAX_ID_LENGTH} fit after the "
            f"{NAMESPACE_PREFIX!r} prefix in a 63-character namespace name"
        )
    if not ID_PATTERN.match(learner_id):
        return (
            "not a DNS label: use lower-case letters, digits and '-', starting and ending with a "
            "letter or digit (e.g. 'ada-lovelace')"
        )
    return None


def parse_roster(text: str) -> list[Learner]:
    """Learners from CSV text with an `id` column (optional `name`); raises RosterError."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not rows:
        raise RosterError(
            "the roster is empty: write a header line `id,name`, then one learner a line."
        )
    header_line, header = rows[0]
    columns = [c.strip().lower() for c in header]
    id_col = next((columns.index(c) for c in ID_COLUMNS if c in columns), None)
    if id_col is None:
        raise RosterError(
            f"line {header_line}: the header {header!r} has no `id` column; the first line must "
            "name the columns, e.g. `id,name`."
        )
    name_col = columns.index("name") if "name" in columns else None
    problems: list[RowProblem] = []
    learners: list[Learner] = []
    seen: dict[str, int] = {}
    for line, row in rows[1:]:
        raw = row[id_col].strip() if id_col < len(row) else ""
        text = ",".join(row)
        reason = id_problem(raw)
        if reason is None and raw in seen:
            reason = f"duplicate of line {seen[raw]}: every learner needs their own namespace"
        if reason:
            problems.append(RowProblem(line, text[:80], reason))
            continue
        seen[raw] = line
        name = row[name_col].strip() if name_col is not None and name_col < len(row) else ""
        learners.append(Learner(raw, name))
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise RosterError(
            f"{len(problems)} bad row(s); nothing was created. Fix them and run again:\n{listed}"
        )
    if not learners:
        raise RosterError("the roster has a header but no learners.")
    if len(learners) > MAX_LEARNERS:
        raise RosterError(
            f"{len(learners)} learners; one class holds at most {MAX_LEARNERS}. Split the roster."
        )
    return learners


def load_roster(path: str | Path) -> list[Learner]:
    """Read and check a roster file; every problem is a RosterError naming the file."""
    path = Path(path)
    try:
        if not path.is_file():
            raise RosterError(f"{path}: not a regular file (a CSV roster with an `id` column).")
        if path.stat().st_size > MAX_ROSTER_BYTES:
            raise RosterError(f"{path}: larger than {MAX_ROSTER_BYTES} bytes; is it a roster?")
        data = path.read_bytes()
    except OSError as e:
        raise RosterError(f"{path}: cannot be read ({e.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RosterError(
            f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8 CSV."
        ) from None
    if "\x00" in text:
        raise RosterError(f"{path}: contains NUL bytes; save it as UTF-8 CSV.")
    try:
        return parse_roster(text)
    except RosterError as e:
        raise RosterError(f"{path}: {e}") from None
    except csv.Error as e:
        raise RosterError(f"{path}: not CSV ({e}).") from None
