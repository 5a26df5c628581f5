"""The class's one seam to the shared cluster: a handful of REST calls over httpx.

Server-side apply makes `up` idempotent (applying the same object twice changes nothing; a new
roster row only adds); TokenRequest gives each learner a token that expires (no long-lived
ServiceAccount token Secret); `down` deletes namespaces by the class's labels and nothing else.
Paths and verbs follow the Kubernetes API reference (server-side apply: PATCH with
`application/apply-patch+yaml` and `fieldManager`; TokenRequest: POST
`/api/v1/namespaces/{ns}/serviceaccounts/{name}/token`). Tests substitute an httpx transport.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

FIELD_MANAGER = "k8s-logging-lab-class"

# Where each kind we apply lives in the API: (apiVersion, kind) -> (prefix, plural, namespaced).
_KINDS = {
    ("v1", "Namespace"): ("/api/v1", "namespaces", False),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("batch/v1", "Job"): ("/apis/batch/v1", "jobs", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "ResourceQuota"): ("/api/v1", "resourcequotas", True),
    ("v1", "LimitRange"): ("/api/v1", "limitranges", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): (
        "/apis/rbac.authorization.k8s.io/v1", "rolebindings", True,
    ),
}  # fmt: skip


class ClassClusterError(RuntimeError):
    """The API server refused or failed a call; the message names the call and its reason.
    `status` is the HTTP status of a refusal (None when no answer came)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def object_path(obj: dict[str, Any]) -> str:
    """The REST path of one object, e.g. /apis/apps/v1/namespaces/lab2-ada/deployments/orders."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key not in _KINDS:
        raise ClassClusterError(f"class mode does not apply {key[1]} ({key[0]}) objects")
    prefix, plural, namespaced = _KINDS[key]
    meta = obj.get("metadata") or {}
    if namespaced:
        return f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
    return f"{prefix}/{plural}/{meta['name']}"


def _reason(response: httpx.Response) -> str:
    try:
        return response.json().get("message") or response.text[:300]
    except ValueError:
        return response.text[:300]


class ClassCluster:
    """The calls class mode makes, on an httpx client rooted at the API server."""

    def __init__(self, http: httpx.Client):
        self.http = http

    def _send(self, what: str, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ClassClusterError(f"{what}: no answer from the API server ({e})") from None
        if response.status_code >= 400:
            code = response.status_code
            raise ClassClusterError(f"{what}: HTTP {code}: {_reason(response)}", status=code)
        return response

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply, forcing our field manager's ownership of the fields we set."""
        path = object_path(obj)
        response = self._send(
            f"APPLY {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}",
            "PATCH", path,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )  # fmt: skip
        return response.json()

    def get(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the API server has it now (status included)."""
        meta = obj["metadata"]
        what = f"GET {obj['kind']} {meta.get('namespace', '')}/{meta['name']}"
        return self._send(what, "GET", object_path(obj)).json()

    def find(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """`get`, or None when the object does not exist."""
        try:
            return self.get(obj)
        except ClassClusterError as e:
            if e.status == 404:
                return None
            raise

    def delete(self, obj: dict[str, Any]) -> bool:
        """Delete the object (its Pods too, for a Job); False when it was already gone."""
        meta = obj["metadata"]
        what = f"DELETE {obj['kind']} {meta.get('namespace', '')}/{meta['name']}"
        try:
            self._send(what, "DELETE", object_path(obj), params={"propagationPolicy": "Background"})
        except ClassClusterError as e:
            if e.status == 404:
                return False
            raise
        return True

    def namespaces(self, label_selector: str) -> list[dict[str, Any]]:
        response = self._send(
            f"LIST namespaces -l {label_selector}", "GET", "/api/v1/namespaces",
            params={"labelSelector": label_selector},
        )  # fmt: skip
        return response.json().get("items") or []

    def get_namespace(self, name: str) -> dict[str, Any] | None:
        return self.find({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def delete_namespace(self, name: str) -> None:
        self._send(f"DELETE namespace {name}", "DELETE", f"/api/v1/namespaces/{name}")

    def deployments(self, namespace: str) -> list[dict[str, Any]]:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        return self._send(f"LIST deployments -n {namespace}", "GET", path).json().get("items") or []

    def request_token(self, namespace: str, service_account: str, seconds: int) -> tuple[str, str]:
        """(token, expirationTimestamp) from the TokenRequest API."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        status = self._send(
            f"CREATE token for {namespace}/{service_account}", "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            json=body,
        ).json().get("status") or {}  # fmt: skip
        if not status.get("token"):
            raise ClassClusterError(f"the TokenRequest for {namespace} returned no token")
        return status["token"], status.get("expirationTimestamp", "")
