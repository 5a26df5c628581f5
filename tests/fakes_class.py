"""A fake API server for class mode, behind an httpx.MockTransport.

It models only what classroom.cluster calls, each as the real API server does it:
- Server-side apply (PATCH, `application/apply-patch+yaml`): creates the object when absent,
  else updates it; `fieldManager` is required (kubernetes.io/docs/reference/using-api/
  server-side-apply: "fieldManager is required for apply requests"); applying identical content
  leaves `resourceVersion` unchanged. A namespaced object in a namespace that does not exist is
  refused with 404 NotFound `namespaces "x" not found`, as the API server's namespace lifecycle
  admission does (k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go).
- Lists with `labelSelector` (equality terms, comma-separated), 404 with a `Status` body.
- DELETE of a namespaced object answers with the object and removes it (the generic registry's
  immediate deletion, k8s.io/apiserver/pkg/registry/generic/registry/store.go). A Job's
  `status` is never set by this fake: a test plays the Job controller and sets its conditions.
- DELETE of a namespace: the real API server sets `status.phase: Terminating` and the namespace
  controller removes its content later (pkg/controller/namespace); the fake removes the content
  at once but keeps refusing applies into a deleted namespace.
- TokenRequest: POST .../serviceaccounts/{name}/token returns `status.token` and
  `status.expirationTimestamp`; 404 when the ServiceAccount does not exist
  (pkg/registry/core/serviceaccount/storage/token.go).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import UTC, datetime, timedelta

import httpx

_NAMESPACED = re.compile(
    r"^/(?:api/v1|apis/[^/]+/v1)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(?:/(token))?$"
)
_CLUSTER = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?$")


def _status(code: int, reason: str, message: str) -> httpx.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip
    return httpx.Response(code, json=body)


def _matches(labels: dict, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _applied_part(obj: dict) -> dict:
    """The object without what the server sets (status, resourceVersion)."""
    part = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    part["metadata"].pop("resourceVersion", None)
    return part


class FakeClassApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> obj
        self.version = 0
        self.calls: list[tuple[str, str]] = []
        self.refuse: dict[str, int] = {}  # namespace -> status code to answer applies with

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="https://fake-apiserver", transport=httpx.MockTransport(self))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        path = request.url.path
        if m := _CLUSTER.match(path):
            return self._namespaces(request, m.group(1))
        if m := _NAMESPACED.match(path):
            return self._namespaced(request, *m.groups())
        return _status(404, "NotFound", f"the server could not find the requested resource {path}")

    # -- namespaces ----------------------------------------------------------------------------
    def _namespaces(self, request: httpx.Request, name: str | None) -> httpx.Response:
        if name is None and request.method == "GET":
            selector = request.url.params.get("labelSelector", "")
            items = [o for (p, _, _), o in self.objects.items() if p == "namespaces"
                     and _matches(o["metadata"].get("labels") or {}, selector)]  # fmt: skip
            return httpx.Response(200, json={"kind": "NamespaceList", "items": items})
        key = ("namespaces", "", name)
        if request.method == "PATCH":
            return self._apply(request, key)
        if key not in self.objects:
            return _status(404, "NotFound", f'namespaces "{name}" not found')
        if request.method == "DELETE":
            self.objects = {k: v for k, v in self.objects.items() if k[1] != name and k != key}
            return httpx.Response(
                200, json={"kind": "Namespace", "status": {"phase": "Terminating"}}
            )
        return httpx.Response(200, json=self.objects[key])

    # -- namespaced objects ----------------------------------------------------------------------
    def _namespaced(self, request, namespace, plural, name, sub) -> httpx.Response:
        if ("namespaces", "", namespace) not in self.objects:
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        if sub == "token":
            return self._token(namespace, plural, name)
        if name is None and request.method == "GET":
            items = [o for (p, ns, _), o in self.objects.items() if p == plural and ns == namespace]
            return httpx.Response(200, json={"items": items})
        key = (plural, namespace, name)
        if request.method == "PATCH":
            if namespace in self.refuse:
                code = self.refuse[namespace]
                return _status(code, "Forbidden", f'{plural} "{name}" is forbidden: quota exceeded')
            return self._apply(request, key)
        if key not in self.objects:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        if request.method == "DELETE":  # the deleted object comes back (generic registry)
            return httpx.Response(200, json=self.objects.pop(key))
        return httpx.Response(200, json=self.objects[key])

    def _apply(self, request: httpx.Request, key: tuple[str, str, str]) -> httpx.Response:
        if request.headers.get("content-type") != "application/apply-patch+yaml":
            return _status(415, "UnsupportedMediaType", "the body was in an unknown format")
        if not request.url.params.get("fieldManager"):
            message = "fieldManager: Required value: is required for apply patch"
            return _status(400, "BadRequest", message)
        body = json.loads(request.content)
        old = self.objects.get(key)
        new = copy.deepcopy(body)
        if old is not None:
            if _applied_part(old) == body:  # nothing changed: no new resourceVersion
                return httpx.Response(200, json=old)
            new["status"] = old.get("status", {})
        self.version += 1
        new["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = new
        return httpx.Response(201 if old is None else 200, json=new)

    def job_controller(self, condition: str = "Complete"):
        """A `sleep` for code that polls a Job: while it "sleeps", the Job controller finishes
        every Job, as it does when the pod ends (pkg/controller/job: a condition of type
        Complete or Failed with status "True")."""

        def sleep(_seconds: float) -> None:
            for (plural, _ns, _name), obj in self.objects.items():
                if plural == "jobs":
                    obj["status"] = {"conditions": [{"type": condition, "status": "True"}]}

        return sleep

    def _token(self, namespace: str, plural: str, name: str) -> httpx.Response:
        if ("serviceaccounts", namespace, name) not in self.objects:
            return _status(404, "NotFound", f'serviceaccounts "{name}" not found')
        expires = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"token": f"token-{namespace}", "expirationTimestamp": expires}
        return httpx.Response(201, json={"kind": "TokenRequest", "status": status})


# -- the same API server, as a learner's token sees it ------------------------------------------
def learner_view(api: FakeClassApi, *, allow_everything: bool = False) -> httpx.MockTransport:
    """Requests carrying a learner's token (`token-<namespace>`, as the fake TokenRequest issues)
    are authorized as the learner Role allows: pods and pods/log in their own namespace. Anything
    else gets the RBAC authorizer's 403 Status, worded as the real one
    (plugin/pkg/auth/authorizer/rbac/rbac.go: `User "..." cannot list resource "pods" in API
    group "" in the namespace "..."`). `allow_everything` models a class whose Role is too broad.
    """

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer token-")
        m = _NAMESPACED.match(request.url.path) or _CLUSTER.match(request.url.path)
        namespace = m.group(1) if m else ""
        resource = m.group(2) if m and m.re is _NAMESPACED else "namespaces"
        allowed = allow_everything or (
            namespace == token and resource == "pods" and request.method == "GET"
        )
        if not allowed:
            user = f"system:serviceaccount:{token}:learner"
            verb = {"GET": "list", "PATCH": "patch"}.get(request.method, request.method.lower())
            message = (f'{resource} is forbidden: User "{user}" cannot {verb} resource '
                       f'"{resource}" in API group "" in the namespace "{namespace}"')  # fmt: skip
            return _status(403, "Forbidden", message)
        return api(request)

    return httpx.MockTransport(handler)


class FakeGateway:
    """The Loki chart's nginx gateway in front of a multi-tenant Loki: basic auth against the
    tenants' htpasswd, then `proxy_set_header X-Scope-OrgID $remote_user` (charts/loki 18.11.0
    values.yaml `gateway.nginxConfig.locationSnippet`), so the header a client sends is replaced.
    `honour_client_header` models a gateway without that snippet (a misconfiguration)."""

    def __init__(self, users: dict[str, str], lines: dict[str, list[str]]) -> None:
        self.users, self.lines = users, lines
        self.honour_client_header = False

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("authorization", "")
        try:
            decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
        except ValueError:
            decoded = ""
        user, _, password = decoded.partition(":")
        if not header.startswith("Basic ") or self.users.get(user) != password:
            return httpx.Response(401, text="<html>401 Authorization Required</html>")
        tenant = user
        if self.honour_client_header and "x-scope-orgid" in request.headers:
            tenant = request.headers["x-scope-orgid"]
        # A tenant holds only its own namespace's streams (Alloy's stage.tenant put them there),
        # so a selector for another namespace matches nothing in it.
        wanted = re.search(r'namespace="([^"]+)"', request.url.params.get("query", ""))
        lines = self.lines.get(tenant, []) if wanted and wanted.group(1) == tenant else []
        values = [["1700000000000000000", line] for line in lines]
        result = [{"stream": {"namespace": tenant}, "values": values}] if values else []
        data = {"resultType": "streams", "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})
