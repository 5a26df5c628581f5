"""The pinned versions of the lab, read from `versions.toml` at the repository root.

One file holds every version so that the engine, the manifests tests and the docs cannot
disagree; this module is the only reader.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS_FILE = REPO_ROOT / "versions.toml"


@cache
def load_versions(path: Path = VERSIONS_FILE) -> dict[str, Any]:
    """Parse `versions.toml`; a missing or broken file is an error that names the file."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SystemExit(f"{path} is missing: it pins every version the lab uses.") from None
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"{path} is not valid TOML: {e}") from None
