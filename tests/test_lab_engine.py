"""The engine with a fake runner: order, resume, --until/--step/--check/--fresh, failures with
diagnostics, deadlines (a fake clock: nothing sleeps), missing checkers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from labs import engine, lab2
from labs.doctor import Finding
from labs.engine import Engine, Options
from labs.runner import Result
from labs.tools import host_platform
from tests.lab_fakes import FakeClock, FakeRunner

NAME = lab2.LAB.cluster_name

POD_SECURITY = (
    'pods "catalog-7d9f-x2x" is forbidden: violates PodSecurity "restricted:latest": '
    'allowPrivilegeEscalation != false (container "catalog" must set '
    "securityContext.allowPrivilegeEscalation=false)"
)


def make(runner: FakeRunner, lab_dir: Path, plugin: Path, clock=None) -> Engine:
    runner.cwd = lab_dir.parent  # the repository root the commands run in
    return Engine(
        lab2.LAB, runner, lab_dir=lab_dir, clock=clock or FakeClock(), checks_plugin=plugin
    )


def executed(runner: FakeRunner) -> list[str]:
    """Commands the learner saw, in order: doctor, cluster creation and runs."""
    out = []
    for kind, cmd in runner.calls:
        if kind == "doctor":
            out.append("python -m labs doctor")
        elif kind in ("create", "run"):
            out.append(cmd)
    return out


def planned_displays(options: Options | None = None) -> list[str]:
    options = options or Options(solve=True)
    return [pa.display for ps in engine.plan(lab2.LAB, options) for pa in ps.actions]


def test_full_run_executes_the_plan_in_order_and_records_progress(lab_dir, plugin):
    runner = FakeRunner()
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 0
    assert executed(runner) == planned_displays()
    state = json.loads((lab_dir / "state.json").read_text())
    assert sorted(state["steps"]) == sorted(str(s.number) for s in lab2.LAB.steps)
    assert {v["result"] for v in state["checks"].values()} == {"passed"}
    assert set(state["checks"]) == set(lab2.LAB.checker_ids)
    out = runner.output
    assert "export KUBECONFIG=$PWD/.lab/kubeconfig" in out
    assert "http://localhost:30300" in out
    assert '{namespace="bookstore"} | json | level="ERROR"' in out


def test_second_run_reuses_the_cluster_and_skips_finished_steps(lab_dir, plugin):
    first = FakeRunner()
    assert make(first, lab_dir, plugin).run(Options(solve=True)) == 0
    second = FakeRunner(clusters=[NAME])
    assert make(second, lab_dir, plugin).run(Options(solve=True)) == 0
    assert executed(second) == []  # nothing re-run: not the cluster, not the images
    assert second.output.count("is done") == len(lab2.LAB.steps)
    assert "--step 2" in second.output


def test_until_stops_before_the_step_and_says_what_to_do(lab_dir, plugin):
    runner = FakeRunner()
    assert make(runner, lab_dir, plugin).run(Options(solve=True, until=2)) == 0
    assert executed(runner) == planned_displays(Options(solve=True, until=2))
    assert not any("helm" in cmd for cmd in executed(runner))
    assert "Your turn" in runner.output and "lab-2.md#step-2" in runner.output
    # Grafana and LogQL are not offered before the steps that install them.
    assert "localhost:30300" not in runner.output and "level=" not in runner.output
    state = json.loads((lab_dir / "state.json").read_text())
    assert sorted(state["steps"]) == ["0", "1"]
    # The rest of the lab resumes where the learner left off.
    rest = FakeRunner(clusters=[NAME])
    assert make(rest, lab_dir, plugin).run(Options(solve=True)) == 0
    last = len(lab2.LAB.steps)
    assert executed(rest) == [
        d for n in range(2, last) for d in planned_displays(Options(solve=True, step=n))
    ]


def test_step_runs_one_step_even_when_it_is_done(lab_dir, plugin):
    make(FakeRunner(), lab_dir, plugin).run(Options(solve=True))
    runner = FakeRunner(clusters=[NAME])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, step=3)) == 0
    assert executed(runner) == planned_displays(Options(solve=True, step=3))


def test_a_failing_action_collects_diagnostics_and_prints_the_explaining_lines(lab_dir, plugin):
    events = {
        "items": [
            {
                "type": "Normal",
                "reason": "Scheduled",
                "message": "assigned",
                "involvedObject": {"kind": "Pod", "name": "orders-1"},
            },
            {
                "type": "Warning",
                "reason": "FailedCreate",
                "message": f"Error creating: {POD_SECURITY}",
                "involvedObject": {"kind": "ReplicaSet", "name": "catalog-7d9f"},
            },
        ]
    }
    replicasets = {
        "items": [
            {
                "metadata": {"name": "catalog-7d9f"},
                "status": {
                    "conditions": [
                        {
                            "type": "ReplicaFailure",
                            "status": "True",
                            "reason": "FailedCreate",
                            "message": POD_SECURITY,
                        }
                    ]
                },
            }
        ]
    }
    runner = FakeRunner(
        responses=[
            (
                "rollout status deployment/catalog",
                Result(1, "error: timed out waiting for the condition"),
            ),
            ("get events -n bookstore", Result(0, json.dumps(events))),
            ("get replicasets -n bookstore", Result(0, json.dumps(replicasets))),
            ("get pods -n bookstore", Result(0, json.dumps({"items": []}))),
        ]
    )
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 1
    out = runner.output
    assert "Step 0 failed" in out and "rollout status deployment/catalog" in out
    assert "What explains it" in out
    assert "ReplicaSet/catalog-7d9f FailedCreate" in out and "violates PodSecurity" in out
    assert "Scheduled" not in out.split("What explains it")[1]
    folders = list((lab_dir / "artifacts").iterdir())
    assert len(folders) == 1
    saved = {p.name for p in folders[0].iterdir()}
    assert {
        "bookstore-events.txt",
        "bookstore-replicasets.txt",
        "bookstore-describe-pods.txt",
        "failure.txt",
        "explaining.txt",
    } <= saved
    assert "violates PodSecurity" in (folders[0] / "explaining.txt").read_text()
    # Nothing after the failure ran, and the step is not recorded as done.
    assert not any("orders -n bookstore --timeout" in c for c in executed(runner))
    assert (
        "steps" not in json.loads((lab_dir / "state.json").read_text())
        or not json.loads((lab_dir / "state.json").read_text())["steps"]
    )


def test_a_poll_ends_at_its_deadline_without_sleeping(lab_dir, plugin):
    clock = FakeClock()
    runner = FakeRunner(
        clusters=[NAME],
        responses=[("proxy/ready", Result(1, "Ingester not ready: waiting for 15s"))],
    )
    code = make(runner, lab_dir, plugin, clock).run(Options(solve=True, step=2))
    assert code == 1
    ready_action = next(a for a in lab2.LAB.step(2).actions if a.argv[-1].endswith("/ready"))
    assert sum(clock.sleeps) == pytest.approx(ready_action.timeout)
    attempts = [c for c in runner.commands() if c.endswith("proxy/ready")]
    assert len(attempts) == len(clock.sleeps) + 1
    assert f"gave up after {int(ready_action.timeout)}s" in runner.output
    assert "LAB_TIMEOUT_SCALE=2" in runner.output
    assert "Ingester not ready" in runner.output
    assert any("of 180s" in s for s in runner.statuses)  # the progress says how long


def test_a_poll_succeeds_once_the_probe_does(lab_dir, plugin):
    answers = iter([Result(1, "503"), Result(1, "503"), Result(0, "ready")])
    runner = FakeRunner(clusters=[NAME], responses=[("proxy/ready", lambda _c: next(answers))])
    clock = FakeClock()
    assert make(runner, lab_dir, plugin, clock).run(Options(solve=True, step=2)) == 0
    assert len(clock.sleeps) == 2


def test_missing_checkers_are_reported_not_passed(lab_dir, tmp_path):
    runner = FakeRunner()
    code = make(runner, lab_dir, tmp_path / "nowhere" / "conftest.py").run(
        Options(solve=True, until=2)
    )
    assert code == 0
    assert "Checkers not run" in runner.output and "lab2.json-stdout" in runner.output
    assert not any("pytest" in c for c in runner.commands())
    state = json.loads((lab_dir / "state.json").read_text())
    assert state["checks"]["lab2.json-stdout"]["result"] == "not-run"


def test_pytest_collecting_nothing_means_not_run(lab_dir, plugin):
    runner = FakeRunner(responses=[("pytest checks", Result(5, "no tests ran"))])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, until=2)) == 0
    assert "no checker with these ids exists yet" in runner.output


def test_a_failing_checker_stops_the_lab_with_per_checker_results(lab_dir, plugin):
    def pytest_run(cmd: str) -> Result:
        (lab_dir / "score.json").write_text(
            json.dumps(
                {
                    "checkers": {
                        "lab2.agent-daemonset": {"passed": True},
                        "lab2.namespace-restricted": {"passed": False},
                    }
                }
            )
        )
        return Result(1, "FAIL lab2.namespace-restricted: Deployment catalog has 0/2 ready")

    runner = FakeRunner(responses=[("--checker lab2.agent-daemonset", pytest_run)])
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 1
    checks = json.loads((lab_dir / "state.json").read_text())["checks"]
    assert checks["lab2.agent-daemonset"]["result"] == "passed"
    assert checks["lab2.namespace-restricted"]["result"] == "failed"
    assert "checker(s) failed: lab2.namespace-restricted" in runner.output
    assert "Stopped at step 2" in runner.output
    assert not any("loadgen" in c for c in runner.commands())


def test_check_only_runs_every_checker_against_the_existing_cluster(lab_dir, plugin):
    runner = FakeRunner(clusters=[NAME])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, check=True)) == 0
    assert runner.commands() == [engine.planned(engine.check_action(lab2.LAB)).display]
    none = FakeRunner()
    assert make(none, lab_dir, plugin).run(Options(solve=True, check=True)) == 1
    assert "run `nox -s lab-2` first" in none.output


def test_fresh_deletes_the_cluster_and_starts_over(lab_dir, plugin):
    make(FakeRunner(), lab_dir, plugin).run(Options(solve=True))
    runner = FakeRunner(clusters=[NAME])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, fresh=True)) == 0
    assert ("delete", NAME) in runner.calls
    assert executed(runner) == planned_displays()


def test_a_vanished_cluster_resets_the_recorded_progress(lab_dir, plugin):
    make(FakeRunner(), lab_dir, plugin).run(Options(solve=True))
    runner = FakeRunner()  # cluster gone (deleted by hand)
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 0
    assert "starts over" in runner.output
    assert executed(runner) == planned_displays()


def test_image_load_falls_back_to_an_archive_on_the_containerd_digest_error(lab_dir, plugin):
    runner = FakeRunner(
        responses=[
            (
                "kind load docker-image",
                Result(
                    1,
                    # kind wraps ctr's error (kubernetes-sigs/kind#3845, verbatim shape).
                    'ERROR: failed to load image: command "docker exec --privileged -i '
                    'lab2-logging-control-plane ctr --namespace=k8s.io images import" failed '
                    "with error: exit status 1\nCommand Output: ctr: content digest "
                    "sha256:82014a3cbf22: not found",
                ),
            )
        ]
    )
    assert make(runner, lab_dir, plugin).run(Options(solve=True, until=1)) == 0
    cmds = runner.commands()
    # kind#3795's workaround: save only the node's platform, then load that archive.
    platform = f"linux/{host_platform()[1]}"
    save = f"save --platform {platform} --output .lab/images/catalog.tar bookstore/catalog:0.1.0"
    assert any(c.endswith(save) for c in cmds)
    assert "kind load image-archive --name lab2-logging .lab/images/catalog.tar" in cmds
    assert "LAB_IMAGE_LOAD=archive" in runner.output


@pytest.mark.parametrize(
    "error",
    [
        'ERROR: image: "bookstore/catalog:0.1.0" not present locally',
        # kind wraps every import error as "failed to load image" (pkg/cmd/kind/load): only
        # the digest error has the archive workaround.
        'ERROR: failed to load image: command "docker exec --privileged -i '
        'lab2-logging-control-plane ctr --namespace=k8s.io images import" failed with error: '
        "exit status 1\nCommand Output: ctr: failed to ingest: no space left on device",
    ],
)
def test_other_image_load_errors_are_not_papered_over(lab_dir, plugin, error):
    runner = FakeRunner(responses=[("kind load docker-image", Result(1, error))])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, until=1)) == 1
    assert not any(" save " in c for c in runner.commands())


def test_a_blocking_preflight_finding_stops_before_the_cluster(lab_dir, plugin):
    finding = Finding(
        "docker",
        False,
        "Docker is not reachable: connection refused",
        "Start Docker Desktop",
        blocking=True,
    )
    runner = FakeRunner(findings=[finding])
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 1
    assert not runner.commands("create")
    assert "Docker is not reachable" in runner.output and "Start Docker Desktop" in runner.output


def test_skip_if_probes_skip_work_that_is_already_done(lab_dir, plugin):
    step = lab2.LAB.step(1)
    probe = ("kubectl", "--kubeconfig", ".lab/kubeconfig", "get", "ns", "bookstore")
    guarded = dataclasses.replace(step.actions[0], skip_if=probe)
    lab = dataclasses.replace(
        lab2.LAB, steps=(dataclasses.replace(step, actions=(guarded, *step.actions[1:])),)
    )
    done = FakeRunner(clusters=[NAME])
    assert (
        Engine(lab, done, lab_dir=lab_dir, checks_plugin=plugin).run(Options(solve=True, step=1))
        == 0
    )
    assert "deploy/catalog" not in " ".join(done.commands())
    assert "Already done" in done.output
    missing = FakeRunner(clusters=[NAME], responses=[("get ns bookstore", Result(1, "NotFound"))])
    assert (
        Engine(lab, missing, lab_dir=lab_dir, checks_plugin=plugin).run(Options(solve=True, step=1))
        == 0
    )
    assert any("deploy/catalog" in c for c in missing.commands())


def test_a_step_done_by_hand_is_checked_recorded_and_the_lab_continues_after_it(lab_dir, plugin):
    make(FakeRunner(), lab_dir, plugin).run(Options(solve=True, until=2))
    by_hand = FakeRunner(clusters=[NAME])
    assert make(by_hand, lab_dir, plugin).run(Options(solve=True, check=True, step=2)) == 0
    assert by_hand.commands() == [engine.planned(engine.check_action(lab2.LAB, 2)).display]
    assert (
        "--checker lab2.agent-daemonset --checker lab2.namespace-restricted"
        in (by_hand.commands()[0])
    )
    assert "Step 2 is recorded as done" in by_hand.output
    rest = FakeRunner(clusters=[NAME])
    assert make(rest, lab_dir, plugin).run(Options(solve=True)) == 0
    last = len(lab2.LAB.steps)
    assert executed(rest) == [
        d for n in range(3, last) for d in planned_displays(Options(solve=True, step=n))
    ]


def test_checking_a_step_without_checkers_says_so(lab_dir, plugin):
    runner = FakeRunner(clusters=[NAME])
    assert make(runner, lab_dir, plugin).run(Options(solve=True, check=True, step=0)) == 0
    assert "Step 0 has no checkers" in runner.output and not runner.commands()


def test_check_cannot_be_combined_with_until_or_fresh():
    for options in (
        Options(solve=True, check=True, until=2),
        Options(solve=True, check=True, fresh=True),
    ):
        with pytest.raises(engine.OptionsError, match="cannot be combined"):
            engine.validate(lab2.LAB, options)


def test_per_checker_results_are_read_where_the_check_action_writes_them(tmp_path, plugin):
    # --lab-dir elsewhere: the check action still writes `.lab/score.json` under the directory
    # it runs in, and that is the file the engine reads.
    lab_dir = tmp_path / "somewhere" / "else"
    repo = tmp_path / "repo"

    def pytest_run(cmd: str) -> Result:
        written = repo / ".lab" / "score.json"
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text(json.dumps({"checkers": {"lab2.json-stdout": {"passed": False}}}))
        return Result(1, "FAIL lab2.json-stdout")

    runner = FakeRunner(responses=[("--checker lab2.json-stdout", pytest_run)], cwd=repo)
    eng = Engine(lab2.LAB, runner, lab_dir=lab_dir, clock=FakeClock(), checks_plugin=plugin)
    assert eng.run(Options(solve=True, until=2)) == 1
    checks = json.loads((lab_dir / "state.json").read_text())["checks"]
    assert checks["lab2.json-stdout"]["result"] == "failed"
    assert "checker(s) failed: lab2.json-stdout" in runner.output


def test_a_failing_optional_step_is_explained_but_the_run_succeeds(lab_dir, plugin):
    optional = next(s for s in lab2.LAB.steps if s.optional)
    install = next(a for a in optional.actions if "upgrade" in a.argv)  # only in this step
    failing = engine.planned(install).display
    runner = FakeRunner(responses=[(failing, Result(1, "Error: context deadline exceeded"))])
    assert make(runner, lab_dir, plugin).run(Options(solve=True)) == 0
    assert f"Step {optional.number} failed" in runner.output
    assert f"Optional step {optional.number} failed" in runner.output
    state = json.loads((lab_dir / "state.json").read_text())
    assert str(optional.number) not in state["steps"]
    assert all(str(s.number) in state["steps"] for s in lab2.LAB.steps if not s.optional)
