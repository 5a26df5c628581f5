"""Screenshot the built site in headless Chromium, to see that pages render (not blank, not raw
Markdown): `python scripts/screenshot.py [--site DIR] [--out DIR] [--build] [PAGE ...]`.

The site is served from 127.0.0.1 on a free port by a throw-away HTTP server (file:// URLs would
break the theme's scripts), and each page is captured by a fresh headless Chromium with its own
profile and no background networking. PAGE is a site path such as `lab-2/`; the default is the
home page and the lab page. Screenshots are for people to look at; they are not committed.
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
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a quiet, reproducible capture: no GPU, no sandbox (containers run it as root), no
# first-run UI, and nothing fetched in the background.
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


def screenshot(chromium: str, url: str, png: Path, size: str, timeout: float) -> None:
    """One page into one PNG; a Chromium failure is an error that shows its output."""
    with tempfile.TemporaryDirectory(prefix="screenshot-profile-") as profile:
        cmd = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            "--virtual-time-budget=5000",  # let the theme's scripts run before the capture
            f"--screenshot={png}",
            url,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise SystemExit(
            f"Chromium could not capture {url} (exit {result.returncode}):\n{result.stderr[-2000:]}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=list(DEFAULT_PAGES), help="site paths")
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "site", help="built site")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "site" / "_screenshots")
    parser.add_argument("--build", action="store_true", help="run `mkdocs build --strict` first")
    parser.add_argument("--size", default="1280,1600", help="window size WIDTH,HEIGHT")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per page")
    args = parser.parse_args(argv)

    if args.build:
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(args.site)],
            cwd=REPO_ROOT,
            check=True,
        )
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"no built site in {args.site}: run `nox -s docs` or pass --build")
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    server = serve(args.site)
    try:
        for page in args.pages:
            url = f"http://127.0.0.1:{server.server_port}/{page.lstrip('/')}"
            name = page.strip("/").replace("/", "_") or "home"
            png = args.out / f"{name}.png"
            screenshot(chromium, url, png, args.size, args.timeout)
            print(f"{url} -> {png} ({png.stat().st_size} bytes)")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
