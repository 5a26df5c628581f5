"""`class grade`: every learner of the roster graded by the live checkers, into one gradebook.

One child `python -m pytest checks` per learner, with the instructor's kubeconfig and the
learner's `--namespace lab2-<id> --tenant lab2-<id>`, run by `checks.grading.run_checkers`: the
same bounded child as live grading of laptops (its own session, the whole process group killed
at the learner's time limit, the score file written after each checker, a crash or a hang only
that learner's row), several at once in a bounded pool. The rows go to `checks.gradebook` as
live and offline grading write them.

The instructor's kubeconfig is trusted as it is (it is theirs, not a learner's file): it is not
vetted the way `checks.grading` vets learners' kubeconfigs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from checks import catalogue
from checks.gradebook import write_gradebook
from checks.grading import Graded, not_graded, run_checkers
from checks.roster import Entry
from classroom.roster import Learner

# What a learner's own namespace and tenant prove. The agent, Grafana, the ruler's rules, the
# retention settings and the node's rotation belong to the shared stack the instructor runs (the
# same for everyone: check them once with `pytest checks --checker ID`), and the learner-file
# checkers (incident, learner queries) need the learner's files, which the grader does not hold.
CLASS_CHECKERS = (
    "lab2.json-stdout",
    "lab2.namespace-restricted",
    "lab2.logs-survive-deletion",
    "lab2.single-request-query",
    "lab2.low-cardinality-labels",
    "lab2.no-secrets-in-loki",
    "lab2.error-traceable",
)


def learner_options(learner: Learner, loki_url: str | None) -> list[str]:
    """The checkers' options that make a run about this learner."""
    options = ["--namespace", learner.namespace, "--tenant", learner.tenant]
    return options + (["--loki-url", loki_url] if loki_url else [])


def grade_one(learner: Learner, kubeconfig: Path, out: Path, timeout: float, specs, loki_url):
    """One learner's row; any crash of the grader itself is that learner's `error` row."""
    try:
        return run_checkers(
            learner.id, kubeconfig, str(kubeconfig), out, timeout, specs,
            extra=learner_options(learner, loki_url),
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - one learner never stops the class
        entry = Entry(learner.id, kubeconfig)
        return not_graded(entry, "error", f"could not grade: {type(e).__name__}: {e}", specs)


def grade_class(
    learners: list[Learner],
    kubeconfig: Path,
    out: Path,
    *,
    jobs: int = 25,  # the children mostly wait for lines to reach Loki; ~70 MB each
    timeout: float = 300,
    checkers: list[str] | None = None,
    loki_url: str | None = None,
) -> tuple[list[Graded], dict]:
    """Every learner graded, `jobs` at once; the rows in roster order and the checkers' specs."""
    out = out.resolve()  # the children run in the repository, not in the caller's directory
    (out / "results").mkdir(parents=True, exist_ok=True)
    specs = {cid: catalogue.get(cid) for cid in (checkers or CLASS_CHECKERS)}
    kubeconfig = kubeconfig.resolve()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [
            pool.submit(grade_one, lrn, kubeconfig, out, timeout, specs, loki_url)
            for lrn in learners
        ]
        return [f.result() for f in futures], specs


def write_class_gradebook(graded: list[Graded], out: Path, specs: dict) -> dict:
    return write_gradebook(graded, out, mode="class", specs=specs)
