"""The services' configuration, from the environment (a ConfigMap in the cluster).

Every value is checked at start-up; a bad one stops the process with an ERROR line that names
the variable, the value and what is accepted, instead of a surprise later.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bookstore import faults, logs, redaction, sampling

DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = "/tmp/bookstore"
DEFAULT_CATALOG_URL = "http://catalog"


class SettingsError(ValueError):
    """An environment variable with a value the services cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    log_format: str = "json"  # LOG_FORMAT: json (the contract) or text
    log_sample_rate: float = 1.0
    fault_rate: float = 0.0
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    catalog_url: str = DEFAULT_CATALOG_URL
    # Seconds uvicorn lets in-flight requests finish after SIGTERM (below Kubernetes' 30 s grace).
    shutdown_timeout: float = 20.0
    # Seconds orders waits for catalog before answering 503.
    catalog_timeout: float = 2.0
    # Seconds a client has to send a request head, and then its body (408 and close after).
    read_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            return cls(
                host=env.get("HOST", "0.0.0.0"),
                port=_port(env.get("PORT")),
                log_level=logs.parse_level(env.get("LOG_LEVEL")),
                log_format=logs.parse_format(env.get("LOG_FORMAT")),
                log_sample_rate=sampling.parse_rate(env.get("LOG_SAMPLE_RATE")),
                fault_rate=faults.parse_rate(env.get("FAULT_RATE")),
                data_dir=Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR),
                catalog_url=_url(env.get("CATALOG_URL") or DEFAULT_CATALOG_URL),
                catalog_timeout=_seconds(env.get("CATALOG_TIMEOUT"), "CATALOG_TIMEOUT", 2.0),
                read_timeout=_seconds(env.get("READ_TIMEOUT"), "READ_TIMEOUT", 10.0),
            )
        except ValueError as exc:
            raise SettingsError(str(exc)) from None


def prepare_data_dir(path: Path) -> None:
    """Create DATA_DIR if needed and prove it is writable, or raise SettingsError saying so.

    In the cluster the root filesystem is read-only: DATA_DIR must be on the emptyDir/tmpfs
    mounted at /tmp. Checked before the server starts, so the failure is one clear line.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise SettingsError(
            f"DATA_DIR={str(path)!r} is not a writable directory ({exc.strerror or exc}); "
            "point it at a writable volume such as /tmp/bookstore"
        ) from None


def _port(value: str | None) -> int:
    if value is None or value.strip() == "":
        return DEFAULT_PORT
    if not value.strip().isdigit() or not 0 <= int(value) <= 65535:
        raise ValueError(f"PORT={value!r} is not a TCP port number (0-65535; default 8080)")
    return int(value)


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        # The value may carry credentials (user:password@host): never print them.
        shown = redaction.mask_userinfo(value)
        raise ValueError(f"CATALOG_URL={shown!r} must start with http:// or https://")
    return value.rstrip("/")


def _seconds(value: str | None, name: str, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    if not 0 < seconds <= 300:
        raise ValueError(f"{name}={value!r} must be between 0 and 300 seconds")
    return seconds
