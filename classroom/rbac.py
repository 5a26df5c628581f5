"""An offline RBAC evaluator: what a subject may do, computed from Roles and Bindings as YAML.

Isolation between learners rests on RBAC, so it is proven, not assumed: the tests render every
learner's objects and ask this evaluator whether learner A can read learner B's pods, read any
secret, change a namespace or grant themselves more. It follows the Kubernetes RBAC rules
(kubernetes/kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` and `pkg/apis/rbac/helpers.go`:
`VerbMatches`, `APIGroupMatches`, `ResourceMatches` with `*` and `*/subresource`,
`ResourceNameMatches`): a RoleBinding grants its Role's (or ClusterRole's) rules inside the
binding's namespace only; a ClusterRoleBinding grants a ClusterRole everywhere. A ServiceAccount
is also in the groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` and
`system:authenticated`. Only the objects given are considered: bindings a cluster ships with
(e.g. `system:basic-user`) are out of scope and grant no namespaced resources.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Subject:
    kind: str  # User, Group or ServiceAccount
    name: str
    namespace: str = ""

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Subject:
        return cls("ServiceAccount", name, namespace)

    def groups(self) -> set[str]:
        if self.kind == "ServiceAccount":
            return {
                "system:serviceaccounts",
                f"system:serviceaccounts:{self.namespace}",
                "system:authenticated",
            }
        return set()

    def matches(self, entry: dict[str, Any], binding_namespace: str) -> bool:
        kind, name = entry.get("kind"), entry.get("name")
        if kind == "ServiceAccount":
            namespace = entry.get("namespace") or binding_namespace
            return self.kind == kind and self.name == name and self.namespace == namespace
        if kind == "Group":
            return name in self.groups() or (self.kind == "Group" and self.name == name)
        return self.kind == kind and self.name == name


@dataclass(frozen=True)
class Request:
    verb: str
    resource: str
    namespace: str  # "" for a cluster-scoped resource
    group: str = ""
    subresource: str = ""
    name: str = ""


def _matches(values: Iterable[str], wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _resource_matches(resources: Iterable[str], request: Request) -> bool:
    resources = list(resources or [])
    if "*" in resources:
        return True
    if not request.subresource:
        return request.resource in resources
    combined = f"{request.resource}/{request.subresource}"
    return combined in resources or f"*/{request.subresource}" in resources


def rule_allows(rule: dict[str, Any], request: Request) -> bool:
    """One PolicyRule against one request, as the RBAC authorizer matches it."""
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("verbs"), request.verb)
        and _matches(rule.get("apiGroups"), request.group)
        and _resource_matches(rule.get("resources"), request)
        and (not names or request.name in names)
    )


class Policy:
    """Roles, ClusterRoles and their bindings, indexed for `allows`."""

    def __init__(self, objects: Iterable[dict[str, Any]]):
        self.roles: dict[tuple[str, str], list[dict]] = {}
        self.cluster_roles: dict[str, list[dict]] = {}
        self.bindings: list[dict[str, Any]] = []
        for obj in objects:
            kind, meta = obj.get("kind"), obj.get("metadata") or {}
            if kind == "Role":
                self.roles[(meta.get("namespace", ""), meta.get("name"))] = obj.get("rules") or []
            elif kind == "ClusterRole":
                self.cluster_roles[meta.get("name")] = obj.get("rules") or []
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                self.bindings.append(obj)

    def _granted_rules(self, binding: dict[str, Any]) -> list[dict]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            return self.cluster_roles.get(ref.get("name"), [])
        namespace = (binding.get("metadata") or {}).get("namespace", "")
        return self.roles.get((namespace, ref.get("name")), [])

    def allows(self, subject: Subject, request: Request) -> bool:
        for binding in self.bindings:
            namespace = (binding.get("metadata") or {}).get("namespace", "")
            if binding["kind"] == "RoleBinding" and namespace != request.namespace:
                continue  # a RoleBinding never reaches outside its namespace
            if not any(subject.matches(s, namespace) for s in binding.get("subjects") or []):
                continue
            if any(rule_allows(rule, request) for rule in self._granted_rules(binding)):
                return True
        return False
