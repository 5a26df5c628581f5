"""One Grafana organisation per learner: run inside the cluster by `class up`, never on a laptop.

`class up` mounts this file in a Job in the logging namespace and runs it with the Python of the
bookstore image (standard library only: the image holds nothing else of this repository). It
talks to Grafana's HTTP API as the chart's admin user, from inside the cluster, because the API
server's service proxy drops the Authorization header that Grafana's admin API needs.

For each learner of the plan (`{"gateway_url": ..., "learners": [{"login", "password"}]}`):
- an organisation named like their namespace (`lab2-<id>`), with the admin as its Admin;
- a Grafana user of the same login and their Loki password, an Editor (the lowest role that
  may use Explore) of that organisation only: taken out of any other (the main one holds every
  learner's data source);
- in it, a Loki data source `Loki` (uid `loki`, as on a laptop) that queries the Loki gateway
  with the learner's own basic auth, so the gateway sets their tenant. Editors query data
  sources but cannot change them (an organisation Admin can), and learners are never Admins;
- in the main organisation (the instructor's), a data source `Loki lab2-<id>` per learner.

Running it again changes nothing but passwords that changed. Every learner is reported on one
line; the exit status is 1 when any learner failed (the others are still done).
Environment: GRAFANA_URL, GRAFANA_ADMIN_USER, GRAFANA_ADMIN_PASSWORD; argument: the plan file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MAIN_ORG = 1
LEARNER_ROLE = "Editor"
DATASOURCE_UID = "loki"
READY_SECONDS = 180
_MAX_UID = 40  # Grafana refuses longer data source uids


class GrafanaError(RuntimeError):
    """Grafana answered something this setup cannot go on from."""


class Grafana:
    def __init__(self, url: str, user: str, password: str, timeout: float = 30) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.auth = f"Basic {token}"
        self.admin = user
        self.timeout = timeout

    def call(
        self, method: str, path: str, body: Any = None, org: int | None = None, auth: str = ""
    ) -> tuple[int, Any]:
        """(HTTP status, JSON body) of one API call; `org` acts in that organisation, `auth`
        signs in as someone else than the admin."""
        headers = {"Authorization": auth or self.auth, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if org is not None:
            headers["X-Grafana-Org-Id"] = str(org)
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as e:
            return e.code, _json(e.read())

    def expect(self, method: str, path: str, body: Any = None, org: int | None = None) -> Any:
        status, answer = self.call(method, path, body, org)
        if status != 200:
            raise GrafanaError(f"{method} {path}: HTTP {status}: {_message(answer)}")
        return answer

    def wait_ready(self, seconds: float = READY_SECONDS) -> None:
        """Grafana may still be starting when the Job runs: wait for /api/health."""
        deadline = time.monotonic() + seconds
        problem = "no answer"
        while time.monotonic() < deadline:
            try:
                status, answer = self.call("GET", "/api/health")
                if status == 200:
                    return
                problem = f"HTTP {status}: {_message(answer)}"
            except OSError as e:
                problem = str(e)
            time.sleep(2)
        raise GrafanaError(f"Grafana at {self.url} not ready after {seconds:.0f} s ({problem})")

    # -- one piece each; every one can run again ------------------------------------------------
    def org(self, name: str) -> int:
        status, answer = self.call("GET", "/api/orgs/name/" + urllib.parse.quote(name, safe=""))
        if status == 200:
            return int(answer["id"])
        if status != 404:
            raise GrafanaError(f"looking up organisation {name}: HTTP {status}: {_message(answer)}")
        return int(self.expect("POST", "/api/orgs", {"name": name})["orgId"])

    def user(self, login: str, password: str, org: int) -> int:
        query = urllib.parse.urlencode({"loginOrEmail": login})
        status, answer = self.call("GET", f"/api/users/lookup?{query}")
        if status == 200:
            user_id = int(answer["id"])
            if not self.signs_in(login, password):
                self.expect("PUT", f"/api/admin/users/{user_id}/password", {"password": password})
            return user_id
        if status != 404:
            raise GrafanaError(f"looking up user {login}: HTTP {status}: {_message(answer)}")
        body = {"name": login, "login": login, "password": password, "OrgId": org}
        return int(self.expect("POST", "/api/admin/users", body)["id"])

    def signs_in(self, login: str, password: str) -> bool:
        """Whether `login` already has `password`. Setting it anyway would sign the learner out
        everywhere (Grafana revokes a user's sessions when an admin sets their password), at
        every run of the Job."""
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        return self.call("GET", "/api/user", auth=f"Basic {token}")[0] == 200

    def member(self, org: int, login: str, user_id: int | None, role: str) -> None:
        """`login` in `org` with exactly `role` (added, or its role set if already there)."""
        body = {"loginOrEmail": login, "role": role}
        status, answer = self.call("POST", f"/api/orgs/{org}/users", body)
        if status == 200:
            return
        if status != 409:  # 409: already a member
            raise GrafanaError(f"adding {login} to org {org}: HTTP {status}: {_message(answer)}")
        user_id = user_id if user_id is not None else int(answer.get("userId", 0))
        self.expect("PATCH", f"/api/orgs/{org}/users/{user_id}", {"role": role})

    def leave_other_orgs(self, user_id: int, keep: int) -> None:
        """The user in no organisation but `keep`: not the main one (every learner's data
        source is there), nor one a renamed account was added to on an earlier run."""
        for membership in self.expect("GET", f"/api/users/{user_id}/orgs"):
            org = int(membership["orgId"])
            if org != keep:
                self.expect("DELETE", f"/api/orgs/{org}/users/{user_id}")

    def datasource(self, org: int, uid: str, fields: dict[str, Any]) -> None:
        body = {"uid": uid, "type": "loki", "access": "proxy", **fields}
        status, answer = self.call("GET", f"/api/datasources/uid/{uid}", org=org)
        if status == 200:
            self.expect("PUT", f"/api/datasources/uid/{uid}", {**body, "id": answer["id"]}, org)
        elif status == 404:
            self.expect("POST", "/api/datasources", body, org)
        else:
            raise GrafanaError(f"data source {uid} in org {org}: HTTP {status}: {_message(answer)}")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"message": raw[:200].decode("utf-8", "replace")}


def _message(answer: Any) -> str:
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"])
    return str(answer)[:200]


def instructor_uid(login: str) -> str:
    """`loki-<login>` in the main organisation, hashed when Grafana's 40 characters are too few."""
    uid = f"loki-{login}"
    if len(uid) <= _MAX_UID:
        return uid
    return "loki-" + hashlib.sha256(login.encode()).hexdigest()[:16]


def gateway_source(name: str, gateway_url: str, login: str, password: str) -> dict[str, Any]:
    """A Loki data source that reaches the gateway as `login`: the gateway sets the tenant."""
    return {
        "name": name,
        "url": gateway_url,
        "basicAuth": True,
        "basicAuthUser": login,
        "secureJsonData": {"basicAuthPassword": password},
    }


def set_up(grafana: Grafana, plan: dict[str, Any]) -> list[str]:
    """Every learner of the plan; returns the learners that failed (each reported on stdout)."""
    failed = []
    gateway = plan["gateway_url"]
    for learner in plan["learners"]:
        login, password = learner["login"], learner["password"]
        try:
            org = grafana.org(login)
            grafana.member(org, grafana.admin, None, "Admin")  # to act in it (its creator is)
            user_id = grafana.user(login, password, org)
            grafana.member(org, login, user_id, LEARNER_ROLE)
            grafana.leave_other_orgs(user_id, keep=org)
            own = {**gateway_source("Loki", gateway, login, password), "isDefault": True}
            grafana.datasource(org, DATASOURCE_UID, own)
            mine = gateway_source(f"Loki {login}", gateway, login, password)
            grafana.datasource(MAIN_ORG, instructor_uid(login), mine)
        except (GrafanaError, OSError, KeyError, ValueError, TypeError) as e:
            print(f"FAILED {login}: {e}", flush=True)
            failed.append(login)
            continue
        print(f"ok     {login}: organisation {org}, user {user_id}, data source {DATASOURCE_UID}")
    return failed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: grafana_orgs.py PLAN.json (GRAFANA_URL, GRAFANA_ADMIN_USER/PASSWORD set)")
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            plan = json.load(f)
        grafana = Grafana(
            os.environ["GRAFANA_URL"],
            os.environ["GRAFANA_ADMIN_USER"],
            os.environ["GRAFANA_ADMIN_PASSWORD"],
        )
        grafana.wait_ready(float(os.environ.get("GRAFANA_READY_SECONDS", READY_SECONDS)))
    except (OSError, ValueError, KeyError, GrafanaError) as e:
        print(f"error: {e}", flush=True)
        return 1
    failed = set_up(grafana, plan)
    print(f"{len(plan['learners']) - len(failed)}/{len(plan['learners'])} learners ready")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
