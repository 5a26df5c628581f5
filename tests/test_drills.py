"""The break-and-fix drills: complete data, their break/check/solve plans run through the engine
with a fake runner, and each drill's expected diagnosis is what the real checker says about
that breakage (run against the fake cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from checks import catalogue
from checks.evidence import CheckFailed
from checks.test_lab2_agent_daemonset import check_agent_daemonset
from checks.test_lab2_json_stdout import check_json_stdout
from checks.test_lab2_low_cardinality_labels import check_low_cardinality_labels
from checks.test_lab2_namespace_restricted import check_namespace_restricted
from checks.test_lab2_single_request_query import check_single_request_query
from labconfig.versions import REPO_ROOT
from labs import drills, lab2
from labs.__main__ import main
from labs.engine import Engine, planned
from labs.runner import Result
from tests.fakes import fake_lab
from tests.lab_fakes import FakeClock, FakeRunner
from validators import pss

NAME = lab2.LAB.cluster_name
BY_NAME = {d.name: d for d in drills.DRILLS}
KC = ".lab/kubeconfig"


def engine(runner: FakeRunner, lab_dir: Path, plugin: Path) -> Engine:
    runner.cwd = lab_dir.parent  # the check action's `.lab/score.json` is then lab_dir's
    return Engine(lab2.LAB, runner, lab_dir=lab_dir, clock=FakeClock(), checks_plugin=plugin)


def shown(actions) -> list[str]:
    return [planned(a).display for a in actions]


def checkers_fail(lab_dir: Path, diagnoses: dict[str, str]):
    def answer(_cmd: str) -> Result:
        rows = {cid: {"passed": False, "diagnosis": d} for cid, d in diagnoses.items()}
        (lab_dir / "score.json").write_text(json.dumps({"checkers": rows}))
        return Result(1, "FAIL")

    return answer


def test_at_least_the_six_drills_of_the_issue_are_complete_data():
    assert {
        "agent-without-varlog",
        "trace-id-label",
        "namespace-relaxed",
        "loki-outage",
        "wrong-path-glob",
        "plain-text-service",
    } <= set(BY_NAME)
    for d in drills.DRILLS:
        assert d.symptoms and d.diagnosis and d.hints and d.objective and d.minutes > 0
        for ref in (*d.broken, *d.fixed):
            catalogue.get(ref.id)
        for action in (*d.breaks, *d.fix):
            if action.argv[0] in ("kubectl", "helm"):
                assert action.argv[1:3] == ("--kubeconfig", KC), planned(action).display
            for word in action.argv:  # every file a drill applies is in the repository
                if word.startswith(("labs/", "manifests/")):
                    assert (REPO_ROOT / word).is_file(), word


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_break_runs_the_breaking_commands_and_says_what_to_look_for(name, lab_dir, plugin):
    drill = BY_NAME[name]
    runner = FakeRunner(clusters=[NAME])
    assert drills.run(drill, engine(runner, lab_dir, plugin), drills.BREAK) == 0
    assert runner.commands() == shown(drill.breaks)
    out = " ".join(runner.output.split())
    assert " ".join(drill.symptoms.split()) in out and f"drill -- {name} --check" in out


# What a repaired lab answers to a drill's own probes (Loki's JSON, no spaces: Go's encoder).
REPAIRED = [("trace_id%3D~", Result(0, '{"status":"success","data":{"result":[]}}'))]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_solve_runs_the_fix_then_the_fixed_checkers(name, lab_dir, plugin):
    drill = BY_NAME[name]
    runner = FakeRunner(clusters=[NAME], responses=REPAIRED)
    assert drills.run(drill, engine(runner, lab_dir, plugin), drills.SOLVE) == 0
    *fix, check = runner.commands()
    assert fix == shown(drill.fix)
    assert check.endswith(" ".join(f"--checker {c.id}" for c in drill.fixed))
    assert f"Drill {name}: fixed" in runner.output


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_check_fails_with_the_diagnosis_and_a_first_hint(name, lab_dir, plugin):
    drill = BY_NAME[name]
    failing = {drill.fixed[0].id: "observed: still broken\nexpected: fixed\nnext: look"}
    runner = FakeRunner(clusters=[NAME], responses=[("pytest", checkers_fail(lab_dir, failing))])
    assert drills.run(drill, engine(runner, lab_dir, plugin), drills.CHECK) == 1
    assert runner.commands() == [runner.commands()[0]] and "pytest" in runner.commands()[0]
    out = " ".join(runner.output.split())
    assert "not fixed yet" in out and "observed: still broken" in out
    assert " ".join(drill.hints[0].split()) in out and drill.hints[1] not in runner.output


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_verify_broken_wants_each_expected_diagnosis(name, lab_dir, plugin):
    drill = BY_NAME[name]
    expected = {r.id: f"observed: … {p} …" for r, p in zip(drill.broken, drill.expect, strict=True)}
    broken = FakeRunner(clusters=[NAME], responses=[("pytest", checkers_fail(lab_dir, expected))])
    assert drills.run(drill, engine(broken, lab_dir, plugin), drills.VERIFY_BROKEN) == 0
    other = {r.id: "observed: something else" for r in drill.broken}
    wrong = FakeRunner(clusters=[NAME], responses=[("pytest", checkers_fail(lab_dir, other))])
    assert drills.run(drill, engine(wrong, lab_dir, plugin), drills.VERIFY_BROKEN) == 1
    assert "lacks" in wrong.output
    unbroken = FakeRunner(clusters=[NAME])  # every checker passes: the drill broke nothing
    assert drills.run(drill, engine(unbroken, lab_dir, plugin), drills.VERIFY_BROKEN) == 1
    assert "broke nothing" in unbroken.output


def test_a_drill_needs_the_lab_cluster(lab_dir, plugin):
    runner = FakeRunner()
    assert drills.run(drills.DRILLS[0], engine(runner, lab_dir, plugin), drills.BREAK) == 1
    assert "nox -s lab-2 -- --solve" in runner.output and not runner.commands()


def test_the_trace_label_fix_waits_until_fresh_lines_carry_no_trace_id(lab_dir, plugin):
    drill = BY_NAME["trace-id-label"]
    runner = FakeRunner(clusters=[NAME])  # Loki keeps answering with a trace_id stream
    assert drills.run(drill, engine(runner, lab_dir, plugin), drills.SOLVE) == 1
    assert "gave up after" in runner.output and not any("pytest" in c for c in runner.commands())


def test_a_failing_break_is_diagnosed_like_a_step(lab_dir, plugin):
    drill = BY_NAME["loki-outage"]
    runner = FakeRunner(clusters=[NAME], responses=[("scale", Result(1, "Error: NotFound"))])
    assert drills.run(drill, engine(runner, lab_dir, plugin), drills.BREAK) == 1
    assert "drill loki-outage failed" in runner.output and "NotFound" in runner.output


# -- each expected phrase is what the real checker says about that breakage ----------------------
def _fails(check, lab) -> str:
    with pytest.raises(CheckFailed) as info:
        check(lab)
    return info.value.diagnosis


def _outage():
    lab, cluster = fake_lab()
    cluster.loki.ready_after = float("inf")  # Loki never comes up
    return lab


CHECKER_UNDER_BREAKAGE = {
    "agent-without-varlog": (check_agent_daemonset, lambda: fake_lab(varlog_mount=False)[0]),
    "trace-id-label": (check_low_cardinality_labels, lambda: fake_lab(trace_id_label=True)[0]),
    "namespace-relaxed": (
        check_namespace_restricted,
        lambda: fake_lab(app_enforce="privileged")[0],
    ),
    "loki-outage": (check_single_request_query, _outage),
    "wrong-path-glob": (check_single_request_query, lambda: fake_lab(ships=False)[0]),
    "plain-text-service": (check_json_stdout, lambda: fake_lab(plain_text_line=True)[0]),
}


@pytest.mark.parametrize("name", sorted(CHECKER_UNDER_BREAKAGE))
def test_the_expected_phrase_is_in_the_checkers_real_diagnosis(name):
    check, broken_lab = CHECKER_UNDER_BREAKAGE[name]
    drill = BY_NAME[name]
    assert drill.broken[0].id == check.__module__.removeprefix("checks.test_").replace(
        "lab2_", "lab2."
    ).replace("_", "-")
    assert drill.expect[0] in _fails(check, broken_lab())


# -- the files a drill applies -----------------------------------------------------------------
def _pipeline(path: str) -> str:
    return yaml.safe_load((REPO_ROOT / path).read_text())["alloy"]["configMap"]["content"]


def test_drill_pipelines_differ_from_the_reference_only_by_their_break():
    reference = _pipeline(lab2.ALLOY_SOLUTION)
    labelled = _pipeline(drills.TRACE_LABEL_VALUES)
    added = [line for line in labelled.splitlines() if line not in reference.splitlines()]
    assert any("stage.labels" in line for line in added)
    assert [line for line in reference.splitlines() if line not in labelled.splitlines()] == []
    glob = _pipeline(drills.WRONG_GLOB_VALUES)
    changed = [
        (a, b) for a, b in zip(reference.splitlines(), glob.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (
            '    replacement   = "/var/log/pods/*$1/*.log"',
            '    replacement   = "/var/log/pods/*$1.log"',
        )
    ]


def test_the_debug_pod_is_refused_by_restricted_and_by_baseline():
    pod = yaml.safe_load((REPO_ROOT / drills.PRIVILEGED_POD).read_text())
    for level in ("baseline", "restricted"):
        controls = {v.control for v in pss.evaluate([pod], level=level)}
        assert controls, level


def test_cli_lists_plans_and_refuses_unknown_names(capsys):
    assert main(["drill", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in BY_NAME)
    assert main(["drill", "wrong-path-glob", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert drills.WRONG_GLOB_VALUES in plan and "## Fixes it" not in plan
    assert main(["drill", "wrong-path-glob", "--dry-run", "--solve"]) == 0
    assert "## Fixes it" in capsys.readouterr().out
    assert main(["drill", "no-such-drill"]) == 2
    assert "the drills are:" in capsys.readouterr().out


def test_drills_look_for_the_agent_in_its_own_namespace():
    """The agent lives in versions.toml's [charts.alloy] namespace, apart from Loki's: every
    drill command or hint that addresses the DaemonSet names that namespace."""
    from labconfig.versions import load_versions

    charts = load_versions()["charts"]
    agent_ns, loki_ns = charts["alloy"]["namespace"], charts["loki"]["namespace"]
    assert agent_ns != loki_ns
    for drill in drills.DRILLS:
        texts = [" ".join(a.argv) for a in (*drill.breaks, *drill.fix)]
        texts += [*drill.diagnosis, *drill.hints]
        for text in texts:
            if "ds/alloy" in text or "daemonset/alloy" in text or "get ds alloy" in text:
                assert f"-n {agent_ns}" in text, (drill.name, text)
