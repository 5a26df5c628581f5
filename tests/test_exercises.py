"""The offline judge of a learner's exercises folder (validators.exercises): the starter is
judged unfinished piece by piece, the reference answers pass, and bad input is exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labconfig.versions import REPO_ROOT
from labs import lab2
from validators import exercises

STARTER = REPO_ROOT / lab2.EXERCISES


def solved(tmp_path: Path) -> Path:
    folder = tmp_path / "lab2"
    shutil.copytree(STARTER, folder)
    shutil.copy(REPO_ROOT / lab2.ALLOY_SOLUTION, folder / exercises.ALLOY_FILE)
    shutil.copy(REPO_ROOT / lab2.QUERIES_SOLUTION, folder / exercises.QUERIES_FILE)
    return folder


def test_the_starter_is_judged_unfinished_piece_by_piece():
    checks = {f.check for f in exercises.judge_folder(STARTER)}
    # Each to-do of the pipeline is found by the same lint that judges the reference values.
    assert {"exercise.alloy-todo", "node-local", "path", "cri", "push-url"} <= checks
    assert "exercise.queries" in checks


def test_the_reference_answers_have_no_findings(tmp_path):
    assert exercises.judge_folder(solved(tmp_path)) == []
    assert exercises.main([str(solved(tmp_path / "again"))]) == 0


def test_a_trace_id_in_the_selector_is_a_label_and_is_refused():
    _, findings = exercises.judge_queries(
        {
            "errors": '{namespace="bookstore"} | json | level="ERROR"',
            "one_request": '{namespace="bookstore", trace_id="$TRACE_ID"}',
            "deleted_pod_lines": '{namespace="bookstore", pod="$POD"}',
        }
    )
    assert [f.found for f in findings] == [
        "$TRACE_ID inside the stream selector: a trace id as a label"
    ]


@pytest.mark.parametrize("content", ["", "- errors\n", "just text\n"])
def test_a_queries_file_that_is_not_a_mapping_is_one_clear_finding(tmp_path, content):
    folder = solved(tmp_path)
    (folder / exercises.QUERIES_FILE).write_text(content)
    findings = exercises.judge_folder(folder)
    assert len(findings) == 1 and "a mapping of query names" in findings[0].expected


def test_cli_json_output_and_exit_codes(tmp_path, capsys):
    assert exercises.main([str(STARTER), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert {"check", "where", "found", "expected", "fix"} <= set(rows[0])
    assert exercises.main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_grading_a_submission_finds_its_exercises_wherever_they_were_handed_in(tmp_path):
    assert exercises.grade(tmp_path)[0] is False  # nothing handed in
    assert "no exercises handed in" in exercises.grade(tmp_path)[1]
    repo = tmp_path / "ada"
    shutil.copytree(solved(tmp_path / "x"), repo / "exercises" / "lab2")
    assert exercises.grade(repo) == (
        True,
        f"{repo / 'exercises' / 'lab2'}: the Alloy pipeline and the three queries are complete",
    )
    bare = tmp_path / "grace"
    shutil.copytree(STARTER, bare)  # the lab2 folder itself, unfinished
    passed, diagnosis = exercises.grade(bare)
    assert not passed and "[cri]" in diagnosis and "no query yet" in diagnosis


def test_a_negated_namespace_matcher_does_not_count_as_selecting_the_bookstore():
    _, findings = exercises.judge_queries(
        {
            "errors": '{namespace!="bookstore"} | json | level="ERROR"',
            "one_request": '{namespace="bookstore"} | json | trace_id="$TRACE_ID"',
            "deleted_pod_lines": '{namespace="bookstore", pod="$POD"}',
        }
    )
    assert [f.where for f in findings] == ["queries.yaml: errors"]
    assert "without the bookstore namespace" in findings[0].found
