"""Break-and-fix drills on a working lab 2, as data: what breaks, how it shows, how to find it.

Each `Drill` breaks one thing a real cluster gets wrong (`breaks`), says what the learner will
notice (`symptoms`), which commands or queries lead to the cause (`diagnosis`), gives hints, and
holds the reference fix (`fix`). Two sets of checkers make it checkable: `broken` must fail
while the drill is in place, each with a diagnosis containing its `expect` phrase (CI proves
that), and `fixed` must pass once the learner (or `--solve`) has repaired it.

`python -m labs drill --list | NAME | NAME --check | NAME --solve | NAME --hint`
(`nox -s drill -- ...`) runs them through the lab engine (`Engine.perform`, `Engine.verify`);
`NAME --verify-broken` is what CI and an instructor run to see that a drill breaks what it says.
The drills page and the instructor guide are generated from `DRILLS`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.markup import escape

from labconfig.versions import load_versions
from labs.engine import Engine, planned
from labs.lab2 import (
    _Context as Context,
)
from labs.lab2 import (
    _helm_install,
    _rollout,
    _traffic,
    kubectl,
    loki_path,
)
from labs.model import POLL, Action, CheckRef, Step
from labs.runner import format_command
from labs.settings import Settings

DRILL_FILES = "labs/drill_files"
TRACE_LABEL_VALUES = f"{DRILL_FILES}/alloy-trace-id-label.yaml"
WRONG_GLOB_VALUES = f"{DRILL_FILES}/alloy-wrong-glob.yaml"
PRIVILEGED_POD = f"{DRILL_FILES}/privileged-pod.yaml"
ENFORCE = "pod-security.kubernetes.io/enforce"


@dataclass(frozen=True)
class Drill:
    name: str  # the slug learners type: `nox -s drill -- NAME`
    title: str
    objective: str  # what the learner can do afterwards
    minutes: int
    symptoms: str  # what the learner notices, in their words, not the cause
    diagnosis: tuple[str, ...]  # the path to the cause: each a command or query and what it shows
    hints: tuple[str, ...]
    breaks: tuple[Action, ...]
    fix: tuple[Action, ...]  # the reference fix (`--solve`)
    broken: tuple[CheckRef, ...]  # fail while the drill is in place ...
    expect: tuple[str, ...]  # ... each with a diagnosis containing this phrase
    fixed: tuple[CheckRef, ...]  # pass once it is repaired (`--check`)
    note: str = ""  # what the instructor should know (a caveat, a follow-up question)

    def __post_init__(self) -> None:
        if len(self.expect) != len(self.broken):
            raise ValueError(f"drill {self.name}: one expected phrase per broken checker")
        if not (self.breaks and self.fix and self.fixed and self.hints and self.diagnosis):
            raise ValueError(f"drill {self.name}: breaks, fix, fixed, hints, diagnosis needed")

    @property
    def anchor(self) -> str:
        return f"drill-{self.name}"

    def step(self) -> Step:
        """The drill as a step of the engine (number -2: outside the lab's own steps)."""
        return Step(
            number=-2,
            id=f"drill-{self.name}",
            title=f"drill {self.name}",
            docs=f"drills.md#{self.anchor}",
            summary=self.symptoms,
            actions=(*self.breaks, *self.fix),
            checks=self.fixed,
            hints=self.hints,
        )


def _alloy(c: Context, *extra_values: str) -> tuple[Action, ...]:
    """Alloy from the reference values, with override values files on top, then its rollout."""
    alloy = c.chart("alloy")
    install = _helm_install(c.settings, alloy, 300)
    extra = tuple(arg for path in extra_values for arg in ("--values", path))
    title = install.title + (" with " + ", ".join(extra_values) if extra_values else "")
    return (
        replace(install, argv=(*install.argv, *extra), title=title),
        _rollout(c.settings, c.agent_ns, f"daemonset/{alloy['release']}", 180),
    )


def _loki_query_poll(c: Context, title: str, query: str, expect: str, **params: str) -> Action:
    path = loki_path(c.log_ns, c.chart("loki")["release"], "/loki/api/v1/query_range",
                     query=query, **params)  # fmt: skip
    return Action(
        argv=kubectl(c.settings, "get", "--raw", path),
        title=title,
        kind=POLL,
        expect=expect,
        timeout=c.settings.seconds(180),
        interval=5,
        namespaces=(c.log_ns,),
        show_output=False,
    )


def _agent_without_varlog(c: Context) -> Drill:
    install, rollout = _alloy(c)
    no_mount = replace(
        install,
        argv=(*install.argv, "--set", "alloy.mounts.varlog=false"),
        title="Reinstall Alloy without the node's /var/log mounted",
    )
    k = f"kubectl --kubeconfig {c.settings.kubeconfig} -n {c.agent_ns}"  # the agent's namespace
    return Drill(
        name="agent-without-varlog",
        title="The agent runs, and ships nothing",
        objective="Tell an agent that cannot see the node's files from one that is down.",
        minutes=10,
        symptoms="Every Alloy pod is Running and Ready and logs no error, yet no new bookstore "
        "line reaches Loki: Explore shows the last lines from before the drill.",
        diagnosis=(
            f"`{k} get pods` shows the agent healthy, so the problem is what it can read.",
            f"`{k} get ds alloy -o yaml | grep -B2 -A4 hostPath`: no /var/log volume.",
            f"Alloy's UI (`{k} port-forward ds/alloy 12345`) shows "
            "local.file_match with targets, but loki.source.file tails no file.",
        ),
        hints=(
            "The pods are fine: look at what they mount, not at their logs.",
            "The chart value that mounts the node's /var/log is `alloy.mounts.varlog`.",
        ),
        breaks=(no_mount, rollout),
        fix=(install, rollout),
        broken=(CheckRef("lab2.agent-daemonset"),),
        expect=("mounts no hostPath /var/log",),
        fixed=(CheckRef("lab2.agent-daemonset"), CheckRef("lab2.single-request-query")),
    )


def _trace_id_label(c: Context) -> Drill:
    install, rollout = _alloy(c)
    broken_install, _ = _alloy(c, TRACE_LABEL_VALUES)
    query = f'{{namespace="{c.app_ns}", trace_id=~".+"}}'
    return Drill(
        name="trace-id-label",
        title="A trace id promoted to a label",
        objective="Spot a high-cardinality label and say what it costs Loki's index.",
        minutes=10,
        symptoms="Queries still work, but Grafana's label browser offers a `trace_id` label "
        "with thousands of values, and Loki holds a new stream for every request.",
        diagnosis=(
            "`/loki/api/v1/labels` (Explore → label browser) lists `trace_id`.",
            "`/loki/api/v1/label/trace_id/values` returns one value per request.",
            "`python -m validators.alloy_lint` on the installed values names the stage.labels "
            "block that adds it.",
        ),
        hints=(
            "Which labels does a fresh bookstore line carry in Loki? Compare with the four "
            "the chapter allows.",
            "A `stage.labels` block in loki.process turns an extracted field into a label: "
            "remove it, and query ids with `| json` instead.",
        ),
        breaks=(broken_install, rollout),
        fix=(
            install,
            rollout,
            _loki_query_poll(
                c,
                "Wait until no line of the last minute carries a trace_id label",
                query,
                '"result":[]',
                since="1m",
                limit="1",
            ),
        ),
        broken=(CheckRef("lab2.low-cardinality-labels"),),
        expect=("label(s) trace_id",),
        fixed=(CheckRef("lab2.single-request-query"),),
        note="Loki keeps the streams already written: `lab2.low-cardinality-labels` also "
        "looks at the last hour's label values and stays red for up to an hour after the fix. "
        "That is the lesson: a label mistake outlives its fix. The fix is checked on fresh "
        "lines instead.",
    )


def _namespace_relaxed(c: Context) -> Drill:
    k = ("label", "namespace", c.app_ns)
    return Drill(
        name="namespace-relaxed",
        title="The app namespace relaxed, and a privileged pod let in",
        objective="Find why a namespace admits what it should refuse, and close it again.",
        minutes=10,
        symptoms="Someone made `bookstore` accept a debug pod with the node's logs mounted; "
        "the app still works, nothing looks broken.",
        diagnosis=(
            f"`kubectl get ns {c.app_ns} --show-labels`: enforce is `privileged`.",
            f"`kubectl label --dry-run=server --overwrite ns {c.app_ns} {ENFORCE}=restricted` "
            "warns about every existing pod that would violate it.",
        ),
        hints=(
            "Pod Security is set per namespace, by labels.",
            "Relabelling the namespace does not evict pods already admitted: find the "
            "violating pod and delete it.",
        ),
        breaks=(
            Action(
                argv=kubectl(c.settings, *k, f"{ENFORCE}=privileged", "--overwrite"),
                title=f"Relax `{c.app_ns}` to privileged",
                timeout=60,
            ),
            Action(
                argv=kubectl(c.settings, "apply", "-f", PRIVILEGED_POD),
                title="Admit a privileged debug pod that mounts the node's /var/log",
                timeout=60,
                namespaces=(c.app_ns,),
            ),
        ),
        fix=(
            Action(
                argv=kubectl(c.settings, *k, f"{ENFORCE}=restricted", "--overwrite"),
                title=f"Enforce `restricted` on `{c.app_ns}` again",
                timeout=60,
            ),
            Action(
                argv=kubectl(
                    c.settings,
                    "delete",
                    "pod",
                    "debug-shell",
                    "-n",
                    c.app_ns,
                    "--ignore-not-found",
                    "--wait=true",
                ),
                title="Delete the pod the relaxed namespace let in",
                timeout=c.settings.seconds(120),
                namespaces=(c.app_ns,),
            ),
        ),  # fmt: skip
        broken=(CheckRef("lab2.namespace-restricted"),),
        expect=(f"{ENFORCE}=privileged",),
        fixed=(CheckRef("lab2.namespace-restricted"),),
        note="`lab2.namespace-restricted` judges the namespace's label and a server-side dry "
        "run; it does not list pods admitted earlier, so ask the class how they found "
        "debug-shell.",
    )


def _loki_outage(c: Context) -> Drill:
    loki = c.chart("loki")["release"]
    sts = f"statefulset/{loki}"
    return Drill(
        name="loki-outage",
        title="Loki down while traffic flows",
        objective="Explain what the agent does while its backend is down, and check that it "
        "caught up.",
        minutes=15,
        symptoms="Explore answers with an error, and the Alloy pods log failed pushes "
        "while the bookstore keeps serving traffic.",
        diagnosis=(
            f"`kubectl -n {c.log_ns} get pods`: no Loki pod (the StatefulSet is at 0).",
            f"`kubectl -n {c.agent_ns} logs ds/alloy --tail=20`: loki.write retries with backoff.",
            "After Loki is back: query the traffic's lines from during the outage; they arrive "
            "late, with their original timestamps.",
        ),
        hints=(
            "Is Loki running at all? Look at its StatefulSet's replica count.",
            "Scale it back to 1 and watch the agent's retries succeed.",
        ),
        breaks=(
            Action(
                argv=kubectl(c.settings, "scale", sts, "-n", c.log_ns, "--replicas=0"),
                title="Stop Loki",
                timeout=60,
                namespaces=(c.log_ns,),
            ),
            Action(
                argv=kubectl(
                    c.settings,
                    "wait",
                    "--for=delete",
                    f"pod/{loki}-0",
                    "-n",
                    c.log_ns,
                    f"--timeout={c.settings.seconds(120)}s",
                ),
                title="Wait until the Loki pod is gone",
                timeout=c.settings.seconds(120) + 30,
            ),
            *_traffic(c),
        ),  # fmt: skip
        fix=(
            Action(
                argv=kubectl(c.settings, "scale", sts, "-n", c.log_ns, "--replicas=1"),
                title="Start Loki again",
                timeout=60,
                namespaces=(c.log_ns,),
            ),
            _rollout(c.settings, c.log_ns, sts, 300),
            Action(
                argv=kubectl(c.settings, "get", "--raw", loki_path(c.log_ns, loki, "/ready")),
                title="Wait until Loki answers `ready`",
                kind=POLL,
                expect="ready",
                timeout=c.settings.seconds(180),
                interval=5,
                namespaces=(c.log_ns,),
                show_output=False,
            ),
        ),
        broken=(CheckRef("lab2.single-request-query"),),
        expect=("Loki /ready",),
        fixed=(CheckRef("lab2.single-request-query"), CheckRef("lab2.error-traceable")),
        note="The agent retries a failed push with backoff for a bounded time (loki.write's "
        "max_backoff_retries); a short outage loses nothing, a long one does. The checkers "
        "prove that fresh lines flow again; that the outage's lines arrived is for the class "
        "to show in Explore (the loadgen run's lines, timestamped during the outage).",
    )


def _wrong_path_glob(c: Context) -> Drill:
    install, rollout = _alloy(c)
    broken_install, _ = _alloy(c, WRONG_GLOB_VALUES)
    return Drill(
        name="wrong-path-glob",
        title="A path glob that matches no file",
        objective="Read the kubelet's log layout and test a path glob against it.",
        minutes=15,
        symptoms="The agent is healthy and mounts /var/log, yet no bookstore line arrives.",
        diagnosis=(
            "Alloy's UI: local.file_match lists targets whose `__path__` names no file.",
            "`docker exec lab2-logging-worker ls /var/log/pods/*/*/`: the layout the glob "
            "must match (`<ns>_<pod>_<uid>/<container>/<n>.log`).",
            "`python -m validators.alloy_lint` tests the glob against that layout offline.",
        ),
        hints=(
            "Compare the `__path__` replacement with a real path under /var/log/pods.",
            "Each container has its own directory inside the pod's: the glob needs "
            "`*$1/*.log`, one level per directory.",
        ),
        breaks=(broken_install, rollout),
        fix=(install, rollout),
        broken=(CheckRef("lab2.single-request-query"),),
        expect=("returned 0 line(s)",),
        fixed=(CheckRef("lab2.single-request-query"),),
    )


def _plain_text_service(c: Context) -> Drill:
    patch_in = '{"data":{"LOG_FORMAT":"text"}}'
    patch_out = '[{"op":"remove","path":"/data/LOG_FORMAT"}]'
    configmap = ("patch", "configmap", "bookstore-config", "-n", c.app_ns)
    restart = Action(
        argv=kubectl(c.settings, "rollout", "restart", "deployment/catalog", "-n", c.app_ns),
        title="Restart catalog so that it reads its configuration",
        timeout=60,
        namespaces=(c.app_ns,),
    )
    return Drill(
        name="plain-text-service",
        title="One service logging plain text",
        objective="Find which service breaks the log contract, and fix it by configuration.",
        minutes=10,
        symptoms="`| json` queries show `__error__=JSONParserErr` on catalog's lines, and "
        'level="ERROR" no longer finds catalog\'s failures.',
        diagnosis=(
            '`{namespace="bookstore"} | json | __error__!=""` in Explore: which app?',
            "`kubectl -n bookstore logs deploy/catalog --tail=3`: not JSON.",
            "`kubectl -n bookstore get configmap bookstore-config -o yaml`: a key that is not "
            "in manifests/bookstore/configmap.yaml.",
        ),
        hints=(
            "Which service's lines fail to parse? Compare both with `kubectl logs`.",
            "The format comes from the ConfigMap; a pod reads it only when it starts.",
        ),
        breaks=(
            Action(
                argv=kubectl(c.settings, *configmap, "--type", "merge", "-p", patch_in),
                title="Switch the bookstore's log format to text",
                timeout=60,
            ),
            restart,
            _rollout(c.settings, c.app_ns, "deployment/catalog", 180),
        ),
        fix=(
            Action(
                argv=kubectl(c.settings, *configmap, "--type", "json", "-p", patch_out),
                title="Remove the log-format override",
                timeout=60,
            ),
            restart,
            _rollout(c.settings, c.app_ns, "deployment/catalog", 180),
        ),
        broken=(CheckRef("lab2.json-stdout"),),
        expect=("not JSON",),
        fixed=(CheckRef("lab2.json-stdout"),),
        note="LOG_FORMAT=text is a real setting of the services: the lines stay one per event "
        "and redacted, but every field becomes text that Loki can only cut out with a regex.",
    )


BUILDERS = (
    _agent_without_varlog,
    _trace_id_label,
    _namespace_relaxed,
    _loki_outage,
    _wrong_path_glob,
    _plain_text_service,
)


def build(settings: Settings | None = None) -> tuple[Drill, ...]:
    c = Context(settings or Settings(), load_versions())
    drills = tuple(make(c) for make in BUILDERS)
    names = [d.name for d in drills]
    if len(set(names)) != len(names):
        raise ValueError(f"drill names must be unique: {names}")
    return drills


DRILLS = build()


def get(drills: tuple[Drill, ...], name: str) -> Drill:
    for drill in drills:
        if drill.name == name:
            return drill
    raise KeyError(f"no drill named {name!r}; the drills are: {', '.join(d.name for d in drills)}")


# -- running a drill ---------------------------------------------------------------------------
BREAK, CHECK, SOLVE, VERIFY_BROKEN = "break", "check", "solve", "verify-broken"
DRILL_CMD = "nox -s drill --"


def render_list(drills: tuple[Drill, ...]) -> str:
    width = max(len(d.name) for d in drills)
    lines = [f"{d.name:<{width}}  {d.title} (about {d.minutes} min)" for d in drills]
    lines += ["", f"Break one: `{DRILL_CMD} NAME`; check your fix: `{DRILL_CMD} NAME --check`."]
    return "\n".join(lines) + "\n"


def render_plan(drill: Drill, solve: bool) -> str:
    """--dry-run: the commands that break it (and, with --solve, the ones that fix it)."""
    out = [f"Drill {drill.name}: {drill.title}", ""]
    parts = [("Breaks it", drill.breaks)] + ([("Fixes it", drill.fix)] if solve else [])
    for heading, actions in parts:
        out.append(f"## {heading}")
        for action in actions:
            out += [f"# {action.title}", f"$ {planned(action).display}"]
        out.append("")
    out.append("# Checkers that fail while it is broken: " + ", ".join(c.id for c in drill.broken))
    out.append("# Checkers that pass once it is fixed: " + ", ".join(c.id for c in drill.fixed))
    return "\n".join(out) + "\n"


def hint_lines(drill: Drill) -> list[str]:
    out = [f"Hint {i}: {h}" for i, h in enumerate(drill.hints, 1)]
    out += ["Where to look, in order:", *(f"  {n}. {d}" for n, d in enumerate(drill.diagnosis, 1))]
    return out + [f"The reference fix: `{DRILL_CMD} {drill.name} --solve`."]


def run(drill: Drill, engine: Engine, mode: str) -> int:
    """One drill command against the lab's cluster; 0 when it did what it says."""
    console = engine.console
    if not engine.runner.cluster_exists(engine.lab.cluster_name):
        console.print(
            f"There is no lab cluster `{engine.lab.cluster_name}` to break: run the lab first "
            "(`nox -s lab-2 -- --solve` sets up a working one)."
        )
        return 1
    engine.lab_dir.mkdir(parents=True, exist_ok=True)
    step = drill.step()
    if mode == BREAK:
        return _break(drill, engine, step)
    if mode == SOLVE:
        if not engine.perform(step, drill.fix):
            return 1
        return _check(drill, engine, step)
    if mode == VERIFY_BROKEN:
        return _verify_broken(drill, engine, step)
    return _check(drill, engine, step)


def _break(drill: Drill, engine: Engine, step: Step) -> int:
    console = engine.console
    console.rule(f"[bold]Drill {drill.name}: {drill.title}")
    if not engine.perform(step, drill.breaks):
        return 1
    console.print(f"\n[bold]Something is wrong.[/] {escape(drill.symptoms)}")
    console.print(f"Your task: find the cause and fix it. Time: about {drill.minutes} min.")
    console.print(
        f"Check your fix: `{DRILL_CMD} {drill.name} --check`; stuck: "
        f"`{DRILL_CMD} {drill.name} --hint`."
    )
    return 0


def _check(drill: Drill, engine: Engine, step: Step) -> int:
    console = engine.console
    verdict = engine.verify(step, [c.id for c in drill.fixed])
    if verdict.passed:
        console.print(f"[green]Drill {drill.name}: fixed.[/] {escape(drill.objective)}")
        return 0
    if verdict.ran:
        console.print(f"[bold yellow]Drill {drill.name}: not fixed yet.[/]")
        for cid, diagnosis in verdict.diagnoses.items():
            console.print(f"[bold]{cid}[/]")
            for line in diagnosis.splitlines():
                console.print(f"  {escape(line)}")
        console.print(f"Hint: {escape(drill.hints[0])} More: `{DRILL_CMD} {drill.name} --hint`.")
    return 1


def _verify_broken(drill: Drill, engine: Engine, step: Step) -> int:
    """The broken checkers fail, each with the expected phrase in its diagnosis."""
    console = engine.console
    verdict = engine.verify(step, [c.id for c in drill.broken])
    if not verdict.ran:
        return 1
    wrong = []
    for ref, phrase in zip(drill.broken, drill.expect, strict=True):
        diagnosis = verdict.diagnoses.get(ref.id)
        if diagnosis is None:
            wrong.append(f"{ref.id} passed: the drill broke nothing it checks")
        elif phrase not in diagnosis:
            wrong.append(f"{ref.id} failed, but its diagnosis lacks {phrase!r}: {diagnosis}")
    for line in wrong:
        console.print(f"[red]✗[/] {escape(line)}")
    if not wrong:
        console.print(
            f"[green]Drill {drill.name} is in place:[/] "
            + ", ".join(
                f"{r.id} fails with {p!r}" for r, p in zip(drill.broken, drill.expect, strict=True)
            )
        )
    return 1 if wrong else 0


def commands(drill: Drill) -> list[str]:
    """Every command of a drill as displayed (breaks, then fix)."""
    return [format_command(a.argv, a.env) for a in (*drill.breaks, *drill.fix)]
