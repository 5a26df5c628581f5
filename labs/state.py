"""The lab's progress file, `.lab/state.json`: which steps are done and which checks passed.

A learner can read it (plain JSON, timestamps in UTC); the engine uses it to resume: steps
recorded as done on the current cluster are skipped on the next run. It belongs to one
cluster: when the engine creates a new cluster the record starts over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"  # in the lab directory (labconfig.settings.LAB_DIR)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LabState:
    path: Path
    lab: str
    cluster: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, lab: str, cluster: str) -> LabState:
        """Read the state; a missing file is a fresh start, a broken one is set aside, not lost."""
        state = cls(path=path, lab=lab, cluster=cluster)
        if not path.exists():
            return state
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError):
            broken = path.with_suffix(".broken.json")
            os.replace(path, broken)
            return state
        if data.get("lab") == lab and data.get("cluster") == cluster:
            state.steps = dict(data.get("steps", {}))
            state.checks = dict(data.get("checks", {}))
        return state

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "lab": self.lab,
            "cluster": self.cluster,
            "updated_at": utc_now(),
            "steps": self.steps,
            "checks": self.checks,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

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
