"""A fake Grafana HTTP API, on a real loopback socket, for classroom/grafana_orgs.py.

It models only the calls the setup script and the isolation probe make, as Grafana's legacy
`/api` answers them. What it models was checked against Grafana's source (grafana/grafana, the
newest stored versions of these files; descriptions here are ours):
- routes and the permission each needs: pkg/api/api.go `registerRoutes`; a refused permission
  is 403 with an `Access denied` title (pkg/services/accesscontrol/middleware.go `deny`). The
  org, admin and user-lookup routes need server-admin permissions, so a learner gets 403.
- Basic auth against the users it holds; a wrong password is 401.
- The organisation of a request (pkg/services/authn/authnimpl/service.go `orgIDFromRequest`,
  sync/user_sync.go `FetchSyncedUserHook`, pkg/services/user/userimpl/store.go
  `GetSignedInUser`): `X-Grafana-Org-Id` when sent, else the user's current organisation. A
  user who is not a member of that organisation is still signed in, but with no role there
  (organisation -1), so every org-scoped route answers 403; it is not a 401.
- Organisations (pkg/api/org.go `CreateOrg`, `GetOrgByName`; orgimpl/store.go
  `CreateWithMember`): GET `/api/orgs/name/:name` is 200 `{"id", "name"}` or 404
  `Organization not found`; POST `/api/orgs` is 200 `{"orgId", "message"}` with the creator
  added as Admin, or 409 `Organization name taken`.
- Users (pkg/api/user.go `GetUserByLoginOrEmail`, admin_users.go `AdminCreateUser`,
  `AdminUpdateUserPassword`; userimpl/user.go `Create`, orgimpl/org.go `GetIDForNewUser`):
  lookup is 200 `{"id", ...}` or 404 `user not found`; POST `/api/admin/users` is 200 `{"id",
  "message"}`, the user joining `OrgId` alone when given (auto_assign_org, on by default), else
  the main organisation, as Viewer (auto_assign_org_role), with that organisation current; 412
  when the login exists. GET `/api/user` is the signed-in user; GET `/api/users/:id/orgs`
  (pkg/api/user.go `GetUserOrgList`, server admins only) is `[{"orgId", "name", "role"}]`. PUT
  `/api/admin/users/:id/password` also revokes the user's sessions (RevokeAllUserTokens): a test
  counts those calls in `calls`.
- Org members (pkg/api/org_users.go `addOrgUserHelper`, `updateOrgUserHelper`,
  `removeOrgUserHelper`; orgimpl/store.go `AddOrgUser`, `RemoveOrgUser`): POST
  `/api/orgs/:id/users` is 200, 404 `User not found` or 409 `User is already member of this
  organization` with `userId`; PATCH sets the role; DELETE of a non-member changes nothing and
  still answers 200, and when the removed organisation was the user's current one, another of
  theirs becomes current (none left: no current organisation).
- Data sources, per organisation (pkg/api/datasources.go `AddDataSource`,
  `UpdateDataSourceByUID`, `GetDataSourceByUID`, `convertModelToDtos`): GET/PUT
  `/api/datasources/uid/:uid` (404 `Data source not found`; PUT takes the id from the stored
  source), POST `/api/datasources` (409 on a duplicate name), GET `/api/datasources` (the
  current organisation only; in OSS every Viewer may read and query data sources,
  pkg/api/accesscontrol.go). Secure fields are stored, never returned (`secureJsonFields`).
- `/api/health` answers 503 `{"database": "failing"}` for the first `not_ready_for` calls
  (pkg/api/http_server.go `apiHealthHandler`).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NO_ORG = -1  # Grafana's organisation for a user with no role in the one asked for


def _denied(needed: str) -> dict[str, str]:
    return {"title": "Access denied", "message": f"missing permission: {needed}"}


class FakeGrafana:
    def __init__(self, admin_password: str = "admin-pw") -> None:
        self.orgs: dict[int, str] = {1: "Main Org."}
        self.users: dict[int, dict[str, Any]] = {
            1: {"login": "admin", "password": admin_password, "admin": True, "org": 1}
        }
        self.members: dict[tuple[int, int], str] = {(1, 1): "Admin"}  # (org, user) -> role
        self.datasources: dict[tuple[int, str], dict[str, Any]] = {}  # (org, uid) -> source
        self.not_ready_for = 0
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], int] = {}  # (method, path) -> status to answer with
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGrafana:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what a test asks -----------------------------------------------------------------------
    def user_id(self, login: str) -> int | None:
        return next((i for i, u in self.users.items() if u["login"] == login), None)

    def org_id(self, name: str) -> int | None:
        return next((i for i, n in self.orgs.items() if n == name), None)

    def orgs_of(self, login: str) -> dict[str, str]:
        uid = self.user_id(login)
        return {self.orgs[o]: role for (o, u), role in self.members.items() if u == uid}

    # -- the server -----------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake._lock:
                    status, answer = fake._route(self.command, self.path, self.headers, body)
                self._answer(status, answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

        return Handler

    def _who(self, headers: Any) -> int | None:
        header = headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        uid = self.user_id(login)
        return uid if uid is not None and self.users[uid]["password"] == password else None

    def _route(self, method: str, raw_path: str, headers: Any, body: Any) -> tuple[int, Any]:
        url = urllib.parse.urlsplit(raw_path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        self.calls.append((method, path))
        if (method, path) in self.fail:
            return self.fail[(method, path)], {"message": "injected failure"}
        if path == "/api/health":
            if self.not_ready_for > 0:
                self.not_ready_for -= 1
                return 503, {"database": "failing"}
            return 200, {"database": "ok", "version": "13.2.0"}
        me = self._who(headers)
        if me is None:
            return 401, {"message": "Invalid username or password"}
        header = headers.get("X-Grafana-Org-Id")
        # The header's organisation, else the user's current one (users.org_id in Grafana).
        org = int(header) if header is not None else self.users[me].get("org") or NO_ORG
        if (org, me) not in self.members:
            org = NO_ORG  # signed in, but with no role in that organisation
        parts = path.strip("/").split("/")
        admin_only = path.startswith(("/api/orgs", "/api/admin", "/api/users/"))
        if admin_only and not self.users[me]["admin"]:
            return 403, _denied("server admin")
        if parts[:2] == ["api", "orgs"]:
            return self._orgs(method, parts[2:], me, body)
        if path == "/api/user" and method == "GET":
            return 200, {"id": me, "login": self.users[me]["login"]}
        if parts[:2] == ["api", "users"] and parts[3:] == ["orgs"] and method == "GET":
            uid = int(parts[2])
            return 200, [
                {"orgId": o, "name": self.orgs[o], "role": r}
                for (o, u), r in sorted(self.members.items())
                if u == uid
            ]
        if path == "/api/users/lookup":
            uid = self.user_id(query.get("loginOrEmail", [""])[0])
            if uid is None:
                return 404, {"message": "user not found"}
            return 200, {"id": uid, "login": self.users[uid]["login"]}
        if parts[:3] == ["api", "admin", "users"]:
            return self._admin_users(method, parts[3:], body)
        if parts[:2] == ["api", "datasources"]:
            return self._datasources(method, parts[2:], org, body)
        return 404, {"message": "Not found"}

    def _first_org(self, user: int) -> int | None:
        return next((o for (o, u) in sorted(self.members) if u == user), None)

    def _orgs(self, method: str, rest: list[str], me: int, body: Any) -> tuple[int, Any]:
        if rest == [] and method == "POST":
            if self.org_id(body["name"]) is not None:
                return 409, {"message": "Organization name taken"}
            new = max(self.orgs) + 1
            self.orgs[new] = body["name"]
            self.members[(new, me)] = "Admin"
            return 200, {"orgId": new, "message": "Organization created"}
        if rest[:1] == ["name"] and method == "GET":
            oid = self.org_id(urllib.parse.unquote(rest[1]))
            if oid is None:
                return 404, {"message": "Organization not found"}
            return 200, {"id": oid, "name": self.orgs[oid]}
        oid = int(rest[0])
        if oid not in self.orgs:
            return 404, {"message": "Organization not found"}
        if rest[1:] == ["users"] and method == "GET":
            return 200, [
                {"orgId": o, "userId": u, "login": self.users[u]["login"], "role": r}
                for (o, u), r in self.members.items()
                if o == oid
            ]
        if rest[1:] == ["users"] and method == "POST":
            uid = self.user_id(body["loginOrEmail"])
            if uid is None:
                return 404, {"message": "User not found"}
            if (oid, uid) in self.members:
                return 409, {
                    "message": "User is already member of this organization",
                    "userId": uid,
                }
            self.members[(oid, uid)] = body["role"]
            return 200, {"message": "User added to organization", "userId": uid}
        if rest[1:2] == ["users"] and len(rest) == 3:
            key = (oid, int(rest[2]))
            if method == "DELETE" and key not in self.members and key[1] in self.users:
                return 200, {"message": "User removed from organization"}  # nothing to do
            if key not in self.members:
                return 404, {"message": "User not found"}
            if method == "PATCH":
                self.members[key] = body["role"]
                return 200, {"message": "Organization user updated"}
            if method == "DELETE":  # the current organisation moves to one still held
                del self.members[key]
                user = self.users[key[1]]
                if user.get("org") == oid:
                    user["org"] = self._first_org(key[1])
                return 200, {"message": "User removed from organization"}
        return 404, {"message": "Not found"}

    def _admin_users(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if rest == [] and method == "POST":
            if self.user_id(body["login"]) is not None:
                return 412, {"message": "user already exists"}
            new = max(self.users) + 1
            org = int(body.get("OrgId") or 0)
            org = org if org in self.orgs else 1
            self.users[new] = {
                "login": body["login"],
                "password": body["password"],
                "admin": False,
                "org": org,
            }
            self.members[(org, new)] = "Viewer"
            return 200, {"id": new, "message": "User created"}
        if len(rest) == 2 and rest[1] == "password" and method == "PUT":
            uid = int(rest[0])
            if uid not in self.users:
                return 404, {"message": "user not found"}
            self.users[uid]["password"] = body["password"]
            return 200, {"message": "User password updated"}
        return 404, {"message": "Not found"}

    def _datasources(self, method: str, rest: list[str], org: int, body: Any) -> tuple[int, Any]:
        if org == NO_ORG:
            return 403, _denied("datasources")
        if rest == [] and method == "GET":
            return 200, [self._shown(ds) for (o, _), ds in self.datasources.items() if o == org]
        if rest == [] and method == "POST":
            if any(
                o == org and ds["name"] == body["name"] for (o, _), ds in self.datasources.items()
            ):
                return 409, {"message": "data source with the same name already exists"}
            stored = {**body, "id": len(self.datasources) + 1, "orgId": org}
            self.datasources[(org, body["uid"])] = stored
            return 200, {"id": stored["id"], "message": "Datasource added", "name": body["name"]}
        if rest[:1] == ["uid"] and len(rest) == 2:
            key = (org, rest[1])
            if key not in self.datasources:
                return 404, {"message": "Data source not found"}
            if method == "GET":
                return 200, self._shown(self.datasources[key])
            if method == "PUT":
                self.datasources[key] = {**body, "id": self.datasources[key]["id"], "orgId": org}
                return 200, {"message": "Datasource updated", "name": body["name"]}
        return 404, {"message": "Not found"}

    @staticmethod
    def _shown(ds: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in ds.items() if k != "secureJsonData"}
        shown["secureJsonFields"] = {k: True for k in ds.get("secureJsonData") or {}}
        return shown
