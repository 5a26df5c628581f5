"""Grading a class: a passing, a failing and an unreachable cluster give the right gradebook."""

from __future__ import annotations

import csv
import json
import socket

import pytest

from checks import catalogue
from checks.grading import main
from tests.fake_lab_plugin import write_fake_kubeconfig, write_unreachable_kubeconfig

MAX = sum(c.points for c in catalogue.CHECKERS)


@pytest.fixture
def class_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_PLUGINS", "tests.fake_lab_plugin")  # the children load the fakes
    folder = tmp_path / "kubeconfigs"
    folder.mkdir()
    write_fake_kubeconfig(folder / "ada.yaml", "passing")
    write_fake_kubeconfig(folder / "bob.kubeconfig", "failing")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_unreachable_kubeconfig(folder / "cyd", port)
    return folder


def test_live_gradebook_in_every_format(class_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(class_folder), "--out", str(out), "--jobs", "3", "--timeout", "120"]) == 0
    printed = capsys.readouterr().out
    assert "cyd" in printed and "unreachable" in printed

    book = json.loads((out / "gradebook.json").read_text())
    rows = {r["learner"]: r for r in book["learners"]}
    assert rows["ada"]["status"] == "graded" and rows["ada"]["total"] == MAX
    assert rows["bob"]["status"] == "graded" and rows["bob"]["total"] == MAX - 45
    assert not rows["bob"]["checkers"]["lab2.json-stdout"]["passed"]
    assert "Starting catalog" in rows["bob"]["checkers"]["lab2.json-stdout"]["diagnosis"]
    assert rows["cyd"]["status"] == "unreachable" and rows["cyd"]["total"] == 0
    assert "no API server answered" in rows["cyd"]["note"]
    assert book["checkers"] == [c.id for c in catalogue.CHECKERS]

    with (out / "gradebook.csv").open() as f:
        table = {r["learner"]: r for r in csv.DictReader(f)}
    assert table["ada"]["total"] == str(MAX) and table["ada"]["lab2.json-stdout"] == "20"
    assert table["bob"]["lab2.json-stdout"] == "0" and table["bob"]["lab2.agent-daemonset"] == "20"
    assert table["cyd"]["status"] == "unreachable" and table["cyd"]["total"] == "0"

    html = (out / "gradebook.html").read_text()
    assert "<td>ada</td>" in html and f"{MAX}/{MAX}" in html
    assert 'class="status-unreachable"' in html
    assert "Starting catalog" in html  # the diagnosis, escaped into the page
    assert "hint: kubectl -n bookstore logs catalog-" in html and "lab-2.md#step-1" in html
    assert "<script" not in html

    report = (out / "reports" / "bob.txt").read_text()
    assert "FAIL  lab2.json-stdout" in report and "next: " in report
    assert f"Total: {MAX - 45}/{MAX} points" in report


def test_relative_paths_work_from_any_directory(class_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (class_folder / "cyd").unlink()  # keep this one quick: two fake clusters
    assert main([class_folder.name, "--out", "book", "--checker", "lab2.agent-daemonset"]) == 0
    book = json.loads((tmp_path / "book" / "gradebook.json").read_text())
    assert {r["learner"]: r["total"] for r in book["learners"]} == {"ada": 20, "bob": 20}


def test_two_files_for_one_learner_is_an_error(tmp_path):
    write_fake_kubeconfig(tmp_path / "ada.yaml", "passing")
    write_fake_kubeconfig(tmp_path / "ada.kubeconfig", "passing")
    with pytest.raises(SystemExit, match="both learner 'ada'"):
        main([str(tmp_path)])


def test_at_the_deadline_the_finished_checkers_still_count(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_PLUGINS", "tests.fake_lab_plugin")
    folder = tmp_path / "k"
    folder.mkdir()
    write_fake_kubeconfig(folder / "dee.yaml", "stalled")
    out = tmp_path / "out"
    main([str(folder), "--out", str(out), "--timeout", "6"])
    [row] = json.loads((out / "gradebook.json").read_text())["learners"]
    assert row["status"] == "timeout"
    rows = row["checkers"]
    # exercises 1-3 need no Loki and finished; 4 was waiting for its marker when interrupted
    assert [rows[c]["passed"] for c in ("lab2.json-stdout", "lab2.agent-daemonset",
                                        "lab2.namespace-restricted")] == [True] * 3  # fmt: skip
    assert row["total"] == 60 and row["max"] == MAX
    unfinished = rows["lab2.error-traceable"]["diagnosis"]
    assert unfinished == "not finished: grading stopped at the 6 s limit"


def test_timeout_keeps_a_row_and_never_blocks_the_class(class_folder, tmp_path):
    out = tmp_path / "out"
    main([str(class_folder), "--out", str(out), "--timeout", "0.01", "--jobs", "2"])
    book = json.loads((out / "gradebook.json").read_text())
    assert {r["learner"] for r in book["learners"]} == {"ada", "bob", "cyd"}
    assert all(r["status"] == "timeout" for r in book["learners"])
    assert all(r["total"] == 0 for r in book["learners"])


def test_offline_grading_of_submissions(tmp_path, capsys):
    from labconfig.versions import REPO_ROOT

    if not (REPO_ROOT / "manifests" / "bookstore").is_dir():
        pytest.skip("manifests/ not written yet")
    subs = tmp_path / "subs"
    good = subs / "ada"
    good.mkdir(parents=True)
    (good / "manifests").symlink_to(REPO_ROOT / "manifests", target_is_directory=True)
    (good / "versions.toml").symlink_to(REPO_ROOT / "versions.toml")
    broken = subs / "bob"  # handed in only a broken manifests folder
    (broken / "bookstore").mkdir(parents=True)
    (broken / "bookstore" / "deployment.yaml").write_text("kind: Deployment\n  bad: [indent\n")
    out = tmp_path / "out"
    assert main(["--offline", str(subs), "--out", str(out)]) == 0
    book = json.loads((out / "gradebook.json").read_text())
    rows = {r["learner"]: r for r in book["learners"]}
    assert rows["bob"]["total"] < rows["ada"]["total"]
    assert not rows["bob"]["checkers"]["static.schema"]["passed"]
    assert "not valid YAML" in rows["bob"]["checkers"]["static.schema"]["diagnosis"]
    assert (out / "gradebook.csv").read_text().startswith("learner,status,total,max,static.")
    assert "static.pod-security" in (out / "gradebook.html").read_text()


def test_usage_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "give a FOLDER of kubeconfigs" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="holds no kubeconfig files"):
        main([str(tmp_path / "empty")])
