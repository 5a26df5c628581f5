"""The gradebook reads well and safely; learners' own score files are imported by shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from markupsafe import escape

from checks import catalogue
from checks.gradebook import COUNTED, csv_cell, write_gradebook
from checks.grading import Graded, main
from checks.report import result_row, score_json
from checks.roster import safe_id
from checks.scorefile import checked_rows
from tests.fake_lab_plugin import write_fake_kubeconfig

SPECS = {c.id: c for c in catalogue.CHECKERS}
MAX = sum(c.points for c in catalogue.CHECKERS)
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
XSS_ID = safe_id(XSS)  # a learner id as checks.roster makes it from such a file name


def learner_score(failing: dict[str, str] = (), **about) -> dict:
    failing = dict(failing)
    rows = {
        cid: result_row(spec, passed=cid not in failing, diagnosis=failing.get(cid, "ok"))
        for cid, spec in SPECS.items()
    }
    return score_json(rows, **about)


def rows_of(out: Path) -> dict[str, dict]:
    return {r["learner"]: r for r in json.loads((out / "gradebook.json").read_text())["learners"]}


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r", "\n"])
def test_csv_cells_never_start_a_formula(lead):
    assert csv_cell(f'{lead}HYPERLINK("http://x")').startswith("'")
    assert csv_cell("ada") == "ada" and csv_cell(20) == 20 and csv_cell("") == ""


def test_summary_rates_informational_checks_and_escaping(tmp_path):
    grafana_off = {"lab2.grafana-datasource": "Grafana is not installed"}
    graded = [
        Graded("ada", "ada.yaml", "graded", learner_score(grafana_off)),
        Graded(
            XSS_ID,
            "x.yaml",
            "graded",
            learner_score(
                {
                    "lab2.namespace-restricted": f"first line says {XSS}\nsecond line",
                    "lab2.json-stdout": "later in the catalogue order, so not the first failure",
                }
            ),
        ),  # fmt: skip
        Graded(
            "cyd",
            "cyd.yaml",
            "refused",
            learner_score(dict.fromkeys(SPECS, "refused")),
            "user 'u' has `exec`: loading it would run a program",
        ),  # fmt: skip
    ]
    graded[2].score = score_json(
        {cid: result_row(s, diagnosis="refused") for cid, s in SPECS.items()}
    )
    out = tmp_path / "out"
    write_gradebook(graded, out, mode="live", specs=SPECS)
    rows = rows_of(out)
    # Grafana (0 points) failing is no learner's "first failure".
    assert rows["ada"]["first_failed"] == "" and rows["ada"]["total"] == MAX
    # The first failed scoring check in catalogue order, and the first line of its reason.
    assert rows[XSS_ID]["first_failed"] == "lab2.json-stdout"
    assert rows[XSS_ID]["reason"] == "later in the catalogue order, so not the first failure"
    assert rows["cyd"]["first_failed"] == "" and "run a program" in rows["cyd"]["reason"]

    book = json.loads((out / "gradebook.json").read_text())
    rates = {r["id"]: r for r in book["pass_rates"]}
    assert rates["lab2.json-stdout"]["passed"] == 1 and rates["lab2.json-stdout"]["of"] == 2
    assert rates["lab2.agent-daemonset"]["percent"] == 100
    assert rates["lab2.grafana-datasource"]["informational"] is True
    assert set(book["statuses"]) == {"graded", "refused"}
    assert "refused" not in COUNTED  # a refused row says nothing about how the class did

    page = (out / "gradebook.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert escape(XSS) in page and escape(XSS_ID) in page  # text, never markup
    assert (out / "reports" / f"{XSS_ID}.txt").is_file()
    assert 'class="badge info">INFO' in page and "informational" in page
    assert page.count('class="badge fail">FAIL') == 2  # the XSS learner's two, not Grafana's
    # A refused learner's checks are not listed as so many failures: one sentence says why.
    assert "No checker looked at this learner's work: every check is 0." in page
    assert '<meta name="viewport"' in page


def test_self_reported_scores_are_marked_and_checked_by_shape(tmp_path, capsys):
    scores = tmp_path / "scores"
    scores.mkdir()
    good = learner_score({"lab2.no-secrets-in-loki": "a card number reached Loki"},
                         kubeconfig=".lab/kubeconfig", reachable=True, error=None,
                         finished="2026-11-30T10:00:00+00:00")  # fmt: skip
    (scores / "ada.json").write_text(json.dumps(good))
    forged = learner_score()
    forged["checkers"]["lab2.json-stdout"]["points"] = 999
    (scores / "bob.json").write_text(json.dumps(forged))
    flipped = learner_score()
    flipped["checkers"]["lab2.json-stdout"].update(passed=False)  # points left at 20
    (scores / "cyd.json").write_text(json.dumps(flipped))
    (scores / "dee.json").write_text("{not json")
    unknown = learner_score()
    unknown["checkers"]["lab2.free-points"] = {"passed": True, "points": 50, "max_points": 50}
    (scores / "eve.json").write_text(json.dumps(unknown))
    partial = learner_score()
    partial["checkers"] = {"lab2.json-stdout": partial["checkers"]["lab2.json-stdout"]}
    partial["total"], partial["max"] = 20, 20
    (scores / "fay.json").write_text(json.dumps(partial))
    own_hint = learner_score()
    own_hint["checkers"]["lab2.json-stdout"].update(hint=XSS, docs="javascript:alert(1)",
                                                    title="Free points")  # fmt: skip
    (scores / "gus.json").write_text(json.dumps(own_hint))
    (scores / "hal.json").write_text(json.dumps([1, 2]))
    (scores / "ivy.json").write_text("[" * 100_000 + "]" * 100_000)

    out = tmp_path / "out"
    assert main(["--scores", str(scores), "--out", str(out)]) == 0
    rows = rows_of(out)
    assert rows["ada"]["status"] == "self-reported" and rows["ada"]["total"] == MAX - 5
    assert "self-reported, run 2026-11-30" in rows["ada"]["note"]
    assert rows["ada"]["first_failed"] == "lab2.no-secrets-in-loki"
    for who, why in (("bob", "points 999/20"), ("cyd", "when passed is False"),
                     ("dee", "Expecting property name"), ("eve", "unknown checker"),
                     ("hal", "no `checkers` mapping"), ("ivy", "not a score file")):  # fmt: skip
        assert rows[who]["status"] == "invalid" and rows[who]["total"] == 0, who
        assert why in rows[who]["note"], (who, rows[who]["note"])
    assert rows["fay"]["status"] == "self-reported" and rows["fay"]["total"] == 20
    assert rows["fay"]["max"] == MAX
    assert (
        "not in the learner's score file"
        in rows["fay"]["checkers"]["lab2.agent-daemonset"]["diagnosis"]
    )
    # Title, hint and docs always come from the catalogue, never from the file.
    gus = rows["gus"]["checkers"]["lab2.json-stdout"]
    assert (gus["title"], gus["hint"], gus["docs"]) == (
        SPECS["lab2.json-stdout"].title, SPECS["lab2.json-stdout"].hint,
        SPECS["lab2.json-stdout"].docs,
    )  # fmt: skip
    page = (out / "gradebook.html").read_text()
    assert "javascript:" not in page and "<script>alert" not in page
    assert "only as trustworthy as the learner" in page
    with (out / "gradebook.csv").open() as f:
        assert {r["learner"]: r["status"] for r in csv.DictReader(f)}["ada"] == "self-reported"


def test_a_learner_graded_live_and_self_reported_keeps_both_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_PLUGINS", "tests.fake_lab_plugin")
    live, scores = tmp_path / "live", tmp_path / "scores"
    live.mkdir()
    scores.mkdir()
    write_fake_kubeconfig(live / "ada.yaml", "passing")
    (scores / "ada.json").write_text(json.dumps(learner_score()))
    out = tmp_path / "out"
    argv = [
        str(live),
        "--scores",
        str(scores),
        "--out",
        str(out),
        "--checker",
        "lab2.agent-daemonset",
        "--allow-server",
        "fake-apiserver.invalid",
    ]
    assert main(argv) == 0
    rows = rows_of(out)
    assert rows["ada"]["status"] == "graded" and rows["ada"]["max"] == 20
    assert rows["ada.self-reported"]["status"] == "self-reported"
    assert rows["ada.self-reported"]["max"] == 20  # only the checkers being graded
    assert (out / "reports" / "ada.self-reported.txt").is_file()


def test_docs_links_come_from_the_row_and_are_only_web_addresses(tmp_path):
    score = learner_score({"lab2.json-stdout": "not JSON", "lab2.agent-daemonset": "no agent"})
    score["checkers"]["lab2.json-stdout"]["docs_url"] = "https://course.example/lab-2/#step-1"
    score["checkers"]["lab2.agent-daemonset"]["docs_url"] = "javascript:alert(1)"
    write_gradebook([Graded("ada", "ada.yaml", "graded", score)], tmp_path, mode="live",
                    specs=SPECS)  # fmt: skip
    page = (tmp_path / "gradebook.html").read_text()
    assert '<a href="https://course.example/lab-2/#step-1">Learn it</a>' in page
    assert "javascript:" not in page
    assert f"(docs: {SPECS['lab2.agent-daemonset'].docs})" in page  # shown, not linked


def test_only_the_checkers_own_score_keeps_its_per_failure_hint():
    score = learner_score({"lab2.json-stdout": "not JSON"})
    score["checkers"]["lab2.json-stdout"]["hint"] = "kubectl -n bookstore logs catalog-1"
    own = checked_rows(score, SPECS, own=True)
    learners = checked_rows(score, SPECS)
    assert own["lab2.json-stdout"]["hint"] == "kubectl -n bookstore logs catalog-1"
    assert learners["lab2.json-stdout"]["hint"] == SPECS["lab2.json-stdout"].hint


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "3", True, None])
def test_a_score_row_with_a_non_number_is_invalid(bad):
    score = learner_score()
    score["checkers"]["lab2.json-stdout"]["seconds"] = bad
    with pytest.raises(ValueError, match="`seconds` not a number"):
        checked_rows(score, SPECS)
