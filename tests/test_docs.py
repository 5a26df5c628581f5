"""The course site: it builds strictly, the lab page is the engine's plan, every link lands.

The site is built once per session into a temporary folder with the same command as
`nox -s docs` (`mkdocs build --strict`), which also executes the offline notebook. The other
tests read the built HTML, so they check what a learner actually gets, not the Markdown.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from checks.catalogue import CHECKERS, LEARNER_CHECKERS
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


def _screenshot_module():
    spec = importlib.util.spec_from_file_location(
        "screenshot", REPO_ROOT / "scripts" / "screenshot.py"
    )
    screenshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshot)
    try:
        screenshot.find_chromium()
    except SystemExit as e:
        pytest.skip(f"no Chromium on this machine: {e}")
    return screenshot


def test_screenshots_of_home_and_lab_show_a_styled_page(site, tmp_path):
    """Headless Chromium renders the home and lab pages with the theme, at desktop and phone
    width: not blank, not unstyled."""
    screenshot = _screenshot_module()
    from PIL import Image

    assert screenshot.main(["--site", str(site), "--out", str(tmp_path), "", "lab-2/"]) == 0
    for name in ("home", "lab-2"):
        for width in (1280, 390):
            image = Image.open(tmp_path / f"{name}@{width}.png").convert("RGB")
            assert image.size[0] == width
            height = image.size[1]
            # The theme's indigo header bar: an unstyled page would be white at the top.
            r, g, b = image.getpixel((width // 2, 10))
            assert b > r + 40 and b > 120, f"{name}@{width}: header is {(r, g, b)}, no theme CSS"
            # Text on the page: many distinct shades, and not one colour covering everything.
            body = image.crop((0, 120, width, height)).convert("L")
            histogram = body.histogram()
            assert max(histogram) < 0.97 * sum(histogram), f"{name}@{width}: the body is blank"
            assert sum(1 for n in histogram if n) > 40, f"{name}@{width}: too few shades"


def test_diagrams_render_without_internet(site):
    """Every Mermaid diagram of the chapter is drawn by the site's own copy of Mermaid, in a
    browser that cannot resolve any host but the local server (scripts/screenshot.py)."""
    screenshot = _screenshot_module()
    fences = (REPO_ROOT / "docs" / "chapter.md").read_text(encoding="utf-8").count("```mermaid")
    assert fences >= 3
    server = screenshot.serve(site)
    try:
        dom = screenshot.dump_dom(
            screenshot.find_chromium(), f"http://127.0.0.1:{server.server_port}/chapter/"
        )
    finally:
        server.shutdown()
        server.server_close()
    # Material replaces each <pre class="mermaid"> by a <div class="mermaid"> holding the SVG
    # once Mermaid has run (mkdocs-material, components/content/mermaid); without Mermaid the
    # <pre> with the diagram's source stays.
    drawn = dom.count('<div class="mermaid">')
    assert drawn == fences, f"{drawn} of {fences} diagrams drawn offline"
    assert "subgraph" not in dom, "a diagram is still shown as its source code"


# -- the site works offline ------------------------------------------------------------------
class _Resources(HTMLParser):
    """Every URL a page makes the browser fetch by itself: scripts, styles, images, frames."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") and "canonical" not in (a.get("rel") or ""):
            self.urls.append(a["href"])
        if tag == "object" and a.get("data"):
            self.urls.append(a["data"])


def external_resources(html: str) -> list[str]:
    parser = _Resources()
    parser.feed(html)
    # data: URLs are inline (the notebook's figures); only a network scheme leaves the site.
    return [u for u in parser.urls if urlsplit(u).scheme not in ("", "data") or u[:2] == "//"]


def test_site_loads_nothing_from_other_hosts(site):
    """No page pulls a script, style, font or image from a CDN: the site works offline."""
    found = []
    for html in sorted(site.rglob("*.html")):
        for url in external_resources(html.read_text(encoding="utf-8")):
            found.append(f"{html.relative_to(site)}: {url}")
    for css in sorted(site.rglob("*.css")):
        for url in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", css.read_text("utf-8")):
            found.append(f"{css.relative_to(site)}: {url}")
    assert not found, "the built site loads resources from other hosts:\n" + "\n".join(found)


def test_external_resource_check_notices_a_cdn():
    page = (
        '<script src="https://unpkg.com/mermaid@11/dist/mermaid.min.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css">'
        '<script src="../assets/x.js"></script><a href="https://example.org/">fine</a>'
        '<img src="data:image/png;base64,iVBOR"><img src="http://example.org/a.png">'
    )
    assert external_resources(page) == [
        "https://unpkg.com/mermaid@11/dist/mermaid.min.js",
        "//fonts.googleapis.com/css",
        "http://example.org/a.png",
    ]


def test_pages_with_diagrams_load_the_vendored_mermaid_first(site):
    """The theme fetches Mermaid from a CDN unless `window.mermaid` exists when it runs, so our
    copy must be loaded before the theme's bundle on every page that draws a diagram."""
    pages = [p for p in site.rglob("*.html") if 'class="mermaid"' in p.read_text("utf-8")]
    assert any(p.parent.name == "chapter" for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        ours = re.search(r'<script src="([^"]*assets/vendor/mermaid/mermaid\.min\.js)"', text)
        bundle = re.search(r'<script src="[^"]*assets/javascripts/bundle\.', text)
        assert ours and bundle and ours.start() < bundle.start(), page.relative_to(site)
        target, _ = _target(site, page, ours.group(1))
        assert target.is_file(), f"{page.relative_to(site)} loads {ours.group(1)}: missing"


def test_vendored_mermaid_matches_its_pin_and_the_theme():
    """The committed copy is the npm package's file (scripts/vendor_mermaid.py), and the major
    version the theme is written for."""

    vendor = REPO_ROOT / "docs" / "assets" / "vendor" / "mermaid"
    pin = json.loads((vendor / "mermaid.json").read_text(encoding="utf-8"))
    data = (vendor / pin["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == pin["sha256"], (
        "mermaid.min.js is not the pinned file"
    )
    assert (vendor / "LICENSE").is_file()
    import material

    bundle = next(
        (Path(material.__file__).parent / "templates/assets/javascripts").glob("bundle.*.js")
    )
    wanted = re.search(r"mermaid@(\d+)/", bundle.read_text(encoding="utf-8"))
    assert wanted, "mkdocs-material no longer names a Mermaid version: recheck the vendoring"
    assert pin["version"].split(".")[0] == wanted.group(1), (
        f"vendored mermaid {pin['version']}, the theme expects major {wanted.group(1)}"
    )


# -- pages read well on a phone --------------------------------------------------------------
def test_options_never_break_at_a_hyphen():
    hook = load_hook()
    html = hook.on_page_content(
        "<p><code>nox -s lab-2 -- --dry-run</code></p><pre><code>a-b -- --c</code></pre>",
        None,
        None,
        None,
    )
    assert html == (
        '<p><code>nox <span class="nowrap">-s</span> <span class="nowrap">lab-2</span> '
        '<span class="nowrap">-- --dry-run</span></code></p><pre><code>a-b -- --c</code></pre>'
    )
    path = "/var/log/pods/&lt;namespace&gt;_&lt;pod&gt;_&lt;pod-uid&gt;/&lt;container&gt;/"
    assert hook.on_page_content(f"<code>{path}</code>", None, None, None) == f"<code>{path}</code>"
    css = (REPO_ROOT / "docs" / "assets" / "stylesheets" / "extra.css").read_text("utf-8")
    assert re.search(r"\.nowrap\s*\{\s*white-space:\s*nowrap", css)


def test_home_page_keeps_dry_run_in_one_piece(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    assert '<span class="nowrap">-- --dry-run</span>' in text


# -- the chapter -----------------------------------------------------------------------------
def _chapter_sections() -> list[tuple[str, str, str]]:
    """(anchor, title, body) of each `##` section of the chapter."""
    text = (REPO_ROOT / "docs" / "chapter.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.*?) \{#([a-z0-9-]+)\}\s*$", text, flags=re.M)
    return [(parts[i + 1], parts[i], parts[i + 2]) for i in range(1, len(parts), 3)]


NOT_REVIEWED = {"production-checklist", "test-your-understanding", "hands-on-extension",
                "further-reading"}  # fmt: skip


def test_every_chapter_section_ends_with_a_question_and_its_answer():
    sections = _chapter_sections()
    assert len(sections) > 15
    missing = []
    for anchor, title, body in sections:
        if anchor in NOT_REVIEWED:
            continue
        question = re.search(r'^\?\?\? question "(.+)"\n((?:    .*\n|\n)+)', body, flags=re.M)
        if not question or len(question.group(2).split()) < 12:
            missing.append(f"{title} (#{anchor})")
    assert not missing, "sections without a check question and a real answer:\n" + "\n".join(
        missing
    )


def test_chapter_reading_time_matches_its_length():
    """The stated reading time is what 150 to 250 words a minute gives for the chapter's words."""
    text = (REPO_ROOT / "docs" / "chapter.md").read_text(encoding="utf-8")
    stated = re.search(r"About (\d+) minutes to read", text)
    assert stated, "the chapter no longer states its reading time"
    words = len(text.split())
    minutes = int(stated.group(1))
    assert words / 250 <= minutes <= words / 150, f"{words} words stated as {minutes} minutes"
    index = (REPO_ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"About {minutes} minutes." in index, "the home page states another reading time"


def test_label_set_is_the_same_everywhere():
    """The chapter, troubleshooting and the LogQL reference name the same labels."""
    for page in ("chapter.md", "troubleshooting.md", "reference/logql.md", "challenge.md"):
        text = (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
        for label in ("namespace", "pod", "container", "app", "stream", "service_name"):
            assert f"`{label}`" in text, f"{page} does not name the label {label}"


# -- reference pages -------------------------------------------------------------------------
def test_log_schema_page_explains_every_field(site):
    from bookstore.logschema import load_schema

    class Rows(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.rows: list[list[str]] = []
            self._cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self._cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self._cell is not None:
                self.rows[-1].append("".join(self._cell).strip())
                self._cell = None

        def handle_data(self, data):
            if self._cell is not None:
                self._cell.append(data)

    rows = Rows()
    rows.feed((site / "reference" / "log-schema" / "index.html").read_text(encoding="utf-8"))
    assert ["Key", "Meaning", "Type", "Always", "Constraints"] in rows.rows
    fields = {r[0]: r[1] for r in rows.rows if len(r) == 5 and r[0] != "Key"}
    assert set(fields) == set(load_schema()["properties"])
    assert not [k for k, meaning in fields.items() if not meaning], "fields with no meaning"


def test_a_schema_field_without_meaning_fails_the_build(tmp_path, monkeypatch):

    from mkdocs.exceptions import PluginError

    import bookstore.logschema

    schema = {"properties": {"time": {"type": "string", "description": "when"}, "x": {}}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    monkeypatch.setattr(bookstore.logschema, "SCHEMA_PATH", path)
    with pytest.raises(PluginError, match="no description for x"):
        load_hook().render_log_schema("reference/log-schema.md")


def test_checker_links_read_as_section_titles(site):
    text = (site / "reference" / "checkers" / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"Learn it: <a [^>]*>(.*?)</a>", text)
    assert len(links) == len(CHECKERS) + len(LEARNER_CHECKERS)  # the page lists both
    for link in links:
        label = re.sub(r"<[^>]+>", "", link)
        assert ".md" not in label and "#" not in label, f"link text is a path: {label}"
    hook = load_hook()
    assert hook.section_title("chapter.md#alerting") == "Alerting and metrics from logs"
    assert hook.section_title("lab-2.md#step-0").startswith("Lab 2, step 0: ")
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="no heading"):
        hook.section_title("chapter.md#no-such-section")


def test_maintainers_pages_are_not_in_the_learners_reference():
    """The architecture page is for people changing the project, not for learners."""
    lines = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  - Reference:")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("      "):
            break
        block.append(line)
    assert block and not any("architecture.md" in line for line in block), block
    assert any("Maintainers" in line for line in lines)


def test_executed_notebook_is_published_and_linked(site):

    executed = site / "notebooks" / "executed" / "offline.ipynb"
    assert executed.is_file(), "the build did not publish the executed offline notebook"
    nb = json.loads(executed.read_text(encoding="utf-8"))
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    page = parse(site / "notebooks" / "index.html")
    assert "executed/offline.ipynb" in page.links


def nox_sessions() -> set[str]:
    """The session names of noxfile.py: each `@nox.session`-decorated function, by its `name=`
    or else by the function's name (read with ast, whatever other arguments the decorator has)."""
    tree = ast.parse((REPO_ROOT / "noxfile.py").read_text(encoding="utf-8"))
    names = set()
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for deco in fn.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call else deco
            if ast.unparse(target) != "nox.session":
                continue
            given = [k.value.value for k in (call.keywords if call else []) if k.arg == "name"]
            names.add(given[0] if given else fn.name)
    return names


def test_commands_named_in_the_docs_exist(site):
    """Every `nox -s SESSION` in the pages is a session, every `-- --option` of lab-2 an option."""

    sessions = nox_sessions()
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
