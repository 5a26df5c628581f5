"""The plan of the hands-on extras (steps 6-9): the commands a learner runs, exactly."""

from __future__ import annotations

from labconfig.versions import REPO_ROOT
from labs import engine, lab2

K = "kubectl --kubeconfig .lab/kubeconfig"
PROXY = "/api/v1/namespaces/logging/services/loki:3100/proxy"
NODE_DIR = "/var/log/pods/bookstore_catalog-*/catalog/"
LOADGEN = [
    f"{K} delete job loadgen -n bookstore --ignore-not-found",
    f"{K} apply -f manifests/bookstore/loadgen.yaml",
    f"{K} wait --for=condition=complete job/loadgen -n bookstore --timeout=300s",
]
RESTART = f"{K} -n bookstore rollout restart deployment/catalog deployment/orders"
ROLLOUTS = [
    f"{K} rollout status deployment/catalog -n bookstore --timeout=180s",
    f"{K} rollout status deployment/orders -n bookstore --timeout=180s",
]


def _checks(*ids: str) -> str:
    flags = " ".join(f"--checker {i}" for i in ids)
    return (
        f"python -m pytest checks --kubeconfig .lab/kubeconfig --score-json .lab/score.json {flags}"
    )


def _fault(rate: str) -> str:
    patch = '\'{"data":{"FAULT_RATE":"' + rate + "\"}}'"
    return f"{K} -n bookstore patch configmap bookstore-config --type merge --patch {patch}"


def expected_extras(docker: str = "docker") -> dict[int, list[str]]:
    """The extras' commands; `docker` is the client the lab picked (the node step runs it)."""
    return {
        6: [f"{K} get --raw {PROXY}/config", _checks("lab2.retention")],
        7: [
            f"{K} get --raw /api/v1/nodes/lab2-logging-worker/proxy/configz",
            f"{docker} exec lab2-logging-worker sh -c 'ls -l {NODE_DIR}'",
            *LOADGEN,
            f"{docker} exec lab2-logging-worker sh -c 'ls -l {NODE_DIR}'",
            f"{docker} exec lab2-logging-worker sh -c 'tail -n 2 {NODE_DIR}0.log'",
            _checks("lab2.node-rotation"),
        ],
        8: [
            f"{K} apply -k labs/solutions/lab2",  # --solve loads the reference rules
            f"{K} get --raw {PROXY}/prometheus/api/v1/rules",
            _fault("0.3"),
            RESTART,
            *ROLLOUTS,
            *LOADGEN,
            f"{K} get --raw {PROXY}/prometheus/api/v1/alerts",
            _fault("0"),
            RESTART,
            *ROLLOUTS,
            _checks("lab2.alert-rules"),
        ],
        9: [
            f"{K} -n bookstore set env -f labs/drill_files/incident-target.yaml FAULT_RATE=0.3",
            *ROLLOUTS,
            *LOADGEN,
            # --solve checks the reference answers; the learner's task checks their own file.
            "LAB_EXERCISES=labs/solutions/lab2 " + _checks("lab2.incident"),
        ],
    }


def test_extra_steps_are_the_expected_commands():
    planned = {ps.step.number: ps for ps in engine.plan(lab2.LAB, engine.Options(solve=True))}
    got = {n: [pa.display for pa in planned[n].actions] for n in (6, 7, 8, 9)}
    assert got == expected_extras()
    assert [planned[n].step.id for n in (6, 7, 8, 9)] == [
        "retention", "the-node", "alerting", "incident",
    ]  # fmt: skip


def test_every_extra_checker_is_in_the_catalogue_and_linked_to_the_step_that_runs_it():
    """Like the core checkers (tests/test_checkers_report.py): a failure's link opens the lab
    step that ran the checker; that step's page section is generated from labs/lab2.py."""
    from checks import catalogue

    for n, cid in ((6, "lab2.retention"), (7, "lab2.node-rotation"), (8, "lab2.alert-rules"),
                   (9, "lab2.incident")):  # fmt: skip
        assert [c.id for c in lab2.LAB.step(n).checks] == [cid]
        # Like every checker: "Learn it" opens the lab step that runs it (which links the
        # extras page for the background).
        assert catalogue.get(cid).docs == f"lab-2.md#step-{n}"


def test_the_learner_writes_the_rules_and_the_incident_answers_themselves():
    planned = {ps.step.number: ps for ps in engine.plan(lab2.LAB)}
    shown = [pa.display for n in (8, 9) for pa in planned[n].actions]
    assert not any("labs/solutions" in d for d in shown)  # no reference answer in learner mode
    alerting, incident = lab2.LAB.step(8).task, lab2.LAB.step(9).task
    assert alerting.files == ("exercises/lab2/alert-rules.yaml",)
    assert [a.argv[-2:] for a in alerting.commands] == [("-k", "exercises/lab2")]
    assert incident.files == ("exercises/lab2/incident.yaml",)
    assert incident.setup == lab2.LAB.step(9).actions[: len(incident.setup)]  # the same start


def test_the_incident_step_does_not_say_which_service_fails():
    """The learner reads the step (dry run, lab page, hints): nothing there may name the
    service; the target file names a bookstore Deployment the incident checker inspects."""
    import yaml

    from checks.lab import APP_NAMESPACE, APP_SERVICES

    step = lab2.LAB.step(9)
    shown = [step.title, step.summary, *step.hints]
    for pa in {ps.step.number: ps for ps in engine.plan(lab2.LAB)}[9].actions:
        shown += [pa.display, pa.action.title]
    waits = [s for s in shown if "rollout status" in s or "to be rolled out" in s]
    # Both services are waited for, so the waits say nothing either.
    assert all(sum(service in w for w in waits) == 2 for service in APP_SERVICES), waits
    shown = [s for s in shown if s not in waits]
    for service in APP_SERVICES:
        assert not [s for s in shown if service in s], service
    target = yaml.safe_load((REPO_ROOT / lab2.INCIDENT_TARGET).read_text())
    assert target["kind"] == "Deployment"
    assert target["metadata"]["namespace"] == APP_NAMESPACE
    assert target["metadata"]["name"] in APP_SERVICES
