"""Learner mode's part of the engine: hand out a task, check it, give hints.

A mixin of `labs.engine.Engine`: it uses the engine's runner, state and console, runs the
task's set-up through `Engine._run_action` (a failure there is a step failure like any other)
and checks through `Engine.run_check`, whose verdict it turns into the learner's next move.
The words come from `labs.learner`.
"""

from __future__ import annotations

from rich.markup import escape

from labs import learner
from labs.model import Step


class LearnerFlow:
    """Needs from the engine: lab, state, console, report, _run_action, run_check."""

    def _exercise(self, step: Step) -> bool:
        """Hand out the step's task, or check it if it was handed out; True when it passed."""
        self.report.task = step
        if not learner.task_given(self.state, step.number):
            self._give_task(step)
            return False
        return self._check_task(step)

    def _give_task(self, step: Step) -> None:
        optional = " (optional)" if step.optional else ""
        self.console.rule(f"[bold]Step {step.number}: {escape(step.title)}{optional}")
        self.console.print(f"[dim]{escape(step.summary)}[/]")
        for action in step.task.setup if step.task else ():
            self.console.print(f"\n[bold]{escape(action.title)}[/]")
            self._run_action(step, action)
        learner.give_task(self.state, step.number)
        self.console.print()
        for line in learner.task_lines(self.lab, step):
            self.console.print(escape(line))

    def _check_task(self, step: Step) -> bool:
        self.console.rule(f"[bold]Step {step.number}: checking your work")
        verdict = self.run_check(step, learner.check_action(self.lab, step))
        if verdict.passed:
            self.state.mark_done(step.number)
            self.report.ran.append(step.number)
            self.console.print(f"[green]Step {step.number} passed.[/] On to the next one.")
            return True
        self.report.task_failed = True
        if not verdict.ran:  # the checkers could not run (already said why): nothing verified
            return False
        attempts = learner.failed_attempt(self.state, step.number)
        shown = learner.see_hints(self.state, step.number, 1)
        self.console.print(
            f"\n[bold yellow]Not yet[/] (attempt {attempts}): {escape(verdict.reason)}"
        )
        for cid, diagnosis in verdict.diagnoses.items():
            self.console.print(f"[bold]{escape(cid)}[/]")
            for line in diagnosis.splitlines():
                self.console.print(f"  {escape(line)}")
        for line in learner.hint_lines(step, shown):
            self.console.print(f"  {escape(line)}")
        return False

    def _hint(self, number: int | None) -> int:
        """--hint: one more hint of the current exercise (or of step N); runs nothing."""
        step = self.lab.step(number) if number is not None else None
        step = step or learner.current_task(self.lab, self.state)
        if step is None or step.task is None:
            self.console.print(
                f"No exercise is in progress: `{learner.RUN_AGAIN}` hands out the next one."
            )
            return 0
        wanted = learner.hints_seen(self.state, step.number) + 1
        shown = learner.see_hints(self.state, step.number, min(wanted, len(step.task.hints)))
        self.console.print(f"[bold]Step {step.number}: {escape(step.title)}[/]")
        for line in learner.hint_lines(step, shown):
            self.console.print(f"  {escape(line)}")
        return 0

    def _task_summary(self) -> None:
        """The summary's line about the exercise the run stopped at, if any."""
        r = self.report
        if r.task is None or self.state.is_done(r.task.number):
            return
        n = r.task.number
        self.console.print(
            f"[bold yellow]Step {n} is not passed yet.[/] Fix what the checker says, then "
            f"run `{learner.RUN_AGAIN}` again; `{learner.MORE_HINTS}` gives another hint."
            if r.task_failed
            else f"[bold]Your turn:[/] do the task of step {n} above, then run "
            f"`{learner.RUN_AGAIN}` again to check it."
        )
