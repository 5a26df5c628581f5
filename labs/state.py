"""The lab's progress file, `.lab/state.json`: which steps are done and which checks passed.

A learner can read it (plain JSON, timestamps in UTC); the engine uses it to resume: steps
recorded as done on the current cluster are skipped on the next run. It belongs to one
cluster: when the engine creates a new cluster the record starts over.

Its shape is checked on every load (`shape_problem`). A file that is not that shape (corrupt,
hand-edited, truncated by a full disk, not a regular file) is never used and never lost: it is
renamed to `state.json.bad` (or `.bad-2`, ... when that exists), the record starts over, and
`LabState.notice` says so with the way back; the worst case is that finished steps run again,
and every step converges when rerun. When the lab directory cannot be written (a read-only
checkout), `ensure_writable` and `save` raise `StateError` with the fix instead of a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from validators.files import FileProblem, clip, read_text

STATE_FILE = "state.json"  # in the lab directory (labconfig.settings.LAB_DIR)
MAX_STATE_BYTES = 1024 * 1024  # a real record is a few KB
CHECK_RESULTS = ("passed", "failed", "not-run")


class StateError(Exception):
    """The lab's own files cannot be written here; the message says why and what to do."""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the shape -----------------------------------------------------------------------------


def _entries_problem(section: str, value: Any, required: str, allowed: tuple = ()) -> str | None:
    if not isinstance(value, dict):
        return f'"{section}" is a {type(value).__name__}, not an object'
    for key, entry in value.items():
        if not isinstance(entry, dict) or not isinstance(entry.get(required), str):
            return f'"{section}.{clip(key, 40)}" has no "{required}" text'
        if allowed and entry[required] not in allowed:
            return f'"{section}.{clip(key, 40)}.{required}" is {clip(entry[required], 40)!r}'
    return None


def shape_problem(data: Any) -> str | None:
    """None when `data` is shaped like a state record, else the first thing that is not."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    for key in ("lab", "cluster"):
        if not isinstance(data.get(key), str):
            return f'"{key}" is missing or not text'
    steps = data.get("steps", {})
    if isinstance(steps, dict) and any(not str(k).isdigit() for k in steps):
        return '"steps" has a key that is not a step number'
    return _steps_problem(steps) or _entries_problem(
        "checks", data.get("checks", {}), "result", CHECK_RESULTS
    )


def _steps_problem(steps: Any) -> str | None:
    """Each step entry records it done (`done_at`) or its task handed out (`task_at`, learner
    mode, with counts of hints seen and failed `attempts`)."""
    if not isinstance(steps, dict):
        return f'"steps" is a {type(steps).__name__}, not an object'
    for key, entry in steps.items():
        where = f'"steps.{clip(key, 40)}"'
        if not isinstance(entry, dict):
            return f"{where} is not an object"
        stamps = [entry.get(k) for k in ("done_at", "task_at") if k in entry]
        if not stamps or not all(isinstance(v, str) for v in stamps):
            return f'{where} has neither a "done_at" nor a "task_at" text'
        for count in ("hints", "attempts"):
            value = entry.get(count, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"{where}.{count} is not a count"
    return None


def _read(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the record, None), or (None, why it cannot be used)."""
    try:
        data = json.loads(read_text(path, limit=MAX_STATE_BYTES))
    except FileProblem as e:
        return None, e.message
    except ValueError as e:  # json.JSONDecodeError
        return None, f"it is not valid JSON ({clip(e, 120)})"
    problem = shape_problem(data)
    return (None, problem) if problem else (data, None)


# --- writing -------------------------------------------------------------------------------


def _write_problem(path: Path, e: OSError) -> StateError:
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "read-only file system" if e.errno == errno.EROFS else "permission denied"
        return StateError(
            f"The lab cannot write {path} ({why}): it keeps its kubeconfig, progress and "
            "diagnostics there. Run it from a writable checkout (e.g. `git clone` the course "
            "into your home directory) or make this one writable, then rerun."
        )
    return StateError(f"The lab cannot write {path}: {e.strerror or e}. Fix that, then rerun.")


def ensure_writable(lab_dir: Path) -> None:
    """Create the lab directory and prove a file can be written in it, before any step runs."""
    try:
        lab_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=lab_dir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise _write_problem(lab_dir, e) from None


def _free_name(path: Path) -> Path:
    """state.json.bad, or state.json.bad-2, -3, ...: an earlier set-aside file is kept."""
    candidate, n = path.with_name(path.name + ".bad"), 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"{path.name}.bad-{n}")
    return candidate


@dataclass
class LabState:
    path: Path
    lab: str
    cluster: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    notice: str = ""  # what happened to an unusable file, for the learner
    # Why the file on disk cannot be used, while it is still there: set aside before a write.
    _unusable: str = field(default="", repr=False)

    @classmethod
    def load(cls, path: Path, lab: str, cluster: str) -> LabState:
        """Read the state; a missing file is a fresh start, an unusable one is set aside."""
        state = cls(path=path, lab=lab, cluster=cluster)
        if not os.path.lexists(path):
            return state
        data, problem = _read(path)
        if problem:
            state._unusable = problem
            state._set_aside(strict=False)
        elif data["lab"] == lab and data["cluster"] == cluster:
            state.steps = dict(data.get("steps", {}))
            state.checks = dict(data.get("checks", {}))
        return state

    def _set_aside(self, strict: bool) -> None:
        """Rename the unusable file out of the way, never over an earlier one."""
        bad = _free_name(self.path)
        try:
            os.replace(self.path, bad)
        except OSError as e:
            if strict:
                raise _write_problem(self.path, e) from None
            self.notice = (
                f"{self.path} cannot be used: {self._unusable}. It is left as it is; the lab "
                "starts its record over (finished steps run again)."
            )
            return
        why, self._unusable = self._unusable, ""
        self.notice = (
            f"{self.path} could not be used ({why}); it was set aside as {bad.name} and the "
            "lab starts its record over (finished steps run again, harmlessly). To keep the old "
            f"record instead, repair it and move it back: mv {bad} {self.path}"
        )

    def save(self) -> None:
        if self._unusable:  # never write over a file the learner may want back
            self._set_aside(strict=True)
        data = {
            "lab": self.lab,
            "cluster": self.cluster,
            "updated_at": utc_now(),
            "steps": self.steps,
            "checks": self.checks,
        }
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        except OSError as e:
            raise _write_problem(self.path, e) from None

    def is_done(self, number: int) -> bool:
        return "done_at" in self.steps.get(str(number), {})

    def mark_done(self, number: int) -> None:
        self.steps[str(number)] = {"done_at": utc_now()}
        self.save()

    def record_checks(self, ids: list[str] | tuple[str, ...], outcome: str) -> None:
        """outcome: "passed", "failed" or "not-run" (the checkers are missing)."""
        for checker_id in ids:
            self.checks[checker_id] = {"result": outcome, "at": utc_now()}
        self.save()

    def reset(self) -> None:
        self.steps.clear()
        self.checks.clear()
        self.save()
