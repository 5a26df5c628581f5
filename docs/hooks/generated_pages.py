"""MkDocs hook: fill the generated parts of the site from the code that owns each fact.

A page asks for generated content with a marker line, `<!-- generated: NAME -->`. At build time
the marker is replaced by Markdown rendered from the single source of that fact:

- `lab2`: the lab page, from the lab definition (`labs.lab2`) and the engine's plan, so every
  command shown is the command `nox -s lab-2` runs, versions included;
- `versions`: every pinned version, from `versions.toml` through `labconfig.versions`;
- `log-schema`: the log contract, from `bookstore/log-schema.json`;
- `redaction-vocabulary`: the words that make a key sensitive, from `bookstore.redaction`;
- `checkers`: the checker catalogue, from `checks.catalogue`.

An unknown marker, or a source that cannot be read, fails the build with a message that says
which page and which file: a strict build must never publish a page with a hole in it.

The notebooks under `notebooks/` are added to the site here too (they live outside `docs/`), so
that mkdocs-jupyter renders them like any other page.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
MARKER = re.compile(r"^<!--\s*generated:\s*([a-z0-9-]+)\s*-->\s*$", re.MULTILINE)

# The hook runs inside `mkdocs`, which may be started from anywhere: make the project importable
# even without an editable install.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


# -- small Markdown helpers ------------------------------------------------------------------
def _cell(value: Any) -> str:
    """A value as a table cell: code-formatted, with pipes escaped so the table survives."""
    text = str(value).replace("|", "\\|")
    return f"`{text}`" if text else ""


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _relative(target: str, page_src_uri: str) -> str:
    """A docs-root-relative link ("lab-2.md#step-1") as seen from the page being rendered."""
    path, _, anchor = target.partition("#")
    rel = posixpath.relpath(path, posixpath.dirname(page_src_uri) or ".")
    return rel + (f"#{anchor}" if anchor else "")


def _fence(text: str, lang: str = "") -> str:
    """A fenced block long enough never to collide with backticks inside `text`."""
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


# -- versions --------------------------------------------------------------------------------
def render_versions(page_src_uri: str) -> str:
    """Every pinned version, from versions.toml, grouped the way the file groups them."""
    from labconfig.versions import VERSIONS_FILE, load_versions

    data = load_versions()
    out: list[str] = []
    kind = data.get("kind", {})
    k8s = data.get("kubernetes", {})
    if kind or k8s:
        out += ["## Cluster {#cluster}", ""]
        rows = []
        if "version" in kind:
            rows.append(["kind", _cell(kind["version"])])
        if "node_image" in kind:
            rows.append(["kind node image", _cell(kind["node_image"])])
        if "version" in k8s:
            rows.append(["Kubernetes", _cell(k8s["version"])])
        if "cluster_name" in kind:
            rows.append(["cluster name", _cell(kind["cluster_name"])])
        out += [_table(["What", "Pinned"], rows), ""]
    tools = data.get("tools", {})
    if tools:
        out += ["## Command-line tools {#tools}", ""]
        rows = []
        sums = []
        for name, tool in tools.items():
            # kind's version lives in [kind]; [tools.kind] only holds its checksums.
            version = tool.get("version") or data.get(name, {}).get("version", "")
            rows.append([name, _cell(version)])
            for platform, digest in tool.get("sha256", {}).items():
                if platform != "for_version":
                    sums.append([name, _cell(tool["sha256"].get("for_version", "")),
                                 _cell(platform), _cell(digest)])  # fmt: skip
        out += [
            _table(["Tool", "Version"], rows),
            "",
            "The lab uses these from your `PATH` when the version matches, and otherwise "
            "downloads them into a cache and verifies each download against its pinned SHA-256:",
            "",
        ]
        if sums:
            out += ['??? note "SHA-256 of each download"', ""]
            out += [
                "    " + line
                for line in _table(["Tool", "Version", "Platform", "SHA-256"], sums).splitlines()
            ]
            out.append("")
    charts = data.get("charts", {})
    if charts:
        out += ["## Helm charts {#charts}", ""]
        rows = [
            [
                f"`{c.get('repo_name', '')}/{c.get('chart', name)}`",
                _cell(c.get("version", "")),
                _cell(c.get("app_version", "")),
                f"`{c.get('release', '')}` in `{c.get('namespace', '')}`",
                _cell(c.get("values", "")),
            ]
            for name, c in charts.items()
        ]
        out += [_table(["Chart", "Version", "App version", "Release", "Values"], rows), ""]
        repos = {c["repo_name"]: c["repo_url"] for c in charts.values() if "repo_name" in c}
        out += [_table(["Repository", "URL"], ([_cell(n), _cell(u)] for n, u in repos.items())), ""]
    images = data.get("images", {})
    if images:
        out += ["## Images {#images}", ""]
        out += [_table(["Service", "Image"], ([n, _cell(i)] for n, i in images.items())), ""]
        out += [
            "Built locally from `bookstore/Dockerfile` and loaded into the kind cluster; never "
            "pulled from a registry.",
            "",
        ]
    python = data.get("python", {})
    if python:
        out += ["## Python {#python}", ""]
        out += [_table(["Setting", "Value"], ([k, _cell(v)] for k, v in python.items())), ""]
    bookstore = data.get("bookstore", {})
    if bookstore:
        out += ["## Bookstore {#bookstore}", ""]
        out += [_table(["Setting", "Value"], ([k, _cell(v)] for k, v in bookstore.items())), ""]
    known = {"kind", "kubernetes", "tools", "charts", "images", "python", "bookstore"}
    for section, values in data.items():
        if section in known:
            continue
        out += [f"## `[{section}]` {{#{section}}}", ""]
        if isinstance(values, dict):
            out += [_table(["Key", "Value"], ([k, _cell(v)] for k, v in values.items())), ""]
        else:
            out += [_cell(values), ""]
    rel = VERSIONS_FILE.relative_to(REPO_ROOT)
    out += [f"*Generated from `{rel}` when this site was built.*", ""]
    return "\n".join(out)


# -- log schema ------------------------------------------------------------------------------
def _schema_type(spec: dict) -> str:
    kind = spec.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if "enum" in spec:
        kind = " \\| ".join(f"`{v}`" for v in spec["enum"])
    elif "const" in spec:
        kind = f"`{spec['const']}`"
    return kind or "any"


def _schema_constraints(spec: dict) -> str:
    parts = []
    for key in ("pattern", "format", "minimum", "maximum", "minLength", "maxLength"):
        if key in spec:
            parts.append(f"{key} {_cell(spec[key])}")
    return ", ".join(parts)


def _conditional_requirements(schema: dict) -> list[str]:
    """Plain-language lines for `if`/`then` and `dependentRequired` rules of the schema."""
    lines = []
    rules = list(schema.get("allOf", []))
    if "if" in schema:
        rules.append({k: schema[k] for k in ("if", "then") if k in schema})
    for rule in rules:
        cond = rule.get("if")
        then = rule.get("then", {})
        if cond is None or not then.get("required"):
            continue
        needs = ", ".join(f"`{k}`" for k in then["required"])
        if "required" in cond and not cond.get("properties"):
            when = "a line has " + ", ".join(f"`{k}`" for k in cond["required"])
        else:
            conds = []
            for key, spec in cond.get("properties", {}).items():
                if "const" in spec:
                    conds.append(f"`{key}` is `{spec['const']}`")
                elif "enum" in spec:
                    conds.append(f"`{key}` is one of " + ", ".join(f"`{v}`" for v in spec["enum"]))
                else:
                    conds.append(f"`{key}` is present")
            when = " and ".join(conds) or "the rule applies"
        lines.append(f"- When {when}: {needs} must be present.")
    for key, needed in schema.get("dependentRequired", {}).items():
        lines.append(f"- When `{key}` is present: " + ", ".join(f"`{k}`" for k in needed) + ".")
    return lines


def render_log_schema(page_src_uri: str) -> str:
    """The log contract as tables, plus the schema file itself, from bookstore/log-schema.json."""
    from bookstore.logschema import SCHEMA_PATH

    try:
        schema = json.loads(Path(SCHEMA_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PluginError(f"cannot read the log schema {SCHEMA_PATH}: {e}") from e
    required = set(schema.get("required", []))
    props: dict[str, dict] = schema.get("properties", {})
    out = []
    if schema.get("description"):
        out += [schema["description"], ""]
    unexplained = [name for name, spec in props.items() if not spec.get("description", "").strip()]
    if unexplained:
        raise PluginError(
            f"{SCHEMA_PATH}: no description for {', '.join(unexplained)}; every field of the log "
            "contract must say what it means, the reference page shows it"
        )
    # The meaning comes second: on a phone the table scrolls sideways, and the key with what it
    # means is what a reader needs to see without scrolling.
    rows = []
    for name, spec in props.items():
        rows.append(
            [
                f"`{name}`",
                spec.get("description", "").replace("|", "\\|").replace("\n", " "),
                _schema_type(spec),
                "yes" if name in required else "",
                _schema_constraints(spec),
            ]
        )
    out += ["## Fields {#fields}", ""]
    out += [_table(["Key", "Meaning", "Type", "Always", "Constraints"], rows), ""]
    extra = schema.get("additionalProperties", True)
    if extra is False:
        out += ["No other keys are allowed.", ""]
    else:
        out += [
            "Other keys are allowed: domain fields such as `order_id` or `book_id` ride along "
            "on the lines where they matter.",
            "",
        ]
    rules = _conditional_requirements(schema)
    if rules:
        out += ["## Conditional fields {#conditional-fields}", "", *rules, ""]
    rel = Path(SCHEMA_PATH).resolve().relative_to(REPO_ROOT)
    out += [
        "## The schema file {#schema-file}",
        "",
        f"`{rel}` (JSON Schema), validated in the services' tests and by the "
        "`lab2.json-stdout` checker:",
        "",
        f'??? example "{rel}"',
        "",
        *("    " + line for line in _fence(json.dumps(schema, indent=2), "json").splitlines()),
        "",
    ]
    return "\n".join(out)


def render_redaction_vocabulary(page_src_uri: str) -> str:
    """The sensitive-key vocabulary and the value rules, from bookstore.redaction."""
    from bookstore import redaction

    return redaction.vocabulary_markdown()


# -- checker catalogue -----------------------------------------------------------------------
def _steps_by_checker() -> dict[str, list[Any]]:
    """Which lab steps refer to each checker id (empty when the lab definition is absent)."""
    try:
        from labs.lab2 import LAB
    except ImportError:
        return {}
    found: dict[str, list[Any]] = {}
    for step in LAB.steps:
        for ref in dict.fromkeys((*step.checks, *step.learner_checks)):
            found.setdefault(ref.id, []).append(step)
    return found


def checker_anchor(checker_id: str) -> str:
    return "checker-" + re.sub(r"[^a-z0-9]+", "-", checker_id.lower()).strip("-")


HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{#([A-Za-z0-9_-]+)\})?\s*$")


def section_title(link: str) -> str:
    """The words a reader sees for a docs link such as "chapter.md#alerting" or "lab-2.md#step-2".

    Link text is what tells a learner where a link goes, so it is the section's own heading, not
    the file path. Lab steps come from the lab definition (their page is generated); any other
    page is read for the heading carrying that `{#anchor}`, or its title without one.
    """
    path, _, anchor = link.partition("#")
    if path == "lab-2.md":
        try:
            from labs.lab2 import LAB
        except ImportError:
            LAB = None
        for step in LAB.steps if LAB else ():
            if step.anchor == anchor:
                return f"Lab 2, step {step.number}: {step.title}"
    source = REPO_ROOT / "docs" / path
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise PluginError(f"a link points at {link}, but {source} cannot be read: {e}") from e
    for line in lines:
        match = HEADING.match(line)
        if match and (match.group(3) == anchor or (not anchor and match.group(1) == "#")):
            return match.group(2)
    raise PluginError(f"a link points at {link}, but {path} has no heading with {{#{anchor}}}")


def render_checkers(page_src_uri: str) -> str:
    """Every checker of checks.catalogue: id, points, what it verifies, its hint and lesson."""
    from checks.catalogue import CHECKERS, LEARNER_CHECKERS

    steps = _steps_by_checker()
    total = sum(c.points for c in CHECKERS)
    extra = sum(c.points for c in LEARNER_CHECKERS)
    rows = [
        [
            f"[`{c.id}`](#{checker_anchor(c.id)})",
            c.title.replace("|", "\\|"),
            str(c.points),
        ]
        for c in (*CHECKERS, *LEARNER_CHECKERS)
    ]
    out = [
        _table(["Id", "Verifies", "Points"], rows),
        "",
        f"Total: **{total} points**, plus {extra} for the learner-mode checkers "
        f"({', '.join(f'`{c.id}`' for c in LEARNER_CHECKERS)}), which judge your own queries "
        "file and run only when asked for by id (learner mode does).",
        "",
    ]
    for c in (*CHECKERS, *LEARNER_CHECKERS):
        out += [
            f"## `{c.id}` {{#{checker_anchor(c.id)}}}",
            "",
            f"**{c.title}** ({c.points} points)",
            "",
        ]
        used = steps.get(c.id, [])
        if used:
            links = ", ".join(
                f"[step {s.number}: {s.title}]({_relative(f'lab-2.md#{s.anchor}', page_src_uri)})"
                for s in used
            )
            out += [f"Run in lab 2 {links}.", ""]
        out += [
            '!!! tip "Hint when it fails"',
            "",
            "    " + c.hint,
            "",
            f"Learn it: [{section_title(c.docs)}]({_relative(c.docs, page_src_uri)})",
            "",
        ]
    out += _render_offline_checks(page_src_uri)
    out += ["*Generated from `checks/catalogue.py` when this site was built.*", ""]
    return "\n".join(out)


def _render_offline_checks(page_src_uri: str) -> list[str]:
    """The static checks that grade a submission without a cluster (checks.grading)."""
    from checks.grading import OFFLINE_CHECKERS

    out = [
        "## Offline checks {#offline-checks}",
        "",
        "`nox -s grade -- --offline FOLDER` grades submissions without a cluster, with these "
        "static checks of a learner's `manifests/` (see the "
        f"[instructor guide]({_relative('instructor.md#offline-grading', page_src_uri)})):",
        "",
    ]
    rows = [
        [f"`{c.id}`", c.title.replace("|", "\\|"), str(c.points), c.hint.replace("|", "\\|")]
        for c in OFFLINE_CHECKERS
    ]
    out += [_table(["Id", "Verifies", "Points", "Hint"], rows), ""]
    return out


# -- the lab page ----------------------------------------------------------------------------
# Classes on the command blocks: tests/test_docs.py reads them back out of the built HTML and
# compares them with the engine's plan, so the page cannot show a command the lab does not run.
COMMAND_CLASS = "lab-command"  # the reference solution (`--solve`), step by step
SETUP_CLASS = "lab-setup"  # what learner mode runs before it hands out a task
TASK_CLASS = "lab-task"  # what the learner types for a task (never run by the engine)
FALLBACK_CLASS = "lab-fallback"
CHECK_ALL_CLASS = "lab-check-all"


# Where the chapter teaches what each step shows, by step id. This is the docs' own cross-linking
# (the lab definition links each step to its section on this page); tests/test_docs.py checks
# that every step of the lab has an entry, so a renamed step is noticed.
CHAPTER_SECTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "prerequisites": (("The path of a single line", "chapter.md#one-log-line"),),
    "json-on-stdout": (
        ("Structured JSON: the log contract", "chapter.md#log-contract"),
        ("What kubectl logs can and cannot do", "chapter.md#kubectl-logs"),
    ),
    "loki-and-alloy": (
        ("Three ways to ship logs", "chapter.md#shipping-patterns"),
        ("Debugging the agent", "chapter.md#debugging-the-agent"),
    ),
    "query-one-request": (
        ("Correlation: one request, many services", "chapter.md#correlation"),
        ("Labels are the index", "chapter.md#labels-are-the-index"),
        ("Structured metadata", "chapter.md#structured-metadata"),
    ),
    "logs-survive-deletion": (("What kubectl logs can and cannot do", "chapter.md#kubectl-logs"),),
    "grafana": (("Alerting and metrics from logs", "chapter.md#alerting"),),
    # The hands-on extras (labs.lab2.extra_steps), each with its section of hands-on-extras.md.
    "retention": (
        ("Retention, cost, sampling and tiers", "chapter.md#retention-and-cost"),
        ("Extras: retention", "hands-on-extras.md#retention"),
    ),
    "the-node": (
        ("What kubectl logs can and cannot do", "chapter.md#kubectl-logs"),
        ("Extras: the node rotates the files", "hands-on-extras.md#the-node-rotates-the-files"),
    ),
    "alerting": (
        ("Alerting and metrics from logs", "chapter.md#alerting"),
        ("Extras: alerting on logs", "hands-on-extras.md#alerting-on-logs"),
    ),
    "incident": (
        ("Correlation: one request, many services", "chapter.md#correlation"),
        ("Extras: incident challenge", "hands-on-extras.md#incident-challenge"),
    ),
}

# The learner's ways of running the lab, in the order they meet them.
HOW_TO_RUN = (
    ("start the lab, or check the exercise you are on", "nox -s lab-2"),
    ("see the next hint of that exercise", "nox -s lab-2 -- --hint"),
    ("see what the lab will run and every task, touching nothing", "nox -s lab-2 -- --dry-run"),
    ("run the reference solution of step N (or of everything)", "nox -s lab-2 -- --solve --step N"),
    ("see every command of the reference solution", "nox -s lab-2 -- --dry-run --solve"),
    ("stop before step N", "nox -s lab-2 -- --until N"),
    ("run only the checkers", "nox -s lab-2 -- --check"),
    ("start again from a new cluster", "nox -s lab-2 -- --fresh"),
    ("delete the lab's cluster", "nox -s lab-down"),
)


def _indent(lines: list[str], prefix: str) -> list[str]:
    return [prefix + line if line else "" for line in lines]


def _command_block(command: str, css_class: str, indent: str = "") -> list[str]:
    fence = _fence(command, f"{{ .bash .{css_class} }}").splitlines()
    return [indent + line for line in fence]


def _action_notes(action: Any) -> list[str]:
    """What the engine does around a command beyond running it once, in a sentence or two."""
    from labs import model
    from labs.runner import format_command

    notes = []
    if action.kind == model.POLL:
        want = f" and its output contains `{action.expect}`" if action.expect else ""
        notes.append(
            f"Repeated every {action.interval:g} s until it succeeds{want}, "
            f"for at most {action.timeout:g} s."
        )
    elif action.kind == model.DOCTOR:
        notes.append("The preflight: every problem it finds comes with the command that fixes it.")
    elif action.kind == model.CLUSTER:
        notes.append(
            "Run through pytest-kind with the pinned kind; an existing cluster of this name "
            "is reused."
        )
    elif action.kind == model.CHECK:
        notes.append("The checkers of this step; each failure prints what it saw and a hint.")
    if action.skip_if and action.kind != model.CLUSTER:
        notes.append(f"Skipped when `{format_command(action.skip_if)}` shows it is already done.")
    return notes


def _file_block(rel: str, kind: str = "example") -> list[str]:
    """A repository file, collapsed (`??? example "path"`), at no indentation."""
    path = REPO_ROOT / rel
    try:
        text = path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as e:
        raise PluginError(f"the lab page shows {rel}, which cannot be read: {e}") from e
    lang = "yaml" if rel.endswith((".yaml", ".yml")) else ""
    return [f'??? {kind} "{rel}"', "", *_indent(_fence(text, lang).splitlines(), "    "), ""]


def _values_file(argv: tuple[str, ...]) -> list[str]:
    """For a command with `--values FILE`, that file, collapsed: the values are part of it."""
    if "--values" not in argv:
        return []
    return _indent(_file_block(argv[argv.index("--values") + 1]), "    ")


def _numbered_actions(actions, css_class: str) -> list[str]:
    """Numbered commands with their notes, values files and fallbacks (no indentation)."""
    from labs.engine import planned
    from labs.runner import format_command

    out = []
    for n, action in enumerate(actions, 1):
        out += [f"{n}. {action.title}", ""]
        out += _command_block(planned(action).display, css_class, "    ")
        out.append("")
        for note in _action_notes(action):
            out += [f"    {note}", ""]
        out += _values_file(action.argv)
        if action.fallback:
            patterns = ", ".join(f"`{p}`" for p in action.fallback_on)
            out += [f"    If it fails with {patterns} in its output, the lab runs instead:", ""]
            for fb in action.fallback:
                out += [f"    - {fb.title}", ""]
                out += _command_block(format_command(fb.argv, fb.env), FALLBACK_CLASS, "        ")
                out.append("")
    return out


def _checker_links(refs, page_src_uri: str, hints: bool = True) -> list[str]:
    """The checkers as a list; `hints=False` on a task, where a checker's hint could give the
    answer away (the task's own hints sit collapsed below it)."""
    from checks.catalogue import get as get_checker

    checkers_page = _relative("reference/checkers.md", page_src_uri)
    out = []
    for ref in refs:
        c = get_checker(ref.id)
        out += [
            f"- **{c.title}** ([`{c.id}`]({checkers_page}#{checker_anchor(c.id)}), "
            f"{c.points} points)",
            "",
        ]
        if hints:
            out += [f"    Hint when it fails: {c.hint}", ""]
    return out


def _lab_intro(lab: Any, page_src_uri: str) -> list[str]:
    out = [
        f"# {lab.title}",
        "",
        "Everything on this page is generated from the lab definition (`labs/lab2.py`) and the "
        "engine's plan when the site is built: each command below is exactly what the lab runs, "
        "or what it asks you to type, with the versions pinned in "
        f"[`versions.toml`]({_relative('reference/versions.md', page_src_uri)}). "
        "Run from the root of your clone; every `kubectl` and `helm` command uses the lab's own "
        f"kubeconfig, `{lab.kubeconfig}`, never your default one.",
        "",
        "## How to run it {#how-to-run}",
        "",
        "`nox -s lab-2` sets up what a step needs that is not the point of it (all of step 0: "
        "the cluster, the images, the bookstore), then stops at each exercise and prints "
        "**your task**: what to achieve, the files to edit, what you will be able to do "
        "afterwards and about how long it takes. Run it again when you think you are done: it "
        "checks the exercise with the same checkers the instructor grades with; when they "
        "pass it moves on, when they fail you get the diagnosis and a first hint.",
        "",
        "| You want to | Run |",
        "|---|---|",
        *(f"| {want} | `{cmd}` |" for want, cmd in HOW_TO_RUN),
        "",
        "A second run reuses the cluster and skips finished work. On a slow machine, "
        "`LAB_TIMEOUT_SCALE=2 nox -s lab-2` doubles every deadline below. Progress (and the "
        "hints you have seen) is kept in `.lab/state.json`; when a step fails, what explains "
        "it is saved in `.lab/artifacts/`.",
        "",
    ]
    return out


def _lab_overview(lab: Any) -> list[str]:
    out = [
        "| Step | What you do | You will be able to | Time | Checked by |",
        "|---|---|---|---|---|",
    ]
    total = 0
    for step in lab.steps:
        ids = ", ".join(f"`{c.id}`" for c in step.learner_checks) or "none"
        optional = " (optional)" if step.optional else ""
        what = ("exercise: " if step.task else "set-up: ") + step.title + optional
        total += step.minutes
        out.append(
            f"| [{step.number}](#{step.anchor}) | {what} | {step.objective} | "
            f"{step.minutes} min | {ids} |"
        )
    out += ["", f"About **{total} minutes** in all.", ""]
    return out


def _lab_task(lab: Any, step: Any, page_src_uri: str) -> list[str]:
    from labs import learner

    task = step.task
    out = [f"### Your task {{#{step.anchor}-task}}", "", task.goal, ""]
    if task.files:
        out += ["Files to edit: " + ", ".join(f"`{f}`" for f in task.files) + ".", ""]
    if task.setup:
        out += ["Before handing you the task, the lab runs:", ""]
        out += _numbered_actions(task.setup, SETUP_CLASS)
    if task.commands:
        out += ["Commands to type when your file is ready:", ""]
        out += _numbered_actions(task.commands, TASK_CLASS)
    ids = ", ".join(f"`{c.id}`" for c in step.learner_checks)
    out += [
        f"**Check it:** run `{learner.RUN_AGAIN}` again; it runs {ids}. "
        f"Stuck? `{learner.MORE_HINTS}` shows one hint more each time.",
        "",
        "### What is checked",
        "",
        *_checker_links(step.learner_checks, page_src_uri, hints=False),
        '??? tip "Hints (try without them first)"',
        "",
        *(f"    {i}. {h}" for i, h in enumerate(task.hints, 1)),
        "",
    ]
    return out


def _lab_solution(step: Any, page_src_uri: str) -> list[str]:
    body = [
        f"`nox -s lab-2 -- --solve --step {step.number}` runs these commands "
        "(they are also what the lab's own CI runs):",
        "",
        *_numbered_actions(step.actions, COMMAND_CLASS),
    ]
    for rel in step.task.solution_files:
        body += ["The reference answer:", "", *_file_block(rel)]
    if step.checks:
        body += ["The solution is verified by: " + ", ".join(f"`{c.id}`" for c in step.checks)]
        body.append("")
    head = f'??? success "Solution of step {step.number} (open it after trying)"'
    return [head, "", *_indent(body, "    "), ""]


def _lab_step(lab: Any, step: Any, page_src_uri: str) -> list[str]:
    out = [f"## Step {step.number}: {step.title} {{#{step.anchor}}}", ""]
    if step.optional:
        out += ['!!! info "Optional"', "", "    The lab's score does not depend on this step.", ""]
    out += [f"**You will be able to:** {step.objective} **Time:** about {step.minutes} min.", ""]
    out += [step.summary, ""]
    reading = list(CHAPTER_SECTIONS.get(step.id, ()))
    if not step.docs.startswith(f"lab-2.md#{step.anchor}"):
        reading.insert(0, (step.docs, step.docs))
    if reading:
        links = ", ".join(f"[{t}]({_relative(link, page_src_uri)})" for t, link in reading)
        out += [f"In the chapter: {links}.", ""]
    if step.task:
        out += _lab_task(lab, step, page_src_uri) + _lab_solution(step, page_src_uri)
    else:
        out += ["### Commands", "", "The lab runs these for you (learner mode too):", ""]
        out += _numbered_actions(step.actions, COMMAND_CLASS)
        if step.checks:
            out += ["### What is checked", "", *_checker_links(step.checks, page_src_uri)]
        if step.hints:
            out += ['!!! tip "Hints"', "", *(f"    - {h}" for h in step.hints), ""]
    if step.queries and not step.task:
        out += ["### LogQL to try", "", "In Grafana's Explore view, or the live notebook:", ""]
        for q in step.queries:
            out += [_fence(q, "text"), ""]
    return out


def render_lab2(page_src_uri: str) -> str:
    """The lab page: how to run it, then every step: its task, its set-up, its solution."""
    from labs.engine import check_action, kubeconfig_export
    from labs.lab2 import LAB
    from labs.runner import format_command

    out = _lab_intro(LAB, page_src_uri) + _lab_overview(LAB)
    for step in LAB.steps:
        out += _lab_step(LAB, step, page_src_uri)
    out += [
        "## When you are done {#done}",
        "",
        "Use the lab's cluster from your own shell:",
        "",
        _fence(kubeconfig_export(LAB), "bash"),
        "",
    ]
    if LAB.grafana_url:
        out += [f"Grafana: <{LAB.grafana_url}>, {LAB.grafana_login}.", ""]
    if LAB.try_query:
        out += ["A query to start from:", "", _fence(LAB.try_query, "text"), ""]
    learner_all, solution_all = check_action(LAB, solve=False), check_action(LAB)
    out += [
        "Every checker of your work at once (what `nox -s lab-2 -- --check` runs):",
        "",
        *_command_block(format_command(learner_all.argv), CHECK_ALL_CLASS),
        "",
        "and of the reference solution (`nox -s lab-2 -- --check --solve`):",
        "",
        *_command_block(format_command(solution_all.argv), CHECK_ALL_CLASS),
        "",
        "Then read on: the [chapter's questions]"
        f"({_relative('chapter.md#test-your-understanding', page_src_uri)}) and the "
        f"[hands-on extension]({_relative('chapter.md#hands-on-extension', page_src_uri)}).",
        "",
    ]
    return "\n".join(out)


# -- drills and the instructor guide ---------------------------------------------------------
DRILL_BREAK_CLASS = "lab-drill-break"
DRILL_FIX_CLASS = "lab-drill-fix"


def _drill_section(drill: Any, page_src_uri: str) -> list[str]:
    from labs.drills import DRILL_CMD

    out = [
        f"## {drill.title} {{#{drill.anchor}}}",
        "",
        f"**You will be able to:** {drill.objective} **Time:** about {drill.minutes} min.",
        "",
        f"Break it: `{DRILL_CMD} {drill.name}`. Then:",
        "",
        f"> {drill.symptoms}",
        "",
        f"Find the cause, fix it, and check your fix with `{DRILL_CMD} {drill.name} --check` "
        "(it runs " + ", ".join(f"`{c.id}`" for c in drill.fixed) + ").",
        "",
        '??? tip "Hints"',
        "",
        *(f"    {i}. {h}" for i, h in enumerate(drill.hints, 1)),
        "",
        '??? question "Where to look, in order"',
        "",
        *(f"    {i}. {d}" for i, d in enumerate(drill.diagnosis, 1)),
        "",
    ]
    body = ["What the drill changed:", "", *_numbered_actions(drill.breaks, DRILL_BREAK_CLASS)]
    body += [
        f"The reference fix (`{DRILL_CMD} {drill.name} --solve` runs it, then the checkers):",
        "",
        *_numbered_actions(drill.fix, DRILL_FIX_CLASS),
    ]
    out += [f'??? success "Solution of {drill.name}"', "", *_indent(body, "    "), ""]
    if drill.note:
        out += ['!!! note "Good to know"', "", f"    {drill.note}", ""]
    return out


def render_drills(page_src_uri: str) -> str:
    """The drills page: one section per drill of labs.drills, the answers collapsed."""
    from labs.drills import DRILL_CMD, DRILLS

    lab_page = _relative("lab-2.md", page_src_uri)
    out = [
        "Each drill breaks one thing in a **working** lab 2, the way it breaks in real clusters, "
        "and leaves you to find it from the symptoms. Start from a lab that passes (finish it, "
        f"or `nox -s lab-2 -- --solve`; see the [lab page]({lab_page})).",
        "",
        "| You want to | Run |",
        "|---|---|",
        f"| list the drills | `{DRILL_CMD} --list` |",
        f"| break the lab | `{DRILL_CMD} NAME` |",
        f"| check your fix | `{DRILL_CMD} NAME --check` |",
        f"| the hints and where to look | `{DRILL_CMD} NAME --hint` |",
        f"| the reference fix | `{DRILL_CMD} NAME --solve` |",
        f"| see a drill's commands, running nothing | `{DRILL_CMD} NAME --dry-run` |",
        "",
        "| Drill | What you practise | Time |",
        "|---|---|---|",
        *(f"| [{d.name}](#{d.anchor}) | {d.objective} | {d.minutes} min |" for d in DRILLS),
        "",
    ]
    for drill in DRILLS:
        out += _drill_section(drill, page_src_uri)
    out += ["*Generated from `labs/drills.py` when this site was built.*", ""]
    return "\n".join(out)


def render_instructor_timing(page_src_uri: str) -> str:
    """Per step: what it is, the objective, the time, and what learners get wrong."""
    from labs.lab2 import LAB

    lab_page = _relative("lab-2.md", page_src_uri)
    rows = []
    for step in LAB.steps:
        kind = "exercise" if step.task else "set-up (the lab runs it)"
        rows.append(
            f"| [{step.number}]({lab_page}#{step.anchor}) | {step.title} ({kind}) | "
            f"{step.objective} | {step.minutes} min |"
        )
    total = sum(s.minutes for s in LAB.steps)
    out = [
        "| Step | What | Learners will be able to | Time |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Plan on **about {total} minutes hands-on** (the lab page shows the same estimates), "
        "plus reading the chapter, which can be homework.",
        "",
        "### What to watch for {#watch-for}",
        "",
    ]
    for step in LAB.steps:
        pitfalls = step.task.pitfalls if step.task else ()
        if pitfalls:
            out += [f"**Step {step.number}, {step.title}**", ""]
            out += [f"- {p}" for p in pitfalls] + [""]
    out += [
        "To show a step to the class, or to unblock one learner, `nox -s lab-2 -- --solve "
        "--step N` runs its reference solution; the lab then continues with the next task.",
        "",
    ]
    return "\n".join(out)


def render_instructor_drills(page_src_uri: str) -> str:
    """How to run a class through the drills, from labs.drills."""
    from labs.drills import DRILL_CMD, DRILLS

    drills_page = _relative("drills.md", page_src_uri)
    total = sum(d.minutes for d in DRILLS)
    out = [
        f"The [drills]({drills_page}) take about {total} minutes for all {len(DRILLS)}; pick "
        "two or three for a session. Each starts from a lab that passes.",
        "",
        "1. Before the class, on your own cluster, check that each drill breaks what it says: "
        f"`{DRILL_CMD} NAME`, then `{DRILL_CMD} NAME --verify-broken` (its checkers fail with "
        f"the expected diagnosis), then `{DRILL_CMD} NAME --solve`.",
        f"2. In class, learners (in pairs works well) run `{DRILL_CMD} NAME` and get only the "
        "symptom. Give them the time below before anyone opens the hints.",
        "3. Ask each pair for the command or query that showed them the cause before they "
        "fix anything; that path is the skill, the fix is usually one line.",
        f"4. `{DRILL_CMD} NAME --check` confirms the fix with the lab's checkers; `--solve` "
        "restores a lab that is too far gone.",
        "",
        "| Drill | Time | Broken checkers (expected diagnosis) | What to watch for |",
        "|---|---|---|---|",
    ]
    for d in DRILLS:
        broken = "; ".join(
            f"`{r.id}` ({p.replace('|', chr(92) + '|')})"
            for r, p in zip(d.broken, d.expect, strict=True)
        )
        note = d.note.replace("|", "\\|") or d.hints[0].replace("|", "\\|")
        out.append(
            f"| [{d.name}]({drills_page}#{d.anchor}) | {d.minutes} min | {broken} | {note} |"
        )
    out.append("")
    return "\n".join(out)


# -- class mode --------------------------------------------------------------------------------
CLASS_SIZES = (30, 50, 100, 200)
CLASS_RATES = (60, 600)  # lines per learner per minute: the lab's loadgen, then a busy drill


def render_class_sizing(page_src_uri: str) -> str:
    """The per-learner quota and a paper estimate of Loki for classes of several sizes."""
    from classroom import sizing
    from classroom.plan import make_plan
    from classroom.roster import Learner

    plan = make_plan([Learner("sample")], "sizing", nodes=3)
    hard = plan.quota
    quota = _table(
        ["", "requests", "limits", "the bookstore needs (requests / limits)"],
        [
            [what, hard[f"requests.{what}"], hard[f"limits.{what}"],
             f"{sizing.fmt(f'requests.{what}', plan.bookstore_need.values[f'requests.{what}'])} / "
             f"{sizing.fmt(f'limits.{what}', plan.bookstore_need.values[f'limits.{what}'])}"]
            for what in ("cpu", "memory")
        ] + [["pods", hard["pods"], "", str(plan.bookstore_pods)]],
    )  # fmt: skip
    rows = []
    for learners in CLASS_SIZES:
        for rate in CLASS_RATES:
            e = sizing.loki_estimate(learners, rate)
            rows.append([str(learners), str(rate), f"{e.lines_per_day / 1e6:.1f} M",
                         f"{e.raw_gib_per_day:.1f} GiB", f"{e.stored_gib_per_day:.1f} GiB",
                         f"{e.ingester_memory_gib:.1f} GiB"])  # fmt: skip
    estimate = _table(
        ["learners", "lines/min each", "lines/day", "raw/day", "stored/day", "ingester memory"],
        rows,
    )
    return "\n\n".join(["**One learner's quota** (the ResourceQuota of "
                         "`manifests/class/learner.yaml`):", quota,
                         "**Loki, estimated on paper** (not measured):", estimate])  # fmt: skip


# The laptop's names and what a class learner uses in their place (docs/class-mode.md).
CLASS_NS = "lab2-<id>"
CLASS_SWAPS = (
    ("--kubeconfig .lab/kubeconfig", "--kubeconfig lab2-<id>.kubeconfig"),
    ("-n bookstore", f"-n {CLASS_NS}"),
    ('namespace="bookstore"', f'namespace="{CLASS_NS}"'),
    ("`bookstore`", f"`{CLASS_NS}`"),
    # The traffic Job's manifest names the laptop's namespace: apply it moved into one's own.
    ("kubectl --kubeconfig lab2-<id>.kubeconfig apply -f manifests/bookstore/loadgen.yaml",
     f"sed 's/namespace: bookstore/namespace: {CLASS_NS}/' manifests/bookstore/loadgen.yaml | "
     "kubectl --kubeconfig lab2-<id>.kubeconfig apply -f -"),
)  # fmt: skip
CLASS_STEPS = (1, 3, 4)  # the steps done inside one's own namespace; the others are the stack's


def for_learner(text: str) -> str:
    for laptop, own in CLASS_SWAPS:
        text = text.replace(laptop, own)
    return text


def render_lab2_class(page_src_uri: str) -> str:
    """Lab 2's exercises for a learner of a class: the same steps of labs.lab2, with their own
    namespace, kubeconfig and Loki tenant in place of the laptop's."""
    from classroom.grade import CLASS_CHECKERS
    from labs.lab2 import LAB
    from labs.runner import format_command

    out = []
    for step in LAB.steps:
        link = _relative(f"lab-2.md#{step.anchor}", page_src_uri)
        if step.number not in CLASS_STEPS or not step.task:
            out += [f"- **Step {step.number}: [{step.title}]({link})**: set up for the whole "
                    "class by your instructor; read it, nothing to run.", ""]  # fmt: skip
            continue
        out += [f"- **Step {step.number}: [{step.title}]({link})**", "",
                f"    {for_learner(step.task.goal)}", ""]  # fmt: skip
        for what, actions in (
            ("The set-up, which the laptop lab runs for you and you run here:", step.task.setup),
            ("The task's commands:", step.task.commands),
        ):
            if actions:
                out += [f"    {what}", ""]
                out += [f"    1. `{for_learner(format_command(a.argv))}`" for a in actions] + [""]
        graded = [c.id for c in step.learner_checks if c.id in CLASS_CHECKERS]
        files = [c.id for c in step.learner_checks if c.id not in CLASS_CHECKERS]
        if graded:
            out += ["    Graded by `class grade`: " + ", ".join(f"`{c}`" for c in graded), ""]
        if files:
            out += ["    Checked from your files (hand them in): "
                    + ", ".join(f"`{c}`" for c in files), ""]  # fmt: skip
    return "\n".join(out)


RENDERERS: dict[str, Callable[[str], str]] = {
    "class-sizing": render_class_sizing,
    "lab2-class": render_lab2_class,
    "lab2": render_lab2,
    "versions": render_versions,
    "log-schema": render_log_schema,
    "redaction-vocabulary": render_redaction_vocabulary,
    "checkers": render_checkers,
    "drills": render_drills,
    "instructor-timing": render_instructor_timing,
    "instructor-drills": render_instructor_drills,
}


# -- MkDocs events ---------------------------------------------------------------------------
# The notebooks are executed here, by notebooks/run.py (what `nox -s notebooks` runs), and the
# executed copies are published under notebooks/executed/ for download. The live notebook needs a
# lab cluster, so the site shows it as written. DOCS_EXECUTE_NOTEBOOKS=false skips the run
# (a quicker `nox -s docs -- serve` while writing).
SHOWN_AS_WRITTEN = frozenset({"live.ipynb"})
EXECUTED_DIR = "notebooks/executed"
_build_dir: Path | None = None


def _notebook_runner():
    """notebooks/run.py as a module (the folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebook_runner", NOTEBOOKS_DIR / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _execute_notebooks() -> bool:
    return os.environ.get("DOCS_EXECUTE_NOTEBOOKS", "true").strip().lower() not in (
        "false",
        "0",
        "no",
    )


@event_priority(100)  # before mkdocs-jupyter's on_files, so it wraps the notebooks we add
def on_files(files, config):
    """Add notebooks/*.ipynb to the site as notebooks/<name>.ipynb pages, executed first."""
    from mkdocs.structure.files import File

    global _build_dir
    _build_dir = Path(tempfile.mkdtemp(prefix="site-notebooks-"))
    runner = _notebook_runner() if _execute_notebooks() else None
    for notebook in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        src_uri = f"notebooks/{notebook.name}"
        if files.get_file_from_path(src_uri) is not None:
            continue
        src_dir = REPO_ROOT
        if runner is not None and notebook.name not in SHOWN_AS_WRITTEN:
            try:
                runner.execute(notebook, output=_build_dir / "notebooks")
            except Exception as e:  # a notebook that fails must fail the build, saying which
                raise PluginError(
                    f"{src_uri} failed while executing for the site "
                    f"(rerun it alone: python notebooks/run.py {notebook.stem}):\n{e}"
                ) from e
            src_dir = _build_dir
        # A plain File (not File.generated): mkdocs-jupyter's wrapper finds the notebook through
        # src_dir, which generated files leave empty.
        files.append(
            File(
                src_uri,
                src_dir=str(src_dir),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


def on_post_build(config):
    """Publish the executed notebooks for download, then drop the build's scratch folder."""
    global _build_dir
    if _build_dir is None:
        return
    executed = sorted((_build_dir / "notebooks").glob("*.ipynb"))
    if executed:
        target = Path(config["site_dir"]) / EXECUTED_DIR
        target.mkdir(parents=True, exist_ok=True)
        for notebook in executed:
            shutil.copy2(notebook, target / notebook.name)
    shutil.rmtree(_build_dir, ignore_errors=True)
    _build_dir = None


# -- site plumbing: works offline, reads well on a phone ---------------------------------------
MERMAID_DIR = "assets/vendor/mermaid"
MERMAID_SCRIPT = f"{MERMAID_DIR}/mermaid.min.js"
# Material's own bundle: our Mermaid must be defined before it runs, or the theme fetches one
# from a CDN (it only does so while `window.mermaid` is undefined).
THEME_BUNDLE = re.compile(r'<script src="[^"]*assets/javascripts/bundle\.[^"]*\.min\.js"></script>')
PRE_BLOCK = re.compile(r"(<pre\b.*?</pre>)", re.S)
INLINE_CODE = re.compile(r"<code>([^<]*)</code>")
# A bare "--" belongs to the option after it: `nox -s lab-2 -- --dry-run` must never end a
# line with "--".
CODE_WORDS = re.compile(r"(?:--\s+)?\S+")


# Longer words (paths, URLs) must stay breakable, or they run off a phone's screen.
NOWRAP_MAX_CHARS = 32


def _nowrap_words(code: str) -> str:
    """Inline code whose hyphenated words (options, names) cannot be broken at a hyphen."""

    def wrap(match: re.Match) -> str:
        word = match.group(0)
        if "-" in word and len(word) <= NOWRAP_MAX_CHARS:
            return f'<span class="nowrap">{word}</span>'
        return word

    return CODE_WORDS.sub(wrap, code)


def on_page_content(html: str, page, config, files) -> str:
    """Keep options and hyphenated names whole in inline code; code blocks are left alone."""
    parts = PRE_BLOCK.split(html)
    for i in range(0, len(parts), 2):  # even items are outside <pre> blocks
        parts[i] = INLINE_CODE.sub(lambda m: f"<code>{_nowrap_words(m.group(1))}</code>", parts[i])
    return "".join(parts)


def on_post_page(output: str, page, config) -> str:
    """Serve Mermaid from the site itself on the pages that draw a diagram (no CDN)."""
    if 'class="mermaid"' not in output:
        return output
    from mkdocs.utils import get_relative_url

    src = get_relative_url(MERMAID_SCRIPT, page.url)
    tag = f'<script src="{src}"></script>'
    found = THEME_BUNDLE.search(output)
    if found is None:
        raise PluginError(
            f"{page.file.src_uri}: the theme's bundle script was not found, so the site's own "
            "Mermaid cannot be loaded before it (did mkdocs-material change its layout?)"
        )
    return output[: found.start()] + tag + output[found.start() :]


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace every `<!-- generated: NAME -->` line with what its renderer produces."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        renderer = RENDERERS.get(name)
        if renderer is None:
            raise PluginError(
                f"{page.file.src_uri}: unknown generated block {name!r}; "
                f"known: {', '.join(sorted(RENDERERS))}"
            )
        try:
            return renderer(page.file.src_uri)
        except PluginError:
            raise
        except Exception as e:  # a broken source must fail the build, saying where
            raise PluginError(
                f"{page.file.src_uri}: rendering the generated block {name!r} failed: "
                f"{type(e).__name__}: {e}"
            ) from e

    return MARKER.sub(replace, markdown)
