"""`python -m classroom grade`: every learner of a roster graded in their own namespace and
tenant, in parallel, into the gradebook; one learner's failure or hang is that learner's row.
The shared cluster is the fake class cluster of tests/fake_lab_plugin.py (`fake:class`), whose
learner ids choose the state of their lab (`broken*`: the failing preset, `stall*`: ships
nothing and waits on the real clock). Timing targets live in benchmarks/class_grade.py."""

from __future__ import annotations

import json

import pytest

from classroom.__main__ import main
from classroom.grade import CLASS_CHECKERS, learner_options
from classroom.roster import Learner
from tests.fake_lab_plugin import write_fake_kubeconfig


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_PLUGINS", "tests.fake_lab_plugin")  # the children load the fakes
    for name in ("LAB_NAMESPACE", "LAB_TENANT", "LAB_KUBECONFIG"):
        monkeypatch.setenv(name, "must-not-reach-the-children")
    return write_fake_kubeconfig(tmp_path / "admin.yaml", "class")


def roster(tmp_path, *ids: str):
    path = tmp_path / "roster.csv"
    path.write_text("id\n" + "".join(f"{i}\n" for i in ids))
    return path


def grade(tmp_path, cluster, *ids, extra=()):
    out = tmp_path / "book"
    argv = ["grade", "--roster", str(roster(tmp_path, *ids)), "--kubeconfig", str(cluster),
            "--out", str(out), *extra]  # fmt: skip
    code = main(argv)
    book = json.loads((out / "gradebook.json").read_text())
    return code, {row["learner"]: row for row in book["learners"]}, out


def test_every_learner_is_graded_in_their_own_namespace_and_tenant(tmp_path, cluster, capsys):
    code, rows, out = grade(tmp_path, cluster, "ada", "brokenbob", "cyd", extra=["--jobs", "3"])
    assert code == 0
    full = rows["ada"]["max"]
    assert rows["ada"]["status"] == rows["cyd"]["status"] == "graded"
    assert rows["ada"]["total"] == full > 0 and rows["cyd"]["total"] == full
    assert set(rows["ada"]["checkers"]) == set(CLASS_CHECKERS)
    # Bob's plain-text line is Bob's failure, with the diagnosis naming his namespace's pod.
    bob = rows["brokenbob"]
    assert bob["status"] == "graded" and bob["total"] < full
    failed = json.loads((out / "results" / "brokenbob.json").read_text())["checkers"]
    assert not failed["lab2.json-stdout"]["passed"]
    assert "kubectl -n lab2-brokenbob logs" in failed["lab2.json-stdout"]["diagnosis"]
    ada = json.loads((out / "results" / "ada.json").read_text())
    assert (ada["namespace"], ada["tenant"]) == ("lab2-ada", "lab2-ada")
    assert "grading 3 learner(s), 3 at once" in capsys.readouterr().out


def test_a_hanging_learner_stops_at_the_limit_alone_and_keeps_what_finished(tmp_path, cluster):
    code, rows, out = grade(tmp_path, cluster, "ada", "stallsam", extra=["--timeout", "20"])
    assert code == 0
    assert rows["ada"]["status"] == "graded"
    sam = json.loads((out / "results" / "stallsam.json").read_text())["checkers"]
    assert rows["stallsam"]["status"] == "timeout"
    assert sam["lab2.json-stdout"]["passed"]  # finished before the limit: it counts
    unfinished = [row for row in sam.values() if "not finished" in row["diagnosis"]]
    assert unfinished  # the Loki checkers were still waiting for lines that never came


def test_the_checker_option_narrows_the_run(tmp_path, cluster):
    extra = ["--checker", "lab2.namespace-restricted"]
    _, rows, _ = grade(tmp_path, cluster, "ada", extra=extra)
    assert list(rows["ada"]["checkers"]) == ["lab2.namespace-restricted"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checker", "lab2.nope"], "unknown checker id(s) lab2.nope"),
        (["--jobs", "0"], "--jobs at least 1"),
        (["--timeout", "-1"], "--timeout must be positive"),
    ],
)
def test_usage_errors_grade_nobody(tmp_path, cluster, capsys, extra, message):
    argv = ["grade", "--roster", str(roster(tmp_path, "ada")), "--kubeconfig", str(cluster),
            "--out", str(tmp_path / "book"), *extra]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "book").exists()


def test_a_missing_admin_kubeconfig_is_named(tmp_path, capsys):
    argv = ["grade", "--roster", str(roster(tmp_path, "ada")), "--kubeconfig",
            str(tmp_path / "nope.yaml")]  # fmt: skip
    assert main(argv) == 2
    assert "nope.yaml is not a file" in capsys.readouterr().err


def test_a_learner_s_options_are_their_namespace_tenant_and_the_grader_s_loki():
    assert learner_options(Learner("ada"), None) == [
        "--namespace", "lab2-ada", "--tenant", "lab2-ada",
    ]  # fmt: skip
    assert learner_options(Learner("ada"), "http://127.0.0.1:3100")[-2:] == [
        "--loki-url", "http://127.0.0.1:3100",
    ]  # fmt: skip
