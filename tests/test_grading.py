"""Grading a class end to end: real child processes of `pytest checks` against the fake lab
(tests.fake_lab_plugin), hostile entries beside good ones, deadlines, and offline submissions."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml
from markupsafe import escape

from checks import catalogue, grading
from checks.grading import main, run_bounded
from labconfig.versions import REPO_ROOT
from tests.fake_lab_plugin import write_fake_kubeconfig, write_unreachable_kubeconfig

MAX = sum(c.points for c in catalogue.CHECKERS)
FAKE = ["--allow-server", "fake-apiserver.invalid"]  # where the fake lab's kubeconfigs point


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_of(out: Path) -> dict[str, dict]:
    return {r["learner"]: r for r in json.loads((out / "gradebook.json").read_text())["learners"]}


@pytest.fixture
def fake_children(monkeypatch):
    monkeypatch.setenv("PYTEST_PLUGINS", "tests.fake_lab_plugin")  # the children load the fakes


@pytest.fixture
def class_folder(tmp_path, fake_children):
    folder = tmp_path / "kubeconfigs"
    folder.mkdir()
    write_fake_kubeconfig(folder / "ada.yaml", "passing")
    write_fake_kubeconfig(folder / "bob.kubeconfig", "failing")
    write_unreachable_kubeconfig(folder / "cyd", free_port())
    return folder


def test_live_gradebook_in_every_format(class_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main([str(class_folder), "--out", str(out), "--jobs", "3", "--timeout", "120", *FAKE]) == 0
    )
    printed = capsys.readouterr().out
    assert "cyd" in printed and "unreachable" in printed

    rows = rows_of(out)
    assert rows["ada"]["status"] == "graded" and rows["ada"]["total"] == MAX
    assert rows["bob"]["status"] == "graded" and rows["bob"]["total"] == MAX - 45
    assert not rows["bob"]["checkers"]["lab2.json-stdout"]["passed"]
    assert "Starting catalog" in rows["bob"]["checkers"]["lab2.json-stdout"]["diagnosis"]
    assert rows["bob"]["first_failed"] == "lab2.json-stdout"
    assert rows["cyd"]["status"] == "unreachable" and rows["cyd"]["total"] == 0
    assert "no API server answered" in rows["cyd"]["note"]
    book = json.loads((out / "gradebook.json").read_text())
    assert book["checkers"] == [c.id for c in catalogue.CHECKERS]

    with (out / "gradebook.csv").open() as f:
        table = {r["learner"]: r for r in csv.DictReader(f)}
    assert table["ada"]["total"] == str(MAX) and table["ada"]["lab2.json-stdout"] == "20"
    assert table["bob"]["lab2.json-stdout"] == "0" and table["bob"]["lab2.agent-daemonset"] == "20"
    assert table["bob"]["first_failed"] == "lab2.json-stdout"
    assert table["cyd"]["status"] == "unreachable" and table["cyd"]["total"] == "0"

    html = (out / "gradebook.html").read_text()
    assert f"{MAX} / {MAX}" in html and "Starting catalog" in html
    hint = rows["bob"]["checkers"]["lab2.json-stdout"]["hint"]
    assert f"Hint: {escape(hint)}" in html  # the failure's own hint, as text
    report = (out / "reports" / "bob.txt").read_text()
    assert "FAIL  lab2.json-stdout" in report and "Starting catalog" in report
    assert f"Total: {MAX - 45}/{MAX} points" in report
    # The children got a vetted copy; nothing of it is left behind, and the diagnoses name the
    # learner's own file.
    assert not list(out.rglob("*.yaml"))
    assert "lab-grading-" not in (out / "gradebook.json").read_text()
    assert f"kubectl --kubeconfig {class_folder / 'cyd'} get nodes" in rows["cyd"]["note"]


def test_hostile_entries_are_each_a_row_and_never_stop_the_class(tmp_path, fake_children):
    folder = tmp_path / "class"
    folder.mkdir()
    write_fake_kubeconfig(folder / "ada.yaml", "passing")
    (folder / "twin.yaml").symlink_to("ada.yaml")  # a link inside the folder: its own learner
    outside = write_fake_kubeconfig(tmp_path / "instructor.yaml", "passing")
    (folder / "sym.yaml").symlink_to(outside)  # a link out of the folder
    canary = tmp_path / "ran"
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                          "command": "touch", "args": [str(canary)]}}  # fmt: skip
    doc = yaml.safe_load((folder / "ada.yaml").read_text())
    doc["users"][0]["user"] = exec_user
    (folder / "eve.yaml").write_text(yaml.safe_dump(doc))
    doc = yaml.safe_load((folder / "ada.yaml").read_text())
    doc["clusters"][0]["cluster"]["server"] = "https://10.1.2.3:6443"
    (folder / "mal.yaml").write_text(yaml.safe_dump(doc))
    write_fake_kubeconfig(folder / "dan.yaml", "passing")
    write_fake_kubeconfig(folder / "dan.kubeconfig", "passing")
    (folder / "garbage.yaml").write_bytes(b"\x00\x01 not: [yaml")
    (folder / "adir").mkdir()
    write_fake_kubeconfig(Path(os.fsdecode(bytes(folder) + b"/j\xf6rg.yaml")), "passing")
    (folder / "=HYPERLINK(1).yaml").write_text("{}")

    out = tmp_path / "out"
    assert main([str(folder), "--out", str(out), "--jobs", "2", "--timeout", "120", *FAKE]) == 0
    rows = rows_of(out)
    assert not canary.exists()  # the exec plugin never ran
    status = {who: r["status"] for who, r in rows.items()}
    assert status == {
        "ada": "graded", "twin": "graded", "j%F6rg": "graded",
        "sym": "refused", "eve": "refused", "mal": "refused",
        "dan.yaml": "duplicate", "dan.kubeconfig": "duplicate",
        "garbage": "error", "adir": "error", "=HYPERLINK(1)": "error",
    }  # fmt: skip
    assert rows["twin"]["total"] == rows["ada"]["total"] == rows["j%F6rg"]["total"] == MAX
    assert "leaves the class folder" in rows["sym"]["note"]
    assert "`exec`" in rows["eve"]["note"] and "run a program" in rows["eve"]["note"]
    assert "not a lab cluster" in rows["mal"]["note"] and "--allow-server" in rows["mal"]["note"]
    assert (
        "dan.kubeconfig" in rows["dan.yaml"]["note"]
        and "same learner 'dan'" in (rows["dan.yaml"]["note"])
    )
    assert all(r["total"] == 0 for r in rows.values() if r["status"] != "graded")
    assert (out / "reports" / "j%F6rg.txt").is_file() and (out / "results" / "twin.json").is_file()
    with (out / "gradebook.csv").open() as f:
        learners = [r["learner"] for r in csv.DictReader(f)]
    assert "'=HYPERLINK(1)" in learners  # a formula never reaches a spreadsheet as one


def test_relative_paths_work_from_any_directory(class_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (class_folder / "cyd").unlink()  # keep this one quick: two fake clusters
    argv = [class_folder.name, "--out", "book", "--checker", "lab2.agent-daemonset", *FAKE]
    assert main(argv) == 0
    book = json.loads((tmp_path / "book" / "gradebook.json").read_text())
    assert {r["learner"]: r["total"] for r in book["learners"]} == {"ada": 20, "bob": 20}
    assert {r["learner"]: r["max"] for r in book["learners"]} == {"ada": 20, "bob": 20}


def test_at_the_deadline_the_finished_checkers_still_count(tmp_path, fake_children):
    folder = tmp_path / "k"
    folder.mkdir()
    write_fake_kubeconfig(folder / "dee.yaml", "stalled")
    out = tmp_path / "out"
    # 40 s: long enough for pytest to start and run 1-3 on a machine under heavy load (20 s
    # was not, at a load average of 12 on 2 cores), far shorter than the Loki checkers' 90 s
    # waits on a lab whose agent ships nothing.
    main([str(folder), "--out", str(out), "--timeout", "40", *FAKE])
    [row] = rows_of(out).values()
    assert row["status"] == "timeout"
    rows = row["checkers"]
    # Exercises 1-3 need no Loki and finished; 4 was waiting for its marker when the child got
    # SIGTERM, which ends pytest before its session hooks: what counts was written as it went.
    assert [rows[c]["passed"] for c in ("lab2.json-stdout", "lab2.agent-daemonset",
                                        "lab2.namespace-restricted")] == [True] * 3  # fmt: skip
    assert row["total"] == 60 and row["max"] == MAX
    unfinished = rows["lab2.error-traceable"]["diagnosis"]
    assert unfinished == "not finished: grading stopped at the 40 s limit"


def test_timeout_keeps_a_row_and_never_blocks_the_class(class_folder, tmp_path):
    out = tmp_path / "out"
    main([str(class_folder), "--out", str(out), "--timeout", "0.01", "--jobs", "2", *FAKE])
    rows = rows_of(out)
    assert set(rows) == {"ada", "bob", "cyd"}
    assert all(r["status"] == "timeout" for r in rows.values())
    assert all(r["total"] == 0 for r in rows.values())


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody reaped yet (its code no longer runs)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to see the processes")
def test_the_deadline_kills_the_whole_process_group_even_when_sigterm_is_ignored(tmp_path):
    pids = tmp_path / "pids"
    script = (
        "trap '' TERM; "  # a child that ignores SIGTERM...
        f"(trap '' TERM; sleep 300) & echo $! > {pids}; echo $$ >> {pids}; "  # ...and its child
        "while true; do sleep 1; done"
    )
    log = tmp_path / "log"
    started = time.monotonic()
    code, timed_out = run_bounded(["sh", "-c", script], timeout=1.5, log=log, cwd=tmp_path,
                                  env=dict(os.environ))  # fmt: skip
    assert timed_out and code is not None and code < 0
    assert time.monotonic() - started < 30
    found = [int(p) for p in pids.read_text().split()]
    assert len(found) == 2
    deadline = time.monotonic() + 10
    while not all(_gone(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(p) for p in found)


# -- offline -------------------------------------------------------------------------------
needs_manifests = pytest.mark.skipif(
    not (REPO_ROOT / "manifests" / "bookstore").is_dir(), reason="manifests/ not written yet"
)


@needs_manifests
def test_offline_grading_of_submissions(tmp_path):
    subs = tmp_path / "subs"
    good = subs / "ada"  # the manifests and the solved exercises
    good.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "manifests", good / "manifests")
    solved = good / "exercises" / "lab2"
    solved.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "manifests" / "logging" / "alloy-values.yaml", solved)
    shutil.copy(REPO_ROOT / "labs" / "solutions" / "lab2-queries.yaml", solved / "queries.yaml")
    half = subs / "fay"  # the manifests only: the exercises row says what is missing
    shutil.copytree(REPO_ROOT / "manifests", half / "manifests")
    only = subs / "gus"  # the exercises only: unchanged manifests are the course's own
    shutil.copytree(solved, only / "exercises" / "lab2")
    broken = subs / "bob"  # handed in only a broken manifests folder
    (broken / "bookstore").mkdir(parents=True)
    (broken / "bookstore" / "deployment.yaml").write_text("kind: Deployment\n  bad: [indent\n")
    (subs / "cyd").mkdir()  # handed in nothing
    (subs / "dee").mkdir()
    (subs / "dee" / "manifests").symlink_to(REPO_ROOT / "manifests", target_is_directory=True)
    (subs / "eve.zip").write_bytes(b"PK")
    out = tmp_path / "out"
    assert main(["--offline", str(subs), "--out", str(out)]) == 0
    rows = rows_of(out)
    top = sum(c.points for c in grading.OFFLINE_CHECKERS)
    assert rows["ada"]["status"] == "graded" and rows["ada"]["total"] == rows["ada"]["max"] == top
    exercises = grading.OFFLINE_BY_ID["static.exercises"].points
    assert rows["fay"]["total"] == top - exercises
    assert "no exercises handed in" in rows["fay"]["checkers"]["static.exercises"]["diagnosis"]
    assert rows["gus"]["total"] == top and "the course's own were checked" in rows["gus"]["note"]
    assert rows["bob"]["total"] < rows["ada"]["total"]
    assert not rows["bob"]["checkers"]["static.schema"]["passed"]
    assert "not valid YAML" in rows["bob"]["checkers"]["static.schema"]["diagnosis"]
    # An empty submission is 0 with its own status, not 10 for "0 YAML files parse".
    assert rows["cyd"]["status"] == "empty" and rows["cyd"]["total"] == 0
    # A linked manifests folder leaves the submission: not followed, so nothing to grade.
    assert rows["dee"]["status"] == "empty" and "manifests (a linked folder)" in rows["dee"]["note"]
    assert rows["eve.zip"]["status"] == "error" and "unpack" in rows["eve.zip"]["note"]
    assert (out / "gradebook.csv").read_text().startswith("learner,status,total,max,static.")
    assert "static.pod-security" in (out / "gradebook.html").read_text()


@needs_manifests
def test_offline_grading_uses_the_course_pins_not_the_submission_s(tmp_path):
    sub = tmp_path / "subs" / "mal"
    shutil.copytree(REPO_ROOT / "manifests", sub / "manifests")
    for name in ("catalog", "orders"):
        path = sub / "manifests" / "bookstore" / f"{name}.yaml"
        path.write_text(path.read_text().replace(f"bookstore/{name}:0.1.0", "evil/miner:1"))
    pins = (REPO_ROOT / "versions.toml").read_text()
    for name in ("catalog", "orders"):
        pins = pins.replace(f'"bookstore/{name}:0.1.0"', '"evil/miner:1"')
    (sub / "versions.toml").write_text(pins)  # the submission "agrees" with itself
    (sub / "manifests" / "leak.yaml").symlink_to("/etc/passwd")
    out = tmp_path / "out"
    main(["--offline", str(tmp_path / "subs"), "--out", str(out)])
    row = rows_of(out)["mal"]
    assert not row["checkers"]["static.consistency"]["passed"]
    assert "evil/miner:1" in row["checkers"]["static.consistency"]["diagnosis"]
    assert "manifests/leak.yaml (a link out of the submission)" in row["note"]
    assert "root:" not in json.dumps(row)


def test_usage_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "give a FOLDER of kubeconfigs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="holds no kubeconfig files"):
        main([str(tmp_path / "empty")])
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--allow-server", "10.0.0.5:port"])
    assert "not a server" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--offline", str(tmp_path), "--scores", str(tmp_path)])
    assert "--offline grades submissions alone" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--timeout", "0"])
    assert "--timeout must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--out", str(tmp_path / "gradebook")])
    assert "put the gradebook outside it" in capsys.readouterr().err


def test_a_bad_scores_folder_stops_the_run_before_any_cluster_is_graded(class_folder, tmp_path):
    (tmp_path / "scores").mkdir()
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="holds no score files"):
        main([str(class_folder), "--scores", str(tmp_path / "scores"), "--out", str(out), *FAKE])
    assert not (out / "results").exists()  # nothing was started


def test_one_learner_s_crash_or_early_exit_is_that_learner_s_row(tmp_path, monkeypatch):
    """The child is replaced by a stand-in that writes what `pytest checks` writes (or not)."""
    from checks.report import result_row, score_json

    folder = tmp_path / "k"
    folder.mkdir()
    for who in ("ada", "bob", "cyd"):
        write_fake_kubeconfig(folder / f"{who}.yaml", "passing")

    def child(cmd, *, timeout, log, cwd, env):
        who = log.stem
        if who == "bob":
            raise OSError("no more processes")
        score_path = Path(cmd[cmd.index("--score-json") + 1])
        ran = catalogue.CHECKERS if who == "ada" else catalogue.CHECKERS[:2]
        rows = {c.id: result_row(c, passed=True, diagnosis="ok") for c in ran}
        score_path.write_text(json.dumps(score_json(rows, reachable=True, error=None)))
        log.write_text("")
        return (0, False) if who == "ada" else (3, False)

    monkeypatch.setattr(grading, "run_bounded", child)
    out = tmp_path / "out"
    assert main([str(folder), "--out", str(out), *FAKE]) == 0
    rows = rows_of(out)
    assert rows["ada"]["status"] == "graded" and rows["ada"]["total"] == MAX
    assert rows["bob"]["status"] == "error" and "OSError: no more processes" in rows["bob"]["note"]
    assert rows["cyd"]["status"] == "error" and rows["cyd"]["total"] == 40
    assert f"{len(catalogue.CHECKERS) - 2} checker(s) not run" in rows["cyd"]["note"]
    assert "ended early (exit 3" in rows["cyd"]["checkers"]["lab2.grafana-datasource"]["diagnosis"]
