"""A live proof that learners are isolated, run with the learners' own credentials.

For each ordered pair of learners (A, B) it tries what A must not be able to do: read B's pods
and logs, read a secret, relabel A's own namespace (to relax Pod Security), read B's Loki
tenant with A's password (with B's tenant forged in `X-Scope-OrgID`, which the gateway must
replace) and, given the shared Grafana's address, see more than A's own data source there.
Every attempt must be refused (HTTP 401/403) or come back empty; anything else is a breach,
reported with what came back. The class workflow runs it after `up` and `kubeconfigs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from classroom.roster import Learner


@dataclass(frozen=True)
class Probe:
    learner: str
    what: str
    ok: bool
    detail: str


def _refused(response: httpx.Response) -> bool:
    return response.status_code in (401, 403)


def kube_probes(me: Learner, other: Learner, api: httpx.Client) -> list[Probe]:
    """A's API client against B's namespace and against the guards of A's own namespace."""
    attempts = [
        (f"list pods in {other.namespace}", "GET", f"/api/v1/namespaces/{other.namespace}/pods", None),  # noqa: E501
        (f"read secrets in {me.namespace}", "GET", f"/api/v1/namespaces/{me.namespace}/secrets", None),  # noqa: E501
        (f"relabel namespace {me.namespace}", "PATCH", f"/api/v1/namespaces/{me.namespace}",
         {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}),
    ]  # fmt: skip
    probes = []
    for what, method, path, body in attempts:
        headers = {"Content-Type": "application/merge-patch+json"} if body else {}
        try:
            response = api.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as e:
            probes.append(Probe(me.id, what, False, f"no answer from the API server ({e})"))
            continue
        detail = f"HTTP {response.status_code}"
        probes.append(Probe(me.id, what, _refused(response), detail))
    return probes


def loki_probes(
    me: Learner, password: str, other: Learner, gateway: httpx.Client, now: Callable = time.time
) -> list[Probe]:
    """A's gateway credentials asking for B's lines, with and without a forged tenant header."""
    end = int(now() * 1e9)
    params = {
        "query": f'{{namespace="{other.namespace}"}}',
        "start": str(end - 3600 * 10**9),
        "end": str(end),
        "limit": "10",
    }
    probes = []
    for what, headers, auth in (
        (f"read tenant {other.tenant} (forged X-Scope-OrgID)",
         {"X-Scope-OrgID": other.tenant}, (me.tenant, password)),
        (f"read tenant {other.tenant} with a wrong password", {}, (other.tenant, password + "x")),
    ):  # fmt: skip
        try:
            response = gateway.get(
                "/loki/api/v1/query_range", params=params, headers=headers, auth=auth
            )
        except httpx.HTTPError as e:
            probes.append(Probe(me.id, what, False, f"no answer from the gateway ({e})"))
            continue
        if _refused(response):
            probes.append(Probe(me.id, what, True, f"HTTP {response.status_code}"))
            continue
        if response.status_code != 200:
            probes.append(Probe(me.id, what, False, f"unexpected HTTP {response.status_code}"))
            continue
        streams = (response.json().get("data") or {}).get("result") or []
        lines = sum(len(s.get("values") or []) for s in streams)
        probes.append(Probe(me.id, what, lines == 0, f"{lines} line(s) of {other.tenant} returned"))
    return probes


def grafana_probes(
    me: Learner, password: str, other: Learner, grafana: httpx.Client
) -> list[Probe]:
    """A signed in to the shared Grafana: A's organisation holds A's data source only, and A
    can neither look up B's organisation nor act in the instructor's (which holds every
    learner's data source)."""
    auth = (me.tenant, password)
    probes = []
    try:
        own = grafana.get("/api/datasources", auth=auth)
        lookup = grafana.get(f"/api/orgs/name/{other.tenant}", auth=auth)
        main_org = grafana.get("/api/datasources", auth=auth, headers={"X-Grafana-Org-Id": "1"})
    except httpx.HTTPError as e:
        return [Probe(me.id, "sign in to Grafana", False, f"no answer from Grafana ({e})")]
    if own.status_code != 200:
        detail = f"HTTP {own.status_code}: the learner cannot use their own Grafana login"
        probes.append(Probe(me.id, "list own data sources", False, detail))
    else:
        users = sorted({str(s.get("basicAuthUser")) for s in own.json()})
        ok = users == [me.tenant]
        probes.append(Probe(me.id, "list own data sources", ok, f"they sign in as {users}"))
    probes.append(Probe(me.id, f"look up organisation {other.tenant}", _refused(lookup),
                        f"HTTP {lookup.status_code}"))  # fmt: skip
    probes.append(Probe(me.id, "act in the instructor's organisation", _refused(main_org),
                        f"HTTP {main_org.status_code}"))  # fmt: skip
    return probes
