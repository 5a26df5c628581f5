"""Vendor Mermaid into the site: `python scripts/vendor_mermaid.py [VERSION]`.

The site must render its diagrams without internet access, so it serves its own copy of
Mermaid instead of the CDN copy the theme would fetch. This script takes that copy from the npm
package (`npm pack`, which checks the tarball against the registry's integrity hash), keeps only
`dist/mermaid.min.js` and the licence, and records the version and the file's SHA-256 in
`docs/assets/vendor/mermaid/mermaid.json`. tests/test_docs.py checks the file against that
record, so a hand-edited or truncated copy fails the tests.

Material for MkDocs loads Mermaid only when `window.mermaid` is undefined, and it is written
for one major version of it (11 for mkdocs-material 9.x): keep the same major here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENDOR_DIR = REPO_ROOT / "docs" / "assets" / "vendor" / "mermaid"
PIN_FILE = VENDOR_DIR / "mermaid.json"
SCRIPT = "mermaid.min.js"
DEFAULT_VERSION = "11.17.2"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor(version: str) -> dict:
    """Fetch mermaid@version with npm and copy its browser bundle and licence into the docs."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to vendor Mermaid (apt-get install npm), and was not found")
    with tempfile.TemporaryDirectory(prefix="mermaid-") as tmp:
        packed = subprocess.run(
            [npm, "pack", f"mermaid@{version}", "--json", "--pack-destination", tmp],
            capture_output=True,
            text=True,
        )
        if packed.returncode != 0:
            raise SystemExit(f"npm pack mermaid@{version} failed:\n{packed.stderr[-2000:]}")
        info = json.loads(packed.stdout)[0]
        with tarfile.open(Path(tmp) / info["filename"]) as tar:
            wanted = {f"package/dist/{SCRIPT}": SCRIPT, "package/LICENSE": "LICENSE"}
            VENDOR_DIR.mkdir(parents=True, exist_ok=True)
            for member, name in wanted.items():
                source = tar.extractfile(member)
                if source is None:
                    raise SystemExit(f"mermaid@{version} has no {member}")
                (VENDOR_DIR / name).write_bytes(source.read())
    pin = {
        "package": "mermaid",
        "version": info["version"],
        "npm_integrity": info["integrity"],
        "file": SCRIPT,
        "sha256": sha256(VENDOR_DIR / SCRIPT),
        "licence": "MIT (see LICENSE beside this file)",
    }
    PIN_FILE.write_text(json.dumps(pin, indent=2) + "\n", encoding="utf-8")
    return pin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?", default=DEFAULT_VERSION, help="mermaid version")
    args = parser.parse_args(argv)
    pin = vendor(args.version)
    print(f"mermaid {pin['version']} -> {VENDOR_DIR / SCRIPT} (sha256 {pin['sha256']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
