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
import posixpath
import re
import sys
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
    rows = []
    for name, spec in props.items():
        rows.append(
            [
                f"`{name}`",
                "yes" if name in required else "",
                _schema_type(spec),
                _schema_constraints(spec),
                spec.get("description", "").replace("|", "\\|").replace("\n", " "),
            ]
        )
    out += ["## Fields {#fields}", ""]
    out += [_table(["Key", "Always", "Type", "Constraints", "Meaning"], rows), ""]
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
        for ref in step.checks:
            found.setdefault(ref.id, []).append(step)
    return found


def checker_anchor(checker_id: str) -> str:
    return "checker-" + re.sub(r"[^a-z0-9]+", "-", checker_id.lower()).strip("-")


def render_checkers(page_src_uri: str) -> str:
    """Every checker of checks.catalogue: id, points, what it verifies, its hint and lesson."""
    from checks.catalogue import CHECKERS

    steps = _steps_by_checker()
    total = sum(c.points for c in CHECKERS)
    rows = [
        [
            f"[`{c.id}`](#{checker_anchor(c.id)})",
            c.title.replace("|", "\\|"),
            str(c.points),
        ]
        for c in CHECKERS
    ]
    out = [_table(["Id", "Verifies", "Points"], rows), "", f"Total: **{total} points**.", ""]
    for c in CHECKERS:
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
            f"Learn it: [{c.docs}]({_relative(c.docs, page_src_uri)})",
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
COMMAND_CLASS = "lab-command"
FALLBACK_CLASS = "lab-fallback"
CHECK_ALL_CLASS = "lab-check-all"


# Where the chapter teaches what each step shows, by step id. This is the docs' own cross-linking
# (the lab definition links each step to its section on this page); tests/test_docs.py checks
# that every step of the lab has an entry, so a renamed step is noticed.
CHAPTER_SECTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "prerequisites": (("Follow one log line", "chapter.md#one-log-line"),),
    "json-on-stdout": (
        ("Structured JSON: the log contract", "chapter.md#log-contract"),
        ("What kubectl logs can and cannot do", "chapter.md#kubectl-logs"),
    ),
    "loki-and-alloy": (("Three ways to ship logs", "chapter.md#shipping-patterns"),),
    "query-one-request": (
        ("Correlation: one request, many services", "chapter.md#correlation"),
        ("Labels are the index", "chapter.md#labels-are-the-index"),
    ),
    "logs-survive-deletion": (("What kubectl logs can and cannot do", "chapter.md#kubectl-logs"),),
    "grafana": (("Alerting and metrics from logs", "chapter.md#alerting"),),
}


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


def _values_file(argv: tuple[str, ...]) -> list[str]:
    """For a command with `--values FILE`, that file, collapsed: the values are part of it."""
    if "--values" not in argv:
        return []
    rel = argv[argv.index("--values") + 1]
    path = REPO_ROOT / rel
    try:
        text = path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as e:
        raise PluginError(f"the lab installs a chart with {rel}, which cannot be read: {e}") from e
    lines = [f'    ??? example "{rel}"', ""]
    lines += ["        " + line if line else "" for line in _fence(text, "yaml").splitlines()]
    return [*lines, ""]


def render_lab2(page_src_uri: str) -> str:
    """The lab page: how to run it, then every step with the exact commands of the plan."""
    from checks.catalogue import get as get_checker
    from labs.engine import check_action, kubeconfig_export, plan
    from labs.lab2 import LAB
    from labs.runner import format_command

    planned_steps = plan(LAB)
    checkers_page = _relative("reference/checkers.md", page_src_uri)
    out = [
        f"# {LAB.title}",
        "",
        "Everything on this page is generated from the lab definition (`labs/lab2.py`) and the "
        "engine's plan when the site is built: each command below is exactly what "
        "`nox -s lab-2` runs, with the versions pinned in "
        f"[`versions.toml`]({_relative('reference/versions.md', page_src_uri)}). "
        "Run from the root of your clone; every `kubectl` and `helm` command uses the lab's own "
        f"kubeconfig, `{LAB.kubeconfig}`, never your default one.",
        "",
        "## How to run it {#how-to-run}",
        "",
        "| You want to | Run |",
        "|---|---|",
        "| run every step, then the checkers | `nox -s lab-2` |",
        "| see every command first, touching nothing | `nox -s lab-2 -- --dry-run` |",
        "| stop before step N and do it by hand | `nox -s lab-2 -- --until N` |",
        "| run only step N | `nox -s lab-2 -- --step N` |",
        "| run only the checkers | `nox -s lab-2 -- --check` |",
        "| start again from a new cluster | `nox -s lab-2 -- --fresh` |",
        "| delete the lab's cluster | `nox -s lab-down` |",
        "",
        "A second run reuses the cluster and skips finished work. On a slow machine, "
        "`LAB_TIMEOUT_SCALE=2 nox -s lab-2` doubles every deadline below. Progress is kept in "
        "`.lab/state.json`; when a step fails, what explains it is saved in `.lab/artifacts/`.",
        "",
        "| Step | What you do | Checked by |",
        "|---|---|---|",
    ]
    for ps in planned_steps:
        step = ps.step
        ids = ", ".join(f"`{c.id}`" for c in step.checks) or "none"
        optional = " (optional)" if step.optional else ""
        out.append(f"| [{step.number}](#{step.anchor}) | {step.title}{optional} | {ids} |")
    out.append("")

    for ps in planned_steps:
        step = ps.step
        out += [f"## Step {step.number}: {step.title} {{#{step.anchor}}}", ""]
        if step.optional:
            out += [
                '!!! info "Optional"',
                "",
                "    The lab's score does not depend on this step.",
                "",
            ]
        out += [step.summary, ""]
        reading = list(CHAPTER_SECTIONS.get(step.id, ()))
        if not step.docs.startswith(f"lab-2.md#{step.anchor}"):
            reading.insert(0, (step.docs, step.docs))
        if reading:
            links = ", ".join(f"[{t}]({_relative(link, page_src_uri)})" for t, link in reading)
            out += [f"In the chapter: {links}.", ""]
        if step.number > 0:
            out += [
                '??? tip "Do this step by hand"',
                "",
                f"    Run `nox -s lab-2 -- --until {step.number}` to stop just before it, type "
                "the commands below yourself, then check your work with "
                "`nox -s lab-2 -- --check`.",
                "",
            ]
        out += ["### Commands", ""]
        for n, pa in enumerate(ps.actions, 1):
            out += [f"{n}. {pa.title}", ""]
            out += _command_block(pa.display, COMMAND_CLASS, "    ")
            out.append("")
            for note in _action_notes(pa.action):
                out += [f"    {note}", ""]
            out += _values_file(pa.action.argv)
            if pa.action.fallback:
                patterns = ", ".join(f"`{p}`" for p in pa.action.fallback_on)
                out += [f"    If it fails with {patterns} in its output, the lab runs instead:", ""]
                for fb in pa.action.fallback:
                    out += [f"    - {fb.title}", ""]
                    out += _command_block(
                        format_command(fb.argv, fb.env), FALLBACK_CLASS, "        "
                    )
                    out.append("")
        if step.queries:
            out += ["### LogQL to try", "", "In Grafana's Explore view, or the live notebook:", ""]
            for q in step.queries:
                out += [_fence(q, "text"), ""]
        if step.checks:
            out += ["### What is checked", ""]
            for ref in step.checks:
                c = get_checker(ref.id)
                out += [
                    f"- **{c.title}** ([`{c.id}`]({checkers_page}#{checker_anchor(c.id)}), "
                    f"{c.points} points)",
                    "",
                    f"    Hint when it fails: {c.hint}",
                    "",
                ]
        if step.hints:
            out += ['!!! tip "Hints"', ""]
            out += [f"    - {h}" for h in step.hints]
            out.append("")

    check_all = check_action(LAB)
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
    out += [
        "Every checker of the lab at once (what `nox -s lab-2 -- --check` runs):",
        "",
        *_command_block(format_command(check_all.argv, check_all.env), CHECK_ALL_CLASS),
        "",
        "Then read on: the [chapter's questions]"
        f"({_relative('chapter.md#test-your-understanding', page_src_uri)}) and the "
        f"[hands-on extension]({_relative('chapter.md#hands-on-extension', page_src_uri)}).",
        "",
    ]
    return "\n".join(out)


RENDERERS: dict[str, Callable[[str], str]] = {
    "lab2": render_lab2,
    "versions": render_versions,
    "log-schema": render_log_schema,
    "redaction-vocabulary": render_redaction_vocabulary,
    "checkers": render_checkers,
}


# -- MkDocs events ---------------------------------------------------------------------------
@event_priority(100)  # before mkdocs-jupyter's on_files, so it wraps the notebooks we add
def on_files(files, config):
    """Add notebooks/*.ipynb to the site as notebooks/<name>.ipynb pages."""
    from mkdocs.structure.files import File

    for notebook in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        src_uri = f"notebooks/{notebook.name}"
        if files.get_file_from_path(src_uri) is None:
            # A plain File rooted at the repository (not File.generated): mkdocs-jupyter's
            # wrapper finds the notebook through src_dir, which generated files leave empty.
            files.append(
                File(
                    src_uri,
                    src_dir=str(REPO_ROOT),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files


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
