"""The course site: it builds strictly, the lab page is the engine's plan, every link lands.

The site is built once per session into a temporary folder with the same command as
`nox -s docs` (`mkdocs build --strict`), which also executes the offline notebook. The other
tests read the built HTML, so they check what a learner actually gets, not the Markdown.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from checks.catalogue import CHECKERS
from labconfig.versions import REPO_ROOT, load_versions
from labs.engine import Options, check_action, plan, planned
from labs.lab2 import LAB
from labs.runner import format_command

HOOK_PATH = REPO_ROOT / "docs" / "hooks" / "generated_pages.py"


def load_hook():
    spec = importlib.util.spec_from_file_location("generated_pages", HOOK_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site, built exactly as `nox -s docs` builds it (strict: any warning fails)."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, (
        f"`mkdocs build --strict` failed (exit {result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
    return out


class _Page(HTMLParser):
    """Collects ids, links, and the text of code blocks by the class of their wrapper."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.blocks: dict[str, list[str]] = {}
        self._stack: list[tuple[str, str | None]] = []  # (tag, block class being captured)
        self._capture: str | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "link", "script", "img"):
                self.links.append(a[key])
        classes = (a.get("class") or "").split()
        block = next((c for c in classes if c.startswith("lab-")), None)
        if tag in ("br", "img", "meta", "link", "input", "hr"):
            return
        if block and self._capture is None:
            self._capture = block
            self._buffer = []
            self._stack.append((tag, block))
        else:
            self._stack.append((tag, None))

    def handle_endtag(self, tag):
        while self._stack:
            opened, block = self._stack.pop()
            if block is not None:
                self.blocks.setdefault(block, []).append("".join(self._buffer).strip("\n"))
                self._capture = None
            if opened == tag:
                break

    def handle_data(self, data):
        if self._capture is not None:
            self._buffer.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_strict_build_produces_every_page(site):
    for page in (
        "index.html",
        "chapter/index.html",
        "lab-2/index.html",
        "instructor/index.html",
        "drills/index.html",
        "troubleshooting/index.html",
        "reference/versions/index.html",
        "reference/log-schema/index.html",
        "reference/checkers/index.html",
        "architecture/index.html",
        "notebooks/offline/index.html",
        "notebooks/live/index.html",
    ):
        assert (site / page).is_file(), f"{page} missing from the built site"
    # Build code and unreplaced markers must never reach the published site.
    assert not (site / "hooks").exists(), "docs/hooks/ was copied into the site"
    for html in site.rglob("*.html"):
        assert "<!-- generated:" not in html.read_text(encoding="utf-8"), html


def test_lab_page_commands_are_the_engine_plan(site):
    """Every command on the page, in order, is one the engine runs (or asks the learner to
    type), and no other: the solution is `--solve`'s plan, the set-up is learner mode's."""
    page = parse(site / "lab-2" / "index.html")
    solve = plan(LAB, Options(solve=True))
    assert page.blocks.get("lab-command") == [pa.display for ps in solve for pa in ps.actions]
    setup = [pa.display for ps in plan(LAB) if ps.task for pa in ps.actions]
    assert page.blocks.get("lab-setup") == setup
    typed = [planned(a).display for s in LAB.steps if s.task for a in s.task.commands]
    assert page.blocks.get("lab-task") == typed

    fallbacks = [
        format_command(fb.argv, fb.env)
        for ps in solve
        for pa in ps.actions
        for fb in pa.action.fallback
    ]
    assert page.blocks.get("lab-fallback", []) == fallbacks
    check_all = [check_action(LAB, solve=False), check_action(LAB)]
    assert page.blocks.get("lab-check-all") == [format_command(a.argv, a.env) for a in check_all]


def test_lab_page_shows_objectives_times_and_tasks_and_hides_the_answers(site):
    html = (site / "lab-2" / "index.html").read_text(encoding="utf-8")
    text = " ".join(html.split())
    for step in LAB.steps:
        assert f"about {step.minutes} min" in text
        assert step.objective.replace("`", "")[:40] in text.replace("<code>", "").replace(
            "</code>", ""
        )
        if step.task:
            assert f'id="{step.anchor}-task"' in html
    # The reference answers are only inside collapsed <details> blocks.
    page = parse(site / "lab-2" / "index.html")
    assert all("$TRACE_ID" not in b for b in page.blocks.get("lab-task", []))
    solution = html.index("labs/solutions/lab2-queries.yaml")
    assert html.rfind("<details", 0, solution) > html.rfind("</details>", 0, solution)


def test_drills_page_is_the_drills_data(site):
    """The drills page shows each drill's break and fix commands, in order, and no others."""
    from labs.drills import DRILLS

    page = parse(site / "drills" / "index.html")
    assert page.blocks.get("lab-drill-break") == [
        planned(a).display for d in DRILLS for a in d.breaks
    ]
    assert page.blocks.get("lab-drill-fix") == [planned(a).display for d in DRILLS for a in d.fix]
    for drill in DRILLS:
        assert drill.anchor in page.ids


def test_instructor_guide_times_each_step_and_each_drill(site):
    from labs.drills import DRILLS

    text = " ".join((site / "instructor" / "index.html").read_text(encoding="utf-8").split())
    for step in LAB.steps:
        assert f"{step.minutes} min" in text
        for pitfall in step.task.pitfalls if step.task else ():
            assert pitfall.split(":")[0].replace("`", "")[:30] in text.replace(
                "<code>", ""
            ).replace("</code>", "")
    for drill in DRILLS:
        assert f"drills/#{drill.anchor}" in text
    assert f"about {sum(s.minutes for s in LAB.steps)} minutes hands-on" in text


def test_lab_page_shows_the_pinned_versions(site):
    """The versions of versions.toml appear in the page's commands (not only in prose)."""
    blocks = parse(site / "lab-2" / "index.html").blocks
    commands = "\n".join(blocks["lab-command"] + blocks["lab-task"])
    v = load_versions()
    assert v["kind"]["node_image"] in commands
    for name, chart in v["charts"].items():
        assert f"{chart['repo_name']}/{chart['chart']} --version {chart['version']}" in commands, (
            f"chart {name} {chart['version']} is not installed by any command on the lab page"
        )
    for image in v["images"].values():
        assert f"--tag {image}" in commands


def test_lab_page_has_an_anchor_per_step(site):
    ids = parse(site / "lab-2" / "index.html").ids
    for step in LAB.steps:
        assert step.anchor in ids
    assert {f"step-{n}" for n in range(6)} <= ids


def test_every_lab_step_links_the_chapter(site):
    hook = load_hook()
    missing = [s.id for s in LAB.steps if s.id not in hook.CHAPTER_SECTIONS]
    assert not missing, f"steps without a chapter section in CHAPTER_SECTIONS: {missing}"
    assert "chapter/#labels-are-the-index" in (site / "lab-2" / "index.html").read_text("utf-8")


def test_reference_pages_show_their_sources(site):
    versions = (site / "reference" / "versions" / "index.html").read_text(encoding="utf-8")
    v = load_versions()
    for value in (
        v["kind"]["version"],
        v["kubernetes"]["version"],
        *(t["version"] for t in v["tools"].values() if "version" in t),
        *(c["version"] for c in v["charts"].values()),
        *(c["repo_url"] for c in v["charts"].values()),
        *v["images"].values(),
    ):
        assert value in versions, f"{value} from versions.toml is not on the versions page"

    checkers = parse(site / "reference" / "checkers" / "index.html")
    hook = load_hook()
    text = (site / "reference" / "checkers" / "index.html").read_text(encoding="utf-8")
    for c in CHECKERS:
        assert hook.checker_anchor(c.id) in checkers.ids
        assert c.id in text

    from bookstore.logschema import load_schema

    schema_page = (site / "reference" / "log-schema" / "index.html").read_text(encoding="utf-8")
    for key in load_schema()["properties"]:
        assert f"<code>{key}</code>" in schema_page, f"schema key {key} missing from its page"


def test_catalogue_docs_links_land_on_a_section(site):
    """Each checker's hint links a page and an anchor that exist in the built site."""
    for c in CHECKERS:
        path, _, anchor = c.docs.partition("#")
        html = site / path.removesuffix(".md") / "index.html"
        assert html.is_file(), f"{c.id} links {c.docs}: no page {path}"
        assert anchor in parse(html).ids, f"{c.id} links {c.docs}: no #{anchor} on that page"


def _target(site: Path, page: Path, href: str) -> tuple[Path, str] | None:
    """The file and anchor a local href points to; None for external links."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:", "data:")):
        return None
    base = "/" + page.relative_to(site).as_posix()
    resolved = urlsplit(urljoin(base, href))
    path = unquote(resolved.path)
    target = site / path.lstrip("/")
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(resolved.fragment)


def test_every_internal_link_resolves(site):
    """Every href/src to a local page, asset or anchor in the built site points at something."""
    parsed: dict[Path, _Page] = {}

    def page_of(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = parse(path)
        return parsed[path]

    broken = []
    checked = 0
    for html in sorted(site.rglob("*.html")):
        for href in page_of(html).links:
            found = _target(site, html, href)
            if found is None:
                continue
            target, anchor = found
            checked += 1
            where = f"{html.relative_to(site)} -> {href}"
            if not target.is_file():
                broken.append(f"{where}: no file {target.relative_to(site)}")
            elif anchor and target.suffix == ".html" and anchor not in page_of(target).ids:
                broken.append(f"{where}: no #{anchor} in {target.relative_to(site)}")
    assert checked > 100, f"only {checked} local links found: is the parser still working?"
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_link_check_notices_a_broken_link(tmp_path):
    """The checker above can fail: a dangling page and a missing anchor are both reported."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="here">x</h2>', encoding="utf-8")
    page = tmp_path / "index.html"
    page.write_text("", encoding="utf-8")
    assert _target(tmp_path, page, "a/#here") == (tmp_path / "a" / "index.html", "here")
    target, anchor = _target(tmp_path, page, "a/#nowhere")
    assert anchor not in parse(target).ids
    target, _ = _target(tmp_path, page, "b/")
    assert not target.is_file()
    assert _target(tmp_path, page, "https://example.org/") is None


def test_unknown_generated_block_fails_the_build():
    from mkdocs.exceptions import PluginError

    hook = load_hook()

    class FakeFile:
        src_uri = "somewhere.md"

    class FakePage:
        file = FakeFile()

    with pytest.raises(PluginError, match="unknown generated block 'nope'"):
        hook.on_page_markdown("# x\n\n<!-- generated: nope -->\n", FakePage(), {}, None)
    rendered = hook.on_page_markdown("<!-- generated: checkers -->\n", FakePage(), {}, None)
    assert all(c.id in rendered for c in CHECKERS)


def test_relative_links_from_nested_pages():
    hook = load_hook()
    assert hook._relative("lab-2.md#step-1", "reference/checkers.md") == "../lab-2.md#step-1"
    assert hook._relative("chapter.md", "lab-2.md") == "chapter.md"


def _prose(html: str) -> str:
    """The page's text outside code blocks and scripts, where Markdown syntax must not survive."""
    import re

    html = re.sub(r"<(pre|script|style|code)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", html)


def test_no_raw_markdown_reaches_the_pages(site):
    """Admonitions, fences and attribute lists are all converted: none shows up as text."""
    leftovers = []
    for html in sorted(site.rglob("*.html")):
        text = _prose(html.read_text(encoding="utf-8"))
        for token in ("```", "!!! ", "??? ", "{#", "<!-- generated"):
            if token in text:
                leftovers.append(f"{html.relative_to(site)}: {token!r}")
    assert not leftovers, "raw Markdown in the built site:\n" + "\n".join(leftovers)


def test_screenshots_of_home_and_lab_show_a_styled_page(site, tmp_path):
    """Headless Chromium renders the home and lab pages with the theme: not blank, not unstyled."""
    spec = importlib.util.spec_from_file_location(
        "screenshot", REPO_ROOT / "scripts" / "screenshot.py"
    )
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    try:
        screenshot.find_chromium()
    except SystemExit as e:
        pytest.skip(f"no Chromium on this machine: {e}")
    from PIL import Image

    assert screenshot.main(["--site", str(site), "--out", str(tmp_path), "", "lab-2/"]) == 0
    for name in ("home", "lab-2"):
        image = Image.open(tmp_path / f"{name}.png").convert("RGB")
        width, height = image.size
        # The theme's indigo header bar: an unstyled page would be white at the top.
        r, g, b = image.getpixel((width // 2, 10))
        assert b > r + 40 and b > 120, f"{name}: header is {(r, g, b)}, the theme CSS did not load"
        # Text on the page: many distinct shades, and not one colour covering everything.
        body = image.crop((0, 120, width, height)).convert("L")
        histogram = body.histogram()
        assert max(histogram) < 0.97 * sum(histogram), f"{name}: the page body is blank"
        assert sum(1 for n in histogram if n) > 40, f"{name}: too few shades for rendered text"


def test_commands_named_in_the_docs_exist(site):
    """Every `nox -s SESSION` in the pages is a session, every `-- --option` of lab-2 an option."""
    import re

    noxfile = (REPO_ROOT / "noxfile.py").read_text(encoding="utf-8")
    sessions = set(re.findall(r'name="([a-z0-9-]+)"', noxfile))
    sessions |= set(re.findall(r"@nox\.session\(python=PYTHON\)\ndef ([a-z_]+)\(", noxfile))
    assert {"tests", "lab-2", "docs", "notebooks", "grade"} <= sessions, sessions
    usage = subprocess.run(
        [sys.executable, "-m", "labs", "run", "lab2", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    named, options = set(), set()
    for html in site.rglob("*.html"):
        text = _prose(html.read_text(encoding="utf-8")) + html.read_text(encoding="utf-8")
        named |= set(re.findall(r"nox -s ([a-z0-9_-]+)", text))
        options |= set(re.findall(r"nox -s lab-2 -- (--[a-z-]+)", text))
    assert named and options
    assert named <= sessions, f"the docs name nox sessions that do not exist: {named - sessions}"
    unknown = {o for o in options if o not in usage}
    assert not unknown, f"the docs show lab-2 options the engine does not have: {unknown}"
