"""Learner mode's words and records: the task text, the hints, and the task's progress.

The engine decides *when* a task is shown or checked; this module says *what* is shown, in one
place, so that the terminal, `--dry-run` and the lab page cannot word a task differently. The
progress of a task lives next to the step's own record in `.lab/state.json`
(`steps["<n>"]`), in three plain fields:

- `task_at`: UTC time the task was handed to the learner (its set-up done); present means
  "the next run checks this exercise";
- `hints`: how many of the task's hints the learner has seen (0 .. len(hints));
- `attempts`: how many checks of the task have failed.

A step recorded as done (`done_at`) is finished whatever the other fields say.
"""

from __future__ import annotations

from labs.model import CHECK, Action, Lab, Step, checker_argv
from labs.runner import format_command
from labs.state import LabState, utc_now

RUN_AGAIN = "nox -s lab-2"  # what the learner types to check the current exercise
MORE_HINTS = "nox -s lab-2 -- --hint"
SOLVE_STEP = "nox -s lab-2 -- --solve --step {n}"


def check_action(lab: Lab, step: Step) -> Action:
    """The checker run of a task: the learner's checkers of this step."""
    ids = tuple(c.id for c in step.learner_checks)
    return Action(
        argv=checker_argv(lab.kubeconfig, ids),
        title=f"Check your work on step {step.number}",
        kind=CHECK,
        timeout=900,
    )


def timing(step: Step) -> str:
    return f"about {step.minutes} min" if step.minutes else ""


def task_lines(lab: Lab, step: Step) -> list[str]:
    """The task as plain lines: goal, files, commands to type, objective, time, how to check."""
    task = step.task
    if task is None:
        return []
    out = [f"Your task (step {step.number}: {step.title})", f"  {task.goal}"]
    if task.files:
        out.append("  Files to edit: " + ", ".join(task.files))
    if task.commands:
        out.append("  Commands to type (from the lab page):")
        out += [f"    {format_command(a.argv, a.env)}" for a in task.commands]
    if step.objective:
        out.append(f"  You will be able to: {step.objective}")
    if step.minutes:
        out.append(f"  Time: {timing(step)}")
    ids = ", ".join(c.id for c in step.learner_checks)
    out.append(f"  Check it: `{RUN_AGAIN}` (runs {ids}); stuck: `{MORE_HINTS}`")
    out.append(f"  Docs: docs/{step.docs}")
    return out


def hint_lines(step: Step, shown: int) -> list[str]:
    """The first `shown` hints of the step's task (at least one), numbered."""
    hints = step.task.hints if step.task else step.hints
    shown = max(1, min(shown, len(hints)))
    out = [f"Hint {i} of {len(hints)}: {h}" for i, h in enumerate(hints[:shown], 1)]
    if shown < len(hints):
        out.append(f"More: `{MORE_HINTS}`.")
    else:
        out.append(
            f"That was the last hint. The reference solution: `{SOLVE_STEP.format(n=step.number)}`."
        )
    return out


# -- the record of a task in .lab/state.json ---------------------------------------------------
def _record(state: LabState, number: int) -> dict:
    return state.steps.setdefault(str(number), {})


def task_given(state: LabState, number: int) -> bool:
    return "task_at" in state.steps.get(str(number), {})


def give_task(state: LabState, number: int) -> None:
    rec = _record(state, number)
    rec.setdefault("task_at", utc_now())
    rec.setdefault("hints", 0)
    rec.setdefault("attempts", 0)
    state.save()


def hints_seen(state: LabState, number: int) -> int:
    value = state.steps.get(str(number), {}).get("hints", 0)
    return value if isinstance(value, int) and value >= 0 else 0


def see_hints(state: LabState, number: int, count: int) -> int:
    """Record that `count` hints have been seen (never fewer than before); returns the count."""
    rec = _record(state, number)
    rec["hints"] = max(hints_seen(state, number), count)
    state.save()
    return rec["hints"]


def failed_attempt(state: LabState, number: int) -> int:
    rec = _record(state, number)
    attempts = rec.get("attempts", 0)
    rec["attempts"] = (attempts if isinstance(attempts, int) else 0) + 1
    state.save()
    return rec["attempts"]


def current_task(lab: Lab, state: LabState) -> Step | None:
    """The exercise the learner is on: the first task given and not done."""
    for step in lab.steps:
        if step.task and task_given(state, step.number) and not state.is_done(step.number):
            return step
    return None
