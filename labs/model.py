"""A lab as plain data: ordered steps, each with the commands that set it up and the checkers
that verify it.

The same objects feed three consumers: the engine runs the actions, the docs page prints them,
and the checkers are referenced by id. Keeping them as frozen dataclasses (no behaviour, no
side effects) is what lets the docs show exactly the command the engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labconfig.settings import LAB_DIR

# What the engine does with an action. Every kind still has `argv`: the command a learner types.
RUN = "run"  # run argv once; a non-zero exit fails the step
POLL = "poll"  # run argv until it succeeds (and prints `expect`), or the deadline passes
DOCTOR = "doctor"  # the preflight (`python -m labs doctor`), run in-process
CLUSTER = "cluster"  # create the kind cluster unless it exists (through pytest-kind)
LOAD_IMAGE = "load-image"  # `kind load docker-image`, with the image-archive fallback
CHECK = "check"  # run checkers (`python -m pytest checks ...`)

KINDS = (RUN, POLL, DOCTOR, CLUSTER, LOAD_IMAGE, CHECK)

# Where check actions ask the checkers to write per-checker results (relative to the repo root).
SCORE_JSON = f"{LAB_DIR}/score.json"


def checker_argv(kubeconfig: str, ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The command of a CHECK action: the checkers `ids`, results written to SCORE_JSON."""
    argv = ["python", "-m", "pytest", "checks", "--kubeconfig", kubeconfig]
    argv += ["--score-json", SCORE_JSON]
    for checker_id in ids:
        argv += ["--checker", checker_id]
    return tuple(argv)


@dataclass(frozen=True)
class Action:
    """One command of a step.

    `argv` is the command exactly as a learner would type it (tool names, not resolved paths);
    `env` holds variables shown in front of it and set when it runs. `timeout` is the deadline
    in seconds after which the runner stops the command; `labs.lab2.build` has already scaled it
    (and any `--timeout=` in argv) by LAB_TIMEOUT_SCALE.
    """

    argv: tuple[str, ...]
    title: str
    kind: str = RUN
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None
    # POLL: stdout must contain this text for the poll to succeed (empty: exit code 0 is enough).
    expect: str = ""
    # POLL: seconds between attempts.
    interval: float = 3.0
    # A command whose success means the work is already done (the action is then skipped).
    # CLUSTER actions carry `kind get clusters` here for the docs; the reuse itself happens in
    # labs.cluster (pytest-kind), which also repairs a missing kubeconfig.
    skip_if: tuple[str, ...] = ()
    # Regular expressions: output matching one of them means "try the fallback" (LOAD_IMAGE:
    # the containerd-store failure of `kind load docker-image`); any other failure fails.
    fallback_on: tuple[str, ...] = ()
    fallback: tuple[Action, ...] = ()
    # Namespaces whose state explains a failure of this action (diagnostics look there).
    namespaces: tuple[str, ...] = ()
    # Helm releases (release, namespace) whose status explains a failure.
    releases: tuple[tuple[str, str], ...] = ()
    # Shown output is the point of the action (`kubectl logs`): print it even when it succeeds.
    show_output: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown action kind {self.kind!r}; expected one of {KINDS}")
        if not self.argv:
            raise ValueError(f"action {self.title!r} has an empty command")


@dataclass(frozen=True)
class CheckRef:
    """A checker the step is verified by, by its id in `checks.catalogue`."""

    id: str


@dataclass(frozen=True)
class Task:
    """What the learner does by hand in a step (learner mode), as opposed to the solution.

    The engine runs `setup` (what the exercise needs that is not the point of it, e.g. shipping
    a service mis-configured), then stops and prints `goal` (what to achieve, not how), the
    `files` to edit, the `commands` the lab page gives (typed by the learner, never run by the
    engine) and how to check. Running the lab again runs `checks`; a failure shows the
    diagnosis and `hints[0]`, `--hint` the next ones. The step's own `actions` stay the
    reference solution (`--solve`).
    """

    goal: str
    files: tuple[str, ...] = ()
    commands: tuple[Action, ...] = ()
    setup: tuple[Action, ...] = ()
    # The checkers of the learner's work (by id); the step's `checks` verify the solution.
    checks: tuple[CheckRef, ...] = ()
    hints: tuple[str, ...] = ()
    # Where the reference answer is (shown collapsed on the lab page, applied by --solve).
    solution_files: tuple[str, ...] = ()
    # What learners most often get wrong here (the instructor guide's "what to watch for").
    pitfalls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.goal.strip():
            raise ValueError("a task needs a goal: what the learner must achieve")
        if not self.checks:
            raise ValueError(f"task {self.goal[:40]!r}... has no checker: it could not be checked")
        if not self.hints:
            raise ValueError(f"task {self.goal[:40]!r}... has no hint for a failed check")


@dataclass(frozen=True)
class Step:
    """One exercise of the lab, in the order the chapter teaches it.

    `actions` are the reference solution (what `--solve` runs); `task`, when present, is what
    the learner does instead in learner mode. A step without a task (the prerequisites) is
    set-up: learner mode runs its actions too.
    """

    number: int
    id: str  # stable slug, e.g. "install-loki-alloy"
    title: str
    docs: str  # site-relative link to the section that teaches it, e.g. "lab-2.md#step-2"
    summary: str  # one or two sentences: what this step shows the learner and why
    actions: tuple[Action, ...]
    checks: tuple[CheckRef, ...] = ()
    hints: tuple[str, ...] = ()
    # LogQL queries this step teaches (shown in the docs and the summary; never executed as-is).
    queries: tuple[str, ...] = ()
    optional: bool = False
    # What the learner can do after the step (one sentence, starts with a verb).
    objective: str = ""
    # Estimated minutes for a learner (the lab page and the instructor guide show it).
    minutes: int = 0
    task: Task | None = None

    @property
    def anchor(self) -> str:
        return f"step-{self.number}"

    @property
    def learner_checks(self) -> tuple[CheckRef, ...]:
        """The checkers of the learner's work: the task's, else the step's."""
        return self.task.checks if self.task else self.checks


@dataclass(frozen=True)
class Lab:
    """A whole lab: its steps plus what the learner should open when it is done."""

    id: str  # "lab2"
    title: str
    cluster_name: str
    kubeconfig: str  # as shown to the learner, relative to the repository root
    steps: tuple[Step, ...]
    grafana_url: str = ""
    grafana_login: str = ""
    try_query: str = ""
    # The steps after which Grafana is reachable and Loki holds logs to query: the summary only
    # points the learner at what exists.
    grafana_after: int | None = None
    query_after: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def step(self, number: int) -> Step:
        """The step with this number; an unknown number names the valid ones."""
        for s in self.steps:
            if s.number == number:
                return s
        valid = ", ".join(str(s.number) for s in self.steps)
        raise KeyError(f"{self.id} has no step {number}; its steps are {valid}")

    @property
    def checker_ids(self) -> tuple[str, ...]:
        """The checkers of the reference solution (`--solve`), in step order."""
        return tuple(c.id for s in self.steps for c in s.checks)

    @property
    def learner_checker_ids(self) -> tuple[str, ...]:
        """The checkers of the learner's work, in step order, each once."""
        return tuple(dict.fromkeys(c.id for s in self.steps for c in s.learner_checks))
