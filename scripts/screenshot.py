"""Screenshot the built site in headless Chromium, at desktop and phone widths, to see that
pages render (styled, not blank, no raw Markdown, diagrams drawn):
`python scripts/screenshot.py [--site DIR] [--out DIR] [--build] [--all] [PAGE ...]`.

The site is served from 127.0.0.1 on a free port by a throw-away HTTP server (file:// URLs would
break the theme's scripts), and each page is captured by a fresh headless Chromium with its own
profile, no background networking, and every host name except 127.0.0.1 unresolvable: a page
that only works with internet access shows up broken here. PAGE is a site path such as `lab-2/`;
`--all` takes every page of the built site; the default is the home page and the lab page. Each
page gives one PNG per width, `<name>@<width>.png`. Screenshots are for people to look at; they
are not committed.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PAGES = ("", "lab-2/")
# A desktop browser window, and a phone (390 CSS pixels is a common current phone width).
DEFAULT_SIZES = ("1280,1600", "390,1800")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a quiet, reproducible, offline capture: no GPU, no sandbox (containers run it as
# root), no first-run UI, nothing fetched in the background, and no name resolution except the
# local server's, so a page that needs a CDN renders as it would without internet.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def find_chromium() -> str:
    """The Chromium binary: $CHROMIUM, else the first known name on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        "no Chromium found (looked for $CHROMIUM and " + ", ".join(CHROMIUM_CANDIDATES) + "). "
        "Install one, e.g. `apt-get install chromium`, or set CHROMIUM=/path/to/chrome."
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(site: Path) -> ThreadingHTTPServer:
    """Serve `site` on 127.0.0.1 (a free port) from a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run_chromium(chromium: str, args: list[str], url: str, timeout: float):
    with tempfile.TemporaryDirectory(prefix="screenshot-profile-") as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",  # let the theme's scripts (and Mermaid) run first
            *args,
            url,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def screenshot(chromium: str, url: str, png: Path, size: str, timeout: float) -> None:
    """One page into one PNG; a Chromium failure is an error that shows its output."""
    result = _run_chromium(chromium, [f"--window-size={size}", f"--screenshot={png}"], url, timeout)
    if result.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise SystemExit(
            f"Chromium could not capture {url} (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )


def dump_dom(chromium: str, url: str, timeout: float = 90.0, size: str = "1280,1600") -> str:
    """The page's DOM after its scripts ran (what a reader's browser ends up showing)."""
    result = _run_chromium(chromium, [f"--window-size={size}", "--dump-dom"], url, timeout)
    if result.returncode != 0:
        raise SystemExit(
            f"Chromium could not load {url} (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )
    return result.stdout


def site_pages(site: Path) -> list[str]:
    """Every page of a built site as a site path ("" for the home page), 404 page excluded."""
    pages = []
    for html in sorted(site.rglob("index.html")):
        rel = html.parent.relative_to(site).as_posix()
        pages.append("" if rel == "." else rel + "/")
    return pages


def png_name(page: str, size: str) -> str:
    name = page.strip("/").replace("/", "_") or "home"
    return f"{name}@{size.split(',')[0]}.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="site paths (default: home and lab-2/)")
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "site", help="built site")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "site" / "_screenshots")
    parser.add_argument("--build", action="store_true", help="run `mkdocs build --strict` first")
    parser.add_argument("--all", action="store_true", help="every page of the built site")
    parser.add_argument(
        "--size",
        action="append",
        help="window size WIDTH,HEIGHT; repeat for several (default: 1280,1600 and 390,1800)",
    )
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per capture")
    args = parser.parse_args(argv)

    if args.build:
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(args.site)],
            cwd=REPO_ROOT,
            check=True,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        )
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"no built site in {args.site}: run `nox -s docs` or pass --build")
    pages = site_pages(args.site) if args.all else (args.pages or list(DEFAULT_PAGES))
    sizes = args.size or list(DEFAULT_SIZES)
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    server = serve(args.site)
    try:
        for page in pages:
            url = f"http://127.0.0.1:{server.server_port}/{page.lstrip('/')}"
            for size in sizes:
                png = args.out / png_name(page, size)
                screenshot(chromium, url, png, size, args.timeout)
                print(f"{url} @ {size} -> {png} ({png.stat().st_size} bytes)")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
