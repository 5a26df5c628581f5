"""Learner mode with a fake runner: set-up, stop at the task, check (fail with the diagnosis and
a first hint, --hint for more, pass and move on), progress across restarts, and the learner's
--dry-run that shows tasks but never a solution command."""

from __future__ import annotations

import json
from pathlib import Path

from labconfig.versions import REPO_ROOT
from labs import engine, lab2, learner
from labs.__main__ import main
from labs.engine import Engine, Options
from labs.runner import Result
from labs.settings import Settings
from tests.lab_fakes import FakeClock, FakeRunner

NAME = lab2.LAB.cluster_name
LAB = lab2.LAB


def run(runner: FakeRunner, lab_dir: Path, plugin: Path, options: Options | None = None) -> int:
    """One `nox -s lab-2` (a new Engine each time: what survives is .lab/state.json). The
    runner works in the lab dir's parent, so the check action's `.lab/score.json` lands there."""
    runner.cwd = lab_dir.parent
    eng = Engine(LAB, runner, lab_dir=lab_dir, clock=FakeClock(), checks_plugin=plugin)
    return eng.run(options or Options())


def displays(actions) -> list[str]:
    return [engine.planned(a).display for a in actions]


def executed(runner: FakeRunner) -> list[str]:
    out = []
    for kind, cmd in runner.calls:
        if kind == "doctor":
            out.append("python -m labs doctor")
        elif kind in ("create", "run"):
            out.append(cmd)
    return out


def text(out: str) -> str:
    """Console output with the line wrapping undone (rich wraps at the console width)."""
    return " ".join(out.split())


def state(lab_dir: Path) -> dict:
    return json.loads((lab_dir / "state.json").read_text())


def checker_fails(lab_dir: Path, checker_id: str, diagnosis: str):
    """A pytest run in which `checker_id` fails with `diagnosis` (written to the score JSON)."""

    def answer(_cmd: str) -> Result:
        row = {"passed": False, "diagnosis": diagnosis}
        (lab_dir / "score.json").write_text(json.dumps({"checkers": {checker_id: row}}))
        return Result(1, f"FAIL {checker_id}")

    return answer


NOT_JSON = (
    "observed: catalog-7d9f line 1 is not JSON: 'INFO Starting catalog on :8080'\n"
    "expected: one JSON object per line\nnext: kubectl -n bookstore logs deploy/catalog --tail=5"
)


def test_first_run_sets_up_step_0_then_stops_at_the_first_task(lab_dir, plugin):
    runner = FakeRunner()
    assert run(runner, lab_dir, plugin) == 0
    step1 = LAB.step(1)
    assert executed(runner) == displays(LAB.step(0).actions) + displays(step1.task.setup)
    # Nothing of the solution ran, and no checker: the learner has not done anything yet.
    assert not any("pytest" in c or "logs -n bookstore deploy" in c for c in executed(runner))
    out = runner.output
    assert "Your task (step 1" in out and step1.task.goal[:60] in out
    assert "Files to edit: manifests/bookstore/configmap.yaml" in out
    assert f"You will be able to: {step1.objective}" in out
    assert f"Time: about {step1.minutes} min" in out
    assert "Check it: `nox -s lab-2` (runs lab2.json-stdout)" in out
    assert "Your turn" in out
    recorded = state(lab_dir)["steps"]
    assert "done_at" in recorded["0"] and "task_at" in recorded["1"]
    assert "done_at" not in recorded["1"]


def test_a_failed_check_shows_the_diagnosis_and_one_hint_and_more_on_request(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin)
    check = FakeRunner(
        clusters=[NAME],
        responses=[
            ("--checker lab2.json-stdout", checker_fails(lab_dir, "lab2.json-stdout", NOT_JSON))
        ],
    )
    assert run(check, lab_dir, plugin) == 1
    # A new run checks the current exercise first and runs nothing else.
    assert executed(check) == [engine.planned(learner.check_action(LAB, LAB.step(1))).display]
    out = check.output
    assert "Not yet" in out and "attempt 1" in out
    assert "line 1 is not JSON" in out and "kubectl -n bookstore logs deploy/catalog" in out
    hints = LAB.step(1).task.hints
    assert f"Hint 1 of {len(hints)}: {hints[0]}" in out and hints[1] not in out
    assert "nox -s lab-2 -- --hint" in out and "not passed yet" in out
    assert state(lab_dir)["steps"]["1"]["attempts"] == 1

    more = FakeRunner()
    assert run(more, lab_dir, plugin, Options(hint=True)) == 0
    assert not more.calls  # --hint runs nothing, not even a cluster probe
    assert f"Hint 2 of {len(hints)}: {hints[1]}" in more.output and hints[0] in more.output
    for _ in range(len(hints)):  # asking past the last hint keeps showing all of them
        last = FakeRunner()
        run(last, lab_dir, plugin, Options(hint=True))
    assert text(hints[-1]) in text(last.output) and "--solve --step 1" in last.output
    assert state(lab_dir)["steps"]["1"]["hints"] == len(hints)


def test_a_passing_check_moves_on_to_the_next_task_and_survives_restarts(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin)
    passing = FakeRunner(clusters=[NAME])
    assert run(passing, lab_dir, plugin) == 0
    step2 = LAB.step(2)
    assert executed(passing) == [
        engine.planned(learner.check_action(LAB, LAB.step(1))).display,
        *displays(step2.task.setup),
    ]
    assert "Step 1 passed" in passing.output and "Your task (step 2" in passing.output
    # The helm commands are the learner's to type: shown, never run.
    for command in displays(step2.task.commands):
        assert command in passing.output
    assert not any(c.startswith("helm") for c in executed(passing))
    assert "--values exercises/lab2/alloy-values.yaml" in passing.output
    recorded = state(lab_dir)
    assert "done_at" in recorded["steps"]["1"] and "task_at" in recorded["steps"]["2"]
    assert recorded["checks"]["lab2.json-stdout"]["result"] == "passed"
    # A restart (new process, same cluster) checks step 2: the record is the file, not memory.
    again = FakeRunner(clusters=[NAME])
    run(again, lab_dir, plugin)
    ids = engine.checker_ids(learner.check_action(LAB, step2))
    # The labels are judged with step 3's traffic (the step whose page the checker links).
    assert ids == ["lab2.agent-daemonset", "lab2.namespace-restricted"]
    assert "lab2.low-cardinality-labels" in engine.checker_ids(
        learner.check_action(LAB, LAB.step(3))
    )
    assert executed(again)[0] == engine.planned(learner.check_action(LAB, step2)).display


def test_solve_one_step_then_learner_mode_continues_after_it(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin)
    solved = FakeRunner(clusters=[NAME])
    assert run(solved, lab_dir, plugin, Options(solve=True, step=1)) == 0
    assert executed(solved) == displays(LAB.step(1).actions)
    nxt = FakeRunner(clusters=[NAME])
    assert run(nxt, lab_dir, plugin) == 0
    assert executed(nxt) == displays(LAB.step(2).task.setup)  # step 2's task, handed out
    assert "Your task (step 2" in nxt.output


def test_step_n_hands_out_that_task_and_then_checks_it(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin, Options(solve=True, until=3))
    give = FakeRunner(clusters=[NAME])
    assert run(give, lab_dir, plugin, Options(step=3)) == 0
    assert executed(give) == displays(LAB.step(3).task.setup)  # the traffic, not the queries
    assert "exercises/lab2/queries.yaml" in give.output
    check = FakeRunner(clusters=[NAME])
    assert run(check, lab_dir, plugin, Options(step=3)) == 0
    assert executed(check) == [engine.planned(learner.check_action(LAB, LAB.step(3))).display]
    assert "--checker lab2.learner-queries" in executed(check)[0]


def test_fresh_and_a_vanished_cluster_start_the_exercises_over(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin)
    fresh = FakeRunner(clusters=[NAME])
    assert run(fresh, lab_dir, plugin, Options(fresh=True)) == 0
    assert ("delete", NAME) in fresh.calls
    assert executed(fresh) == displays(LAB.step(0).actions) + displays(LAB.step(1).task.setup)
    assert "task_at" in state(lab_dir)["steps"]["1"]


def test_a_failing_set_up_is_a_step_failure_with_diagnostics(lab_dir, plugin):
    run(FakeRunner(), lab_dir, plugin, Options(solve=True, until=1))
    broken = FakeRunner(
        clusters=[NAME], responses=[("patch configmap", Result(1, "Error from server (NotFound)"))]
    )
    assert run(broken, lab_dir, plugin) == 1
    assert "Step 1 failed" in broken.output and "NotFound" in broken.output
    assert "task_at" not in state(lab_dir)["steps"].get("1", {})  # not handed out


def test_check_in_learner_mode_runs_the_learners_checkers(lab_dir, plugin):
    runner = FakeRunner(clusters=[NAME])
    assert run(runner, lab_dir, plugin, Options(check=True)) == 0
    cmd = runner.commands()[0]
    for cid in LAB.learner_checker_ids:
        assert f"--checker {cid}" in cmd
    solve = FakeRunner(clusters=[NAME])
    assert run(solve, lab_dir, plugin, Options(check=True, solve=True)) == 0
    assert "lab2.learner-queries" not in solve.commands()[0]


def test_hint_without_an_exercise_in_progress_says_how_to_start(lab_dir, plugin):
    runner = FakeRunner()
    assert run(runner, lab_dir, plugin, Options(hint=True)) == 0
    assert "No exercise is in progress" in runner.output


def test_learner_dry_run_shows_set_up_and_tasks_but_no_solution(capsys, monkeypatch):
    for name in ("BOOKSTORE_BASE_IMAGE", "BOOKSTORE_EXTRA_CA", "LAB_IMAGE_LOAD", "LAB_KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "lab2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    shown = [line[2:] for line in out.splitlines() if line.startswith("$ ")]
    # The lab as `main` builds it here: the docker client this machine's rule picks.
    expected = [
        pa.display for ps in engine.plan(lab2.build(Settings.from_env())) for pa in ps.actions
    ]
    assert shown == expected
    learner_runs = set(expected)  # set-up steps (0, the optional 5) and each task's set-up
    solution_only = {d for s in LAB.steps if s.task for d in displays(s.actions)} - learner_runs
    assert any("alloy-values" in d for d in solution_only)  # the reference pipeline, at least
    assert not solution_only & set(shown)
    assert "lab2-queries.yaml" not in out  # the reference answers stay off the learner's plan
    for step in LAB.steps:
        if step.task:
            assert f"Your task (step {step.number}" in out
        assert step.objective in out and f"about {step.minutes} min" in out


def test_every_task_is_complete_data():
    for step in LAB.steps:
        assert step.objective and step.minutes > 0, step.id
        if step.task is None:
            continue
        assert step.task.checks and step.task.hints
        for path in (*step.task.files, *step.task.solution_files):
            assert (REPO_ROOT / path).is_file(), f"step {step.number} names a missing {path}"


def test_until_in_learner_mode_stops_at_the_first_task_before_it(lab_dir, plugin):
    runner = FakeRunner()
    assert run(runner, lab_dir, plugin, Options(until=3)) == 0
    assert "Your task (step 1" in runner.output
    assert "do step 3" not in runner.output  # one instruction at a time: the task at hand
    passing = FakeRunner(clusters=[NAME])
    assert run(passing, lab_dir, plugin, Options(until=2)) == 0
    assert "Step 1 passed" in passing.output and "Your task (step 2" not in passing.output
    assert "do step 2 (" in passing.output  # nothing pending: --until's own instruction
