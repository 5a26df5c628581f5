"""Plan and run a lab step by step: resume, --until/--step/--check/--fresh, deadlines, state.

Two modes over the same lab definition. Learner mode (the default) runs the set-up a step needs
(a step without a task entirely; a task's `setup`), then stops at the task; the next run checks
it and moves on when it passes. `--solve` runs every step's actions: the reference solution.

`plan(lab, options)` is pure: it turns the lab definition into the steps and exact commands
that would run (the docs page and `--dry-run` print it). `Engine.run` executes a plan through
a Runner (the only place with side effects), records progress in `.lab/state.json`, collects
diagnostics when something fails, and ends with a summary that says what to open next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from labconfig.settings import LAB_DIR
from labconfig.versions import REPO_ROOT
from labs import diagnostics, learner
from labs.doctor import render as render_findings
from labs.learner_flow import LearnerFlow
from labs.model import (
    CHECK,
    CLUSTER,
    DOCTOR,
    LOAD_IMAGE,
    POLL,
    SCORE_JSON,
    Action,
    Lab,
    Step,
    Task,
    checker_argv,
)
from labs.runner import Clock, Result, Runner, SystemClock, format_command
from labs.state import STATE_FILE, LabState

# pytest's exit codes that mean "the checkers could not run", not "a checker failed".
PYTEST_USAGE_ERROR = 4
PYTEST_NO_TESTS = 5


@dataclass(frozen=True)
class Options:
    """What the learner asked for on the command line."""

    dry_run: bool = False
    until: int | None = None  # stop before this step (do it by hand)
    step: int | None = None  # run only this step (even when recorded as done)
    check: bool = False  # only run the checkers
    fresh: bool = False  # delete the cluster first
    solve: bool = False  # run the reference solution instead of stopping at each task
    hint: bool = False  # show the next hint of the current exercise; run nothing


@dataclass(frozen=True)
class PlannedAction:
    action: Action
    display: str  # exactly what the runner prints and the docs page shows

    @property
    def title(self) -> str:
        return self.action.title

    @property
    def kind(self) -> str:
        return self.action.kind


@dataclass(frozen=True)
class PlannedStep:
    """A step as these options run it: `actions` are what the engine runs (learner mode: the
    set-up; --solve: the solution); `task` is the exercise it stops at (learner mode only)."""

    step: Step
    actions: tuple[PlannedAction, ...]
    task: Task | None = None


class OptionsError(ValueError):
    """Options that contradict each other or name a step the lab does not have."""


def validate(lab: Lab, options: Options) -> None:
    if options.until is not None and options.step is not None:
        raise OptionsError("use either --until N (stop before step N) or --step N, not both")
    if options.check and (options.until is not None or options.fresh):
        raise OptionsError(
            "--check only runs the checkers (all of them, or one step's with --step N); "
            "it cannot be combined with --until or --fresh"
        )
    if options.hint and (options.solve or options.check or options.fresh or options.dry_run):
        raise OptionsError(
            "--hint only shows the next hint of your current exercise (or of step N with "
            "--step N); it cannot be combined with --solve, --check, --fresh or --dry-run"
        )
    if options.hint and options.step is not None and lab.step(options.step).task is None:
        raise OptionsError(f"step {options.step} has no exercise, so it has no hints")
    for n in (options.until, options.step):
        if n is not None:
            try:
                lab.step(n)
            except KeyError as e:
                raise OptionsError(str(e.args[0])) from None


def select_steps(lab: Lab, options: Options) -> list[Step]:
    """The steps these options ask for, in order (--check selects none: see check_action)."""
    if options.check:
        return []
    if options.step is not None:
        return [lab.step(options.step)]
    if options.until is not None:
        return [s for s in lab.steps if s.number < options.until]
    return list(lab.steps)


def planned(action: Action) -> PlannedAction:
    return PlannedAction(action, format_command(action.argv, action.env))


def is_exercise(step: Step, options: Options) -> bool:
    """Whether these options stop at the step's task instead of running its solution."""
    return step.task is not None and not options.solve


def runs(step: Step, options: Options) -> tuple[Action, ...]:
    """What the engine runs for a step: its task's set-up, or (no task, --solve) its actions."""
    return step.task.setup if is_exercise(step, options) else step.actions


def plan(lab: Lab, options: Options | None = None) -> list[PlannedStep]:
    """The steps and exact commands these options would run. Pure: touches nothing."""
    options = options or Options()
    validate(lab, options)
    return [
        PlannedStep(
            step,
            tuple(planned(a) for a in runs(step, options)),
            step.task if is_exercise(step, options) else None,
        )
        for step in select_steps(lab, options)
    ]


def check_action(lab: Lab, step: int | None = None, *, solve: bool = True) -> Action:
    """One checker run covering every checker of the lab, or of one step (what --check runs).

    `solve=False` asks for the learner's checkers (a task's own) instead of the solution's.
    """
    if step is None:
        ids = lab.checker_ids if solve else lab.learner_checker_ids
    else:
        s = lab.step(step)
        ids = tuple(c.id for c in (s.checks if solve else s.learner_checks))
    title = "Run every checker of the lab" if step is None else f"Run the checkers of step {step}"
    return Action(argv=checker_argv(lab.kubeconfig, ids), title=title, kind=CHECK, timeout=900)


def kubeconfig_export(lab: Lab) -> str:
    path = lab.kubeconfig
    return f"export KUBECONFIG={path if path.startswith('/') else '$PWD/' + path}"


def render_plan(lab: Lab, options: Options | None = None) -> str:
    """The plan as text, for --dry-run: every step, every command, nothing executed.

    Learner mode shows the set-up the engine runs and each task (never its solution);
    `--solve` shows every command of the reference solution.
    """
    options = options or Options()
    out = [f"{lab.title}", f"Plan for cluster `{lab.cluster_name}` (dry run: nothing is run)", ""]
    if not options.solve:
        out[-1:] = [
            "Learner mode: the lab runs the set-up shown with `$`, then stops at each task for "
            "you to do; `--dry-run --solve` shows the reference solution.",
            "",
        ]
    if options.check:
        action = check_action(lab, options.step, solve=options.solve)
        out += [f"# {action.title}", f"$ {format_command(action.argv, action.env)}"]
        return "\n".join(out) + "\n"
    for ps in plan(lab, options):
        out += _render_step(lab, ps, options)
    if options.until is not None:
        out.append(
            f"Stops before step {options.until}: do it by hand "
            f"(docs/{lab.step(options.until).docs}), then check it with "
            f"`--check --step {options.until}`."
        )
    return "\n".join(out) + "\n"


def _render_step(lab: Lab, ps: PlannedStep, options: Options) -> list[str]:
    step = ps.step
    optional = " (optional)" if step.optional else ""
    out = [f"## Step {step.number}: {step.title}{optional}   [{step.docs}]"]
    if ps.task is None and not options.solve and step.objective:
        when = f" ({learner.timing(step)})" if step.minutes else ""
        out.append(f"# You will be able to: {step.objective}{when}")
    for pa in ps.actions:
        out.append(f"# {pa.title}")
        out.append(f"$ {pa.display}")
        if pa.action.fallback:
            out.append(
                "#   if it fails with `content digest ... not found` (Apple Silicon, "
                "containerd image store), the lab runs instead:"
            )
            for fb in pa.action.fallback:
                out.append(f"#   $ {format_command(fb.argv, fb.env)}")
    if ps.task is not None:
        out += learner.task_lines(lab, step)
    elif step.checks:
        out.append("# Checkers: " + ", ".join(c.id for c in step.checks))
    out.append("")
    return out


def checker_ids(action: Action) -> list[str]:
    """The ids a check action asks for (the values of its --checker options)."""
    argv = action.argv
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--checker"]


def score_path(action: Action, cwd: Path) -> Path:
    """Where the check action writes its per-checker results: its own `--score-json`, relative
    to the directory the runner runs it in (so it is read back whatever --lab-dir is)."""
    argv = action.argv
    given = next(
        (argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--score-json"), SCORE_JSON
    )
    path = Path(given)
    return path if path.is_absolute() else cwd / path


def _read_score(path: Path) -> dict[str, bool]:
    """checker id -> passed, from the checkers' score JSON (empty when absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
        return {cid: bool(row.get("passed")) for cid, row in data["checkers"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _read_diagnoses(path: Path) -> dict[str, str]:
    """checker id -> diagnosis of each failed checker, from the score JSON (empty if absent)."""
    try:
        data = json.loads(path.read_text())
        return {
            cid: str(row.get("diagnosis") or "")
            for cid, row in data["checkers"].items()
            if not row.get("passed")
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


# Stands in for a step when `--check` fails (no step was run).
CHECKS_ONLY = Step(
    number=-1,
    id="checks",
    title="the checkers",
    docs="reference/checkers.md",
    summary="",
    actions=(),
)


@dataclass
class StepFailure(Exception):
    step: Step
    action: Action
    result: Result
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """What a checker run concluded: all passed, whether they ran at all, why each failed."""

    passed: bool
    ran: bool
    diagnoses: dict[str, str]
    reason: str = ""


@dataclass
class RunReport:
    ran: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    checks_missing: list[str] = field(default_factory=list)
    failure: StepFailure | None = None
    artifacts: Path | None = None
    optional_failures: list[int] = field(default_factory=list)
    # Learner mode: the exercise the run stopped at, and whether its check failed.
    task: Step | None = None
    task_failed: bool = False


class Engine(LearnerFlow):
    """Runs a lab through a Runner; every side effect goes through `runner`."""

    def __init__(
        self,
        lab: Lab,
        runner: Runner,
        *,
        lab_dir: Path = REPO_ROOT / LAB_DIR,
        clock: Clock | None = None,
        checks_plugin: Path = REPO_ROOT / "checks" / "conftest.py",
    ) -> None:
        self.lab = lab
        self.runner = runner
        self.console = runner.console
        self.lab_dir = lab_dir
        self.clock = clock or SystemClock()
        self.checks_plugin = checks_plugin
        self.state = LabState.load(lab_dir / STATE_FILE, lab.id, lab.cluster_name)
        self.report = RunReport()

    # -- entry point -------------------------------------------------------------------------

    def run(self, options: Options) -> int:
        """Run what the options ask for; 0 when everything asked for succeeded."""
        validate(self.lab, options)
        if options.hint:
            return self._hint(options.step)
        for sub in ("", "images", "artifacts"):
            (self.lab_dir / sub).mkdir(parents=True, exist_ok=True)
        try:
            if options.check:
                self._run_checks_only(options.step, solve=options.solve)
            else:
                self._prepare_cluster(options)
                self._run_steps(options)
        except StepFailure as failure:
            self.report.failure = failure
            self._diagnose(failure)
        self._summary(options)
        return 1 if self.report.failure or self.report.task_failed else 0

    def _run_steps(self, options: Options) -> None:
        for step in select_steps(self.lab, options):
            if options.step is None and self.state.is_done(step.number):
                self.report.skipped.append(step.number)
                self.console.print(
                    f"[dim]Step {step.number} ({step.title}) is done "
                    f"({self.state.steps[str(step.number)]['done_at']}); skipping. "
                    f"Redo it with --step {step.number}.[/]"
                )
                continue
            if not is_exercise(step, options):
                self._run_optional_or_step(step)
            elif not self._exercise(step):
                return  # stopped at a task: the learner's turn

    # -- cluster -----------------------------------------------------------------------------

    def _prepare_cluster(self, options: Options) -> None:
        name = self.lab.cluster_name
        exists = self.runner.cluster_exists(name)
        if options.fresh and exists:
            self.console.print(f"[bold]--fresh: deleting the kind cluster `{name}`[/]")
            result = self.runner.delete_cluster(name)
            if not result.ok:
                delete = Action(
                    argv=("kind", "delete", "cluster", f"--name={name}"),
                    title="Delete the lab cluster (--fresh)",
                )
                raise StepFailure(self.lab.steps[0], delete, result, "could not delete the cluster")
            exists = False
        if not exists and self.state.steps:
            self.console.print(
                f"[yellow]The kind cluster `{name}` does not exist (any more): the recorded "
                "progress belonged to the old one and starts over.[/]"
            )
        if not exists:
            self.state.reset()
            first = options.step if options.step is not None else 0
            if first != 0:
                self.console.print(
                    f"[yellow]Step {first} needs the cluster from step 0; run "
                    "`nox -s lab-2 -- --step 0` first.[/]"
                )

    # -- steps -------------------------------------------------------------------------------

    def _run_optional_or_step(self, step: Step) -> None:
        """A failing optional step (Grafana) is explained, but it does not fail the run."""
        if not step.optional:
            self._run_step(step)
            return
        try:
            self._run_step(step)
        except StepFailure as failure:
            self._diagnose(failure)
            self.report.optional_failures.append(step.number)

    def _run_step(self, step: Step) -> None:
        optional = " (optional)" if step.optional else ""
        self.console.rule(f"[bold]Step {step.number}: {escape(step.title)}{optional}")
        self.console.print(f"[dim]{escape(step.summary)}  Docs: docs/{step.docs}[/]")
        start = self.clock.now()
        for action in step.actions:
            self.console.print(f"\n[bold]{escape(action.title)}[/]")
            self._run_action(step, action)
        self.report.ran.append(step.number)
        self.state.mark_done(step.number)
        took = int(self.clock.now() - start)
        self.console.print(f"[green]Step {step.number} done[/] in {took // 60}m{took % 60:02d}s.")

    def _run_action(self, step: Step, action: Action) -> None:
        if action.skip_if and action.kind != CLUSTER:
            probe = self.runner.run(action.skip_if, echo=False, show_output=False, timeout=60)
            if probe.ok:
                self.console.print(
                    f"[dim]Already done (`{escape(format_command(action.skip_if))}` "
                    "succeeded): skipped.[/]"
                )
                return
        if action.kind == DOCTOR:
            self._doctor(step, action)
        elif action.kind == CLUSTER:
            result = self.runner.create_cluster(action.argv, action.timeout)
            if not result.ok:
                raise StepFailure(step, action, result, "kind could not create the cluster")
        elif action.kind == POLL:
            self._poll(step, action)
        elif action.kind == CHECK:
            self._check(step, action, checker_ids(action))
        elif action.kind == LOAD_IMAGE:
            self._load_image(step, action)
        else:
            result = self._run(action)
            if not result.ok:
                raise StepFailure(step, action, result)

    def _run(self, action: Action, **kwargs) -> Result:
        return self.runner.run(
            action.argv,
            env=action.env,
            timeout=action.timeout,
            show_output=kwargs.pop("show_output", action.show_output),
            waiting_for=action.title,
            **kwargs,
        )

    def _doctor(self, step: Step, action: Action) -> None:
        self.console.print(f"[bold cyan]$[/] {escape(format_command(action.argv))}")
        findings = self.runner.doctor()
        blocking = [f for f in findings if f.blocking]
        for line in render_findings(findings):
            self.console.print(line)
        if blocking:
            text = "\n".join(f"{f.problem} -> {f.fix}" for f in blocking)
            raise StepFailure(step, action, Result(1, text), "the preflight found blockers")

    def _poll(self, step: Step, action: Action) -> None:
        """Repeat a probe until it succeeds or its deadline passes (deadlines use the clock)."""
        timeout = action.timeout or 60
        start = self.clock.now()
        self.console.print(f"[bold cyan]$[/] {escape(format_command(action.argv, action.env))}")
        last = Result(1, "")
        with self.runner.status(f"{action.title} (up to {int(timeout)}s)") as update:
            while True:
                last = self.runner.run(
                    action.argv,
                    env=action.env,
                    timeout=min(60, timeout),
                    echo=False,
                    show_output=False,
                )
                if last.ok and action.expect in last.output:
                    self.console.print(f"  [green]ok[/] after {int(self.clock.now() - start)}s")
                    return
                elapsed = self.clock.now() - start
                if elapsed >= timeout:
                    break
                update(f"{action.title} ({int(elapsed)}s of {int(timeout)}s)")
                self.clock.sleep(min(action.interval, max(0.0, timeout - elapsed)))
        expected = f"output containing {action.expect!r}" if action.expect else "exit code 0"
        reason = (
            f"gave up after {int(timeout)}s waiting for {expected}; "
            "on a slow machine LAB_TIMEOUT_SCALE=2 doubles every deadline"
        )
        raise StepFailure(step, action, Result(last.returncode or 1, last.output, True), reason)

    def _load_image(self, step: Step, action: Action) -> None:
        result = self._run(action)
        if result.ok:
            return
        if any(re.search(pattern, result.output) for pattern in action.fallback_on):
            self.console.print(
                "[yellow]`kind load docker-image` hit the containerd image-store problem "
                "(`content digest ... not found`, kind#3795, common on Apple Silicon): saving "
                "only this machine's platform and loading that archive instead. Set "
                "LAB_IMAGE_LOAD=archive to go that way directly.[/]"
            )
            for fallback in action.fallback:
                fb = self._run(fallback)
                if not fb.ok:
                    raise StepFailure(step, fallback, fb)
            return
        raise StepFailure(step, action, result)

    # -- for other flows over the same lab (drills) --------------------------------------------

    def perform(self, step: Step, actions: Sequence[Action]) -> bool:
        """Run `actions` in the context of `step` (polls, fallbacks, skip probes as usual);
        False after a failure, which is diagnosed like a step's."""
        try:
            for action in actions:
                self.console.print(f"\n[bold]{escape(action.title)}[/]")
                self._run_action(step, action)
        except StepFailure as failure:
            self.report.failure = failure
            self._diagnose(failure)
            return False
        return True

    def verify(self, step: Step, ids: Sequence[str]) -> Verdict:
        """Run the checkers `ids` once; the verdict carries each failed checker's diagnosis."""
        action = Action(
            argv=checker_argv(self.lab.kubeconfig, tuple(ids)),
            title=f"Run the checkers of {step.title}",
            kind=CHECK,
            timeout=900,
        )
        return self.run_check(step, action)

    def _score_file(self, action: Action) -> Path:
        """The score JSON this check action writes (read back for results and diagnoses)."""
        return score_path(action, getattr(self.runner, "cwd", REPO_ROOT))

    def run_check(self, step: Step, action: Action) -> Verdict:
        """Run a check action; a failure is a verdict (with each checker's diagnosis), not an
        exception, so a flow can teach from it instead of stopping."""
        try:
            ran = self._check(step, action, checker_ids(action))
        except StepFailure as failure:
            diagnoses = _read_diagnoses(self._score_file(action))
            return Verdict(False, True, diagnoses, failure.reason)
        return Verdict(ran, ran, {})

    # -- checkers ----------------------------------------------------------------------------

    def _check(self, step: Step | None, action: Action, ids: Sequence[str]) -> bool:
        if not self.checks_plugin.exists():
            self._checks_not_run(
                ids,
                f"the checkers are not installed in this checkout ({self.checks_plugin} is "
                "missing), so these were NOT run",
                action,
            )
            return False
        score = self._score_file(action)
        score.unlink(missing_ok=True)  # never read a previous run's results
        result = self._run(action)
        if result.returncode in (PYTEST_USAGE_ERROR, PYTEST_NO_TESTS):
            why = (
                "pytest did not accept the checker options (is the checks plugin complete?)"
                if result.returncode == PYTEST_USAGE_ERROR
                else "no checker with these ids exists yet"
            )
            self._checks_not_run(ids, f"{why}; these were NOT run", action)
            return False
        per_id = _read_score(score)
        for checker_id in ids:
            passed = per_id.get(checker_id, result.ok)
            self.state.record_checks([checker_id], "passed" if passed else "failed")
        if result.ok:
            self.console.print(f"  [green]checks passed:[/] {', '.join(ids)}")
            return True
        failed = [i for i in ids if not per_id.get(i, False)]
        reason = f"checker(s) failed: {', '.join(failed)}; their messages above say what to fix"
        raise StepFailure(step or CHECKS_ONLY, action, result, reason)

    def _checks_not_run(self, ids: Sequence[str], why: str, action: Action) -> None:
        self.report.checks_missing.extend(ids)
        self.state.record_checks(list(ids), "not-run")
        self.console.print(
            f"[bold yellow]Checkers not run:[/] {', '.join(ids)}: {escape(why)}.\n"
            f"  [dim]Command that would verify them: {escape(format_command(action.argv))}[/]"
        )

    def _run_checks_only(self, step: int | None, *, solve: bool) -> None:
        """--check: every checker, or one step's (passing ones mark a hand-made step done)."""
        action = check_action(self.lab, step, solve=solve)
        ids = checker_ids(action)
        self.console.rule("[bold]Checkers" + ("" if step is None else f" of step {step}"))
        if not ids:
            self.console.print(f"Step {step} has no checkers: nothing to check.")
            return
        if not self.runner.cluster_exists(self.lab.cluster_name):
            result = Result(1, f"no kind cluster named {self.lab.cluster_name}")
            reason = "there is no lab cluster to check: run `nox -s lab-2` first"
            raise StepFailure(CHECKS_ONLY, action, result, reason)
        if self._check(None, action, ids) and step is not None:
            self.state.mark_done(step)
            self.console.print(
                f"Step {step} is recorded as done; `nox -s lab-2` continues after it."
            )

    # -- failure and summary -----------------------------------------------------------------

    def _diagnose(self, failure: StepFailure) -> None:
        action = failure.action
        where = (
            "Checkers"
            if failure.step is CHECKS_ONLY
            else f"Step {failure.step.number}"
            if failure.step.number >= 0
            else failure.step.title  # a flow outside the lab's steps (a drill)
        )
        self.console.print(
            f"\n[bold red]{where} failed:[/] {escape(action.title)}\n"
            f"  command: {escape(format_command(action.argv, action.env))}\n"
            f"  exit code: {failure.result.returncode}"
            + (f"\n  why: {escape(failure.reason)}" if failure.reason else "")
        )
        tail = failure.result.output.strip().splitlines()[-15:]
        if tail:
            self.console.print("  last output:")
            for line in tail:
                self.console.print(f"    {escape(line)}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = self.lab_dir / "artifacts" / stamp
        namespaces = action.namespaces or tuple(
            dict.fromkeys(ns for a in failure.step.actions for ns in a.namespaces)
        )
        releases = action.releases or tuple(
            dict.fromkeys(r for a in failure.step.actions for r in a.releases)
        )
        if failure.step is CHECKS_ONLY:
            every = [a for s in self.lab.steps for a in s.actions]
            namespaces = tuple(dict.fromkeys(ns for a in every for ns in a.namespaces))
            releases = tuple(dict.fromkeys(r for a in every for r in a.releases))
        if action.kind in (DOCTOR, CLUSTER):
            namespaces, releases = (), ()
        found = diagnostics.collect(
            self.runner,
            folder,
            kubeconfig=self.lab.kubeconfig,
            namespaces=namespaces,
            releases=releases,
            failure=failure.result.output,
        )
        self.report.artifacts = folder
        if found.explaining:
            self.console.print("\n[bold]What explains it:[/]")
            for line in found.explaining:
                self.console.print(f"  [red]•[/] {escape(line)}")
        self.console.print(f"\nDiagnostics saved in {folder.relative_to(self.lab_dir.parent)}/")
        if failure.step.hints:
            self.console.print("[bold]Hints:[/]")
            for hint in failure.step.hints:
                self.console.print(f"  - {escape(hint)}")

    def _summary(self, options: Options) -> None:
        r = self.report
        self.console.rule("[bold]Summary")
        if r.ran:
            self.console.print(f"Steps run: {', '.join(map(str, r.ran))}")
        if r.skipped:
            self.console.print(f"Steps already done (skipped): {', '.join(map(str, r.skipped))}")
        passed = sorted(k for k, v in self.state.checks.items() if v["result"] == "passed")
        failed = sorted(k for k, v in self.state.checks.items() if v["result"] == "failed")
        if passed:
            self.console.print(f"[green]Checks passed:[/] {', '.join(passed)}")
        if failed:
            self.console.print(f"[red]Checks failed:[/] {', '.join(failed)}")
        if r.checks_missing:
            self.console.print(
                f"[yellow]Checks not run (checkers missing):[/] {', '.join(r.checks_missing)}"
            )
        self.console.print(f"Progress is recorded in {self.state.path}")
        for number in r.optional_failures:
            self.console.print(
                f"[yellow]Optional step {number} failed[/] (explained above); the lab itself "
                f"is complete. Retry it with `nox -s lab-2 -- --step {number}`."
            )
        if r.failure and r.failure.step is CHECKS_ONLY:
            self.console.print(
                "[bold red]Some checkers failed.[/] Each message above says what was observed "
                "and what to fix; rerun `nox -s lab-2 -- --check` afterwards."
            )
            return
        if r.failure:
            self.console.print(
                f"[bold red]Stopped at step {r.failure.step.number}.[/] Fix what is explained "
                f"above, then rerun `nox -s lab-2` (finished steps are skipped) or "
                f"`nox -s lab-2 -- --step {r.failure.step.number}`."
            )
            return
        self._task_summary()
        waiting = r.task is not None and not self.state.is_done(r.task.number)
        if options.until is not None and not waiting:
            step = self.lab.step(options.until)
            self.console.print(
                f"[bold]Your turn:[/] do step {step.number} ({step.title}) by hand "
                f"(docs/{step.docs}), then `nox -s lab-2 -- --check --step {step.number}`. "
                f"`nox -s lab-2 -- --solve --step {step.number}` runs the reference solution "
                "instead."
            )
        lines = [f"  {kubeconfig_export(self.lab)}    # use the lab cluster in this shell"]
        grafana = self.lab.grafana_after
        if self.lab.grafana_url and (grafana is None or self.state.is_done(grafana)):
            lines.append(f"  Grafana: {self.lab.grafana_url} ({escape(self.lab.grafana_login)})")
        query = self.lab.query_after
        if self.lab.try_query and (query is None or self.state.is_done(query)):
            where = "Explore → Loki" if grafana is None or self.state.is_done(grafana) else "LogQL"
            lines.append(f"  Try in {where}: {escape(self.lab.try_query)}")
        lines.append("  `nox -s lab-down` deletes the lab cluster when you are finished.")
        self.console.print("\n[bold]Next:[/]\n" + "\n".join(lines))
