"""Paths and knobs that both the lab engine and the checkers read.

The checkers grade any cluster, with or without the lab engine, so they never import `labs`;
whatever both sides must agree on (where the lab keeps its files, which kubeconfig is the
default, how deadlines scale on a slow machine) lives here.
"""

from __future__ import annotations

import math

KUBECONFIG_ENV = "LAB_KUBECONFIG"
LAB_DIR = ".lab"  # the lab's own files (kubeconfig, state, artifacts), under the repository root
DEFAULT_KUBECONFIG = f"{LAB_DIR}/kubeconfig"
TIMEOUT_SCALE_ENV = "LAB_TIMEOUT_SCALE"


def parse_timeout_scale(text: str) -> float:
    """LAB_TIMEOUT_SCALE as a number; the engine and the checkers both read it through here.

    NaN and infinity are refused too: with them a deadline never passes (or cannot be rounded).
    """
    try:
        scale = float(text)
    except ValueError:
        scale = -1.0
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(
            f"{TIMEOUT_SCALE_ENV}={text!r} is not a positive number; "
            f"use e.g. {TIMEOUT_SCALE_ENV}=2 to double every deadline."
        )
    return scale
