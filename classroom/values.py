"""Helm values of the shared logging stack in class mode, derived from the laptop lab's files.

The Loki overlay is a file (`manifests/class/loki-values.yaml`, layered over the lab's values);
only the tenants list is per class, written at `up` time outside the repository. The Alloy
pipeline is the lab's own pipeline with two additions, made here so the two never drift apart
(grafana/alloy v1.18.1 docs, loki.process `stage.match` + `stage.tenant`, loki.write
`endpoint.tenant_id`):
- inside `loki.process`, before its `forward_to`: a `stage.match` on the class's namespaces that
  sets the tenant from the `namespace` label, so each learner's lines land in their own tenant;
- inside `loki.write`'s endpoint, after its `url`: a default `tenant_id` for every other pod
  (with auth on, Loki refuses a push without a tenant).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from classroom.roster import NAMESPACE_PREFIX, Learner
from labconfig.versions import REPO_ROOT, load_versions

PLATFORM_TENANT = "platform"
LOKI_OVERLAY = Path("manifests/class/loki-values.yaml")
_FORWARD = re.compile(r"^(?P<indent>[ \t]*)forward_to\s*=\s*\[loki\.write\.", re.M)
_URL = re.compile(r"^(?P<indent>[ \t]*)url\s*=\s*\"[^\"]*/loki/api/v1/push\"[^\n]*\n", re.M)


class PipelineShapeError(ValueError):
    """The lab's pipeline no longer has the places the class additions go."""


def tenant_pipeline(content: str) -> str:
    """The lab's Alloy pipeline with the per-learner tenant stage and the default tenant."""
    forwards = list(_FORWARD.finditer(content))
    urls = list(_URL.finditer(content))
    if len(forwards) != 1 or len(urls) != 1:
        raise PipelineShapeError(
            f"expected one `forward_to = [loki.write...]` and one push `url` in the lab's Alloy "
            f"pipeline, found {len(forwards)} and {len(urls)}; update classroom.values with it."
        )
    ind = forwards[0]["indent"]
    stage = (
        f"{ind}// Class mode: a learner's lines go to their own tenant, named as their namespace.\n"
        f"{ind}stage.match {{\n"
        f'{ind}  selector = "{{namespace=~\\"{NAMESPACE_PREFIX}.+\\"}}"\n'
        f"{ind}  stage.tenant {{\n"
        f'{ind}    label = "namespace"\n'
        f"{ind}  }}\n"
        f"{ind}}}\n\n"
    )
    url_ind = urls[0]["indent"]
    default = (
        f"{url_ind}// Auth is on: every other pod pushes to this tenant.\n"
        f'{url_ind}tenant_id = "{PLATFORM_TENANT}"\n'
    )
    cut_f, cut_u = forwards[0].start(), urls[0].end()
    if cut_f < cut_u:
        return content[:cut_f] + stage + content[cut_f:cut_u] + default + content[cut_u:]
    return content[:cut_u] + default + content[cut_u:cut_f] + stage + content[cut_f:]


def alloy_overlay(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Values layered over the lab's Alloy values: only the pipeline changes."""
    versions = load_versions(root / "versions.toml")
    lab_values = yaml.safe_load((root / versions["charts"]["alloy"]["values"]).read_text())
    content = lab_values["alloy"]["configMap"]["content"]
    return {"alloy": {"configMap": {"content": tenant_pipeline(content)}}}


def tenants_values(learners: list[Learner], passwords: dict[str, str]) -> dict[str, Any]:
    """`loki.tenants` for the chart's gateway: one user per learner, named like their tenant."""
    return {
        "loki": {
            "tenants": [{"name": lrn.tenant, "password": passwords[lrn.id]} for lrn in learners]
        }
    }


def new_passwords(learners: list[Learner], known: dict[str, str]) -> dict[str, str]:
    """Keep every password already handed out; make one for each new learner."""
    return {lrn.id: known.get(lrn.id) or secrets.token_urlsafe(18) for lrn in learners}
