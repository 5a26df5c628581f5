"""Structural lint of the Alloy pipeline in the Helm values, without an Alloy binary.

Why: no Alloy binary can be installed from the package registries, yet an Alloy config that
parses can still ship nothing (a broken reference, a path glob that misses the kubelet's
layout, /var/log not mounted) or ship too much (a trace id as a label). This lint reads the
config the way Alloy would for the parts that matter here, and names what it found, what the
lab expects and the fix.

What it checks, on `alloy.configMap.content` of the Alloy chart's values:
- the file-based pipeline is present and wired, following the references:
  discovery.kubernetes -> discovery.relabel -> local.file_match -> loki.source.file
  -> loki.process -> loki.write (the built-in `file_match` block of loki.source.file may stand
  in for local.file_match); every reference names a defined component and a field it exports;
- discovery is `role = "pod"` and restricted to the agent's own node (a `selectors` block
  with field `spec.nodeName=` + the HOSTNAME env the chart sets to the node name);
- the relabel rules, run on a sample pod, build a `__path__` glob that matches that pod's
  kubelet files `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log` and no other pod's or
  container's files;
- the labels that reach Loki are the low-cardinality set namespace, pod, container, app (plus
  `stream`, which stage.cri sets: stdout or stderr); `filename` is dropped;
- loki.process unwraps the CRI format with stage.cri before any other parsing stage;
- loki.write pushes to the Loki Service the Loki values create;
- the chart mounts /var/log (`alloy.mounts.varlog`) and runs as a DaemonSet;
- read positions (`alloy.storagePath`) live on a hostPath or PVC mount, not in the container.

Component and argument names follow the Alloy v1.18 reference (grafana/alloy v1.18.1,
docs/sources/reference/components/{discovery/discovery.kubernetes, discovery/discovery.relabel,
local/local.file_match, loki/loki.source.file, loki/loki.process, loki/loki.write}.md, the shared
rule-block.md, get-started/syntax.md, collect/logs-in-kubernetes.md) and the chart values of
alloy 1.11.1 and loki 18.11.0.

    python -m validators.alloy_lint [VALUES.yaml] [--loki-values FILE] [--json]

Exit status: 0 clean, 1 findings, 2 bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from validators import files

# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem: which check, where in the values or config, found, expected, fix."""

    check: str
    where: str
    found: str
    expected: str
    fix: str

    def __post_init__(self) -> None:
        # `found` quotes the learner's config: bounded, however long the value there is.
        for name, value in asdict(self).items():
            object.__setattr__(self, name, files.clip(value, 500))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"[{self.check}] {self.where}: found {self.found}; expected {self.expected}. "
            f"Fix: {self.fix}"
        )


class AlloySyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# --- tokenizer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT (dotted names joined), STRING, NUMBER, OP, EOF
    value: str
    line: int
    end_line: int


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPES |= {"\\": "\\", '"': '"', "'": "'"}
_OPS = ("==", "!=", "<=", ">=", "&&", "||", *"{}[](),=<>+-*/%^!:.")


def tokenize(text: str) -> list[Token]:
    """Split Alloy syntax into tokens; comments vanish, strings are decoded."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise AlloySyntaxError(line, "block comment /* is never closed with */")
            line += text.count("\n", i, end)
            i = end + 2
        elif ch == '"':
            value, i, end_line = _scan_string(text, i, line)
            tokens.append(Token("STRING", value, line, end_line))
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise AlloySyntaxError(line, "raw string ` is never closed")
            value = text[i + 1 : end]
            tokens.append(Token("STRING", value, line, line + value.count("\n")))
            line += value.count("\n")
            i = end + 1
        elif ch.isdigit():
            m = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?").match(text, i)
            assert m is not None
            tokens.append(Token("NUMBER", m.group(), line, line))
            i = m.end()
        elif ch.isalpha() or ch == "_":
            m = re.compile(r"[^\W\d]\w*(\.[^\W\d]\w*)*").match(text, i)
            assert m is not None
            tokens.append(Token("IDENT", m.group(), line, line))
            i = m.end()
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                hint = " (Alloy comments are // and /* */, not #)" if ch == "#" else ""
                raise AlloySyntaxError(line, f"unexpected character {ch!r}{hint}")
            tokens.append(Token("OP", op, line, line))
            i += len(op)
    tokens.append(Token("EOF", "", line, line))
    return tokens


def _scan_string(text: str, i: int, line: int) -> tuple[str, int, int]:
    out: list[str] = []
    i += 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise AlloySyntaxError(line, 'string "... is not closed on the same line')
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1, line
        if ch == "\\":
            esc = text[i + 1 : i + 2]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            elif esc in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = text[i + 2 : i + 2 + width]
                if not re.fullmatch(r"[0-9a-fA-F]+", digits or "-") or len(digits) != width:
                    raise AlloySyntaxError(line, f"bad \\{esc} escape in a string")
                out.append(chr(int(digits, 16)))
                i += 2 + width
            else:
                # Alloy rejects unknown escapes; regexes belong in `raw strings` instead.
                raise AlloySyntaxError(
                    line,
                    f"unknown escape sequence \\{esc} in a string: write \\\\{esc}, or use a "
                    "backtick raw string for regexes",
                )
        else:
            out.append(ch)
            i += 1


# --- parser -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class ListExpr:
    items: tuple


@dataclass(frozen=True)
class ObjectExpr:
    items: tuple  # ((key, expr), ...)


@dataclass(frozen=True)
class Ref:
    path: str
    line: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class Index:
    target: Any
    index: Any


@dataclass
class Block:
    name: str
    label: str | None
    line: int
    attrs: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f'{self.name} "{self.label}"' if self.label is not None else self.name

    def children(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name == name]


_BINARY = {"||", "&&", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "^"}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, value: str) -> Token:
        if self.tok.value != value or self.tok.kind not in ("OP",):
            shown = self.tok.value or "end of config"
            raise AlloySyntaxError(self.tok.line, f"expected {value!r}, found {shown!r}")
        return self.take()

    def body(self, closing: bool, opened: Token | None = None) -> tuple[dict, list[Block]]:
        attrs: dict[str, Any] = {}
        blocks: list[Block] = []
        while True:
            tok = self.tok
            if tok.kind == "EOF":
                if opened is not None:
                    raise AlloySyntaxError(
                        opened.line, f"the block {opened.value} opened here is not closed with }}"
                    )
                return attrs, blocks
            if tok.kind == "OP" and tok.value == "}":
                if not closing:
                    raise AlloySyntaxError(tok.line, "unexpected } (one too many)")
                self.take()
                return attrs, blocks
            if tok.kind != "IDENT":
                raise AlloySyntaxError(tok.line, f"expected a name, found {tok.value!r}")
            name = self.take()
            nxt = self.tok
            if nxt.kind == "OP" and nxt.value == "=":
                self.take()
                if name.value in attrs:
                    raise AlloySyntaxError(name.line, f"attribute {name.value} set twice")
                attrs[name.value] = self.expr()
                if self.tok.line == self.tokens[self.pos - 1].end_line and self.tok.value not in (
                    "}",
                    "",
                ):
                    raise AlloySyntaxError(
                        self.tok.line, f"unexpected {self.tok.value!r} after {name.value} = ..."
                    )
            elif nxt.kind == "STRING" or (nxt.kind == "OP" and nxt.value == "{"):
                label = self.take().value if nxt.kind == "STRING" else None
                self.expect("{")
                inner_attrs, inner_blocks = self.body(closing=True, opened=name)
                blocks.append(Block(name.value, label, name.line, inner_attrs, inner_blocks))
            else:
                raise AlloySyntaxError(
                    nxt.line, f"after {name.value!r} expected = or a block, found {nxt.value!r}"
                )

    def expr(self) -> Any:
        left = self.unary()
        while (
            self.tok.kind == "OP"
            and self.tok.value in _BINARY
            and self.tok.line == self.tokens[self.pos - 1].end_line
        ):
            op = self.take().value
            left = BinOp(op, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.tok.kind == "OP" and self.tok.value in ("-", "!"):
            op = self.take().value
            return Unary(op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Any) -> Any:
        while self.tok.kind == "OP" and self.tok.line == self.tokens[self.pos - 1].end_line:
            if self.tok.value == "[":
                self.take()
                index = self.expr()
                self.expect("]")
                node = Index(node, index)
            elif self.tok.value == "(":  # calling the result of an expression
                self.take()
                node = Call(render(node), tuple(self.sequence(")")))
            elif self.tok.value == "." and self.tokens[self.pos + 1].kind == "IDENT":
                self.take()
                node = Index(node, Lit(self.take().value))
            else:
                break
        return node

    def primary(self) -> Any:
        tok = self.take()
        if tok.kind == "STRING":
            return Lit(tok.value)
        if tok.kind == "NUMBER":
            return Lit(float(tok.value) if "." in tok.value or "e" in tok.value else int(tok.value))
        if tok.kind == "IDENT":
            if tok.value in ("true", "false"):
                return Lit(tok.value == "true")
            if tok.value == "null":
                return Lit(None)
            if self.tok.kind == "OP" and self.tok.value == "(":
                self.take()
                args = self.sequence(")")
                return Call(tok.value, tuple(args))
            return Ref(tok.value, tok.line)
        if tok.kind == "OP" and tok.value == "[":
            return ListExpr(tuple(self.sequence("]")))
        if tok.kind == "OP" and tok.value == "{":
            return self.object()
        if tok.kind == "OP" and tok.value == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        raise AlloySyntaxError(tok.line, f"expected a value, found {tok.value or 'end'!r}")

    def sequence(self, closing: str) -> list[Any]:
        items: list[Any] = []
        while not (self.tok.kind == "OP" and self.tok.value == closing):
            if self.tok.kind == "EOF":
                raise AlloySyntaxError(self.tok.line, f"{closing!r} is missing")
            items.append(self.expr())
            if self.tok.kind == "OP" and self.tok.value == ",":
                self.take()
            elif not (self.tok.kind == "OP" and self.tok.value == closing):
                raise AlloySyntaxError(self.tok.line, f"expected ',' or {closing!r}")
            else:
                self.no_newline_before_closing()
        self.take()
        return items

    def no_newline_before_closing(self) -> None:
        # Like Go, Alloy ends a line after a value: a multi-line list or object needs a
        # trailing comma before the line that closes it.
        last = self.tokens[self.pos - 1]
        if self.tok.line > last.end_line:
            raise AlloySyntaxError(
                last.end_line, f"missing ',' after the last item before {self.tok.value!r}"
            )

    def object(self) -> ObjectExpr:
        items: list[tuple[str, Any]] = []
        while not (self.tok.kind == "OP" and self.tok.value == "}"):
            key = self.take()
            if key.kind not in ("IDENT", "STRING"):
                raise AlloySyntaxError(key.line, f"expected an object key, found {key.value!r}")
            if self.tok.value not in ("=", ":"):
                raise AlloySyntaxError(self.tok.line, f"expected = after key {key.value!r}")
            self.take()
            items.append((key.value, self.expr()))
            if self.tok.kind == "OP" and self.tok.value == ",":
                self.take()
            elif not (self.tok.kind == "OP" and self.tok.value == "}"):
                raise AlloySyntaxError(self.tok.line, "expected ',' or '}' in an object")
            else:
                self.no_newline_before_closing()
        self.take()
        return ObjectExpr(tuple(items))


def parse(text: str) -> list[Block]:
    """The top-level blocks of an Alloy config (components and settings blocks)."""
    parser = _Parser(tokenize(text))
    try:
        _, blocks = parser.body(closing=False)
    except RecursionError:  # the parser recurses once per nested block, list or operator
        raise AlloySyntaxError(parser.tok.line, "blocks or values nest too deeply here") from None
    return blocks


# --- evaluating the few expressions that matter -----------------------------------------------

_UNKNOWN = object()


def evaluate(node: Any, env: dict[str, str]) -> Any:
    """Literal value of an expression, or _UNKNOWN when it needs a running Alloy."""
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, ListExpr):
        return [evaluate(item, env) for item in node.items]
    if isinstance(node, ObjectExpr):
        return {k: evaluate(v, env) for k, v in node.items}
    if isinstance(node, Call):
        args = [evaluate(a, env) for a in node.args]
        if node.func in ("sys.env", "env") and len(args) == 1 and isinstance(args[0], str):
            return env.get(args[0], "")
        if node.func == "coalesce":
            known = [a for a in args if a is not _UNKNOWN]
            return next((a for a in known if a not in ("", None, [], {})), "")
        return _UNKNOWN
    if isinstance(node, Ref) and node.path == "constants.hostname":
        return env.get("__constants.hostname__", _UNKNOWN)
    if isinstance(node, BinOp) and node.op == "+":
        left, right = evaluate(node.left, env), evaluate(node.right, env)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
    return _UNKNOWN


def render(node: Any) -> str:
    """Alloy-like text of an expression, for messages."""
    if isinstance(node, Lit):
        return json.dumps(node.value)
    if isinstance(node, ListExpr):
        return "[" + ", ".join(render(i) for i in node.items) + "]"
    if isinstance(node, ObjectExpr):
        return "{" + ", ".join(f"{k} = {render(v)}" for k, v in node.items) + "}"
    if isinstance(node, Ref):
        return node.path
    if isinstance(node, Call):
        return f"{node.func}(" + ", ".join(render(a) for a in node.args) + ")"
    if isinstance(node, BinOp):
        return f"{render(node.left)} {node.op} {render(node.right)}"
    if isinstance(node, Unary):
        return f"{node.op}{render(node.operand)}"
    if isinstance(node, Index):
        return f"{render(node.target)}[{render(node.index)}]"
    return repr(node)


def refs_in(node: Any) -> Iterator[Ref]:
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, ListExpr | Call):
        for item in node.items if isinstance(node, ListExpr) else node.args:
            yield from refs_in(item)
    elif isinstance(node, ObjectExpr):
        for _, value in node.items:
            yield from refs_in(value)
    elif isinstance(node, BinOp):
        yield from refs_in(node.left)
        yield from refs_in(node.right)
    elif isinstance(node, Unary):
        yield from refs_in(node.operand)
    elif isinstance(node, Index):
        yield from refs_in(node.target)
        yield from refs_in(node.index)


def _all_refs(block: Block) -> Iterator[Ref]:
    for value in block.attrs.values():
        yield from refs_in(value)
    for child in block.blocks:
        yield from _all_refs(child)


# --- relabeling, as Prometheus and Alloy do it ------------------------------------------------


def _go_regex(pattern: str) -> re.Pattern[str]:
    # RE2 and Python agree on everything these configs use; relabel regexes are anchored.
    return re.compile(f"(?:{pattern})", re.DOTALL)


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's regexp Expand: $1, ${1}, $name, ${name}; $$ is a dollar; unknown groups are empty.

    Like Go, `$1x` names the group "1x" (empty): write `${1}x`.
    """

    def group(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(3)
        try:
            value = match.group(int(name) if name.isdigit() else name)
        except IndexError:  # no such group: Go expands it to nothing
            return ""
        return value or ""

    return re.sub(r"\$(\$)|\$\{(\w+)\}|\$(\w+)", group, template)


def _hashmod(value: str, modulus: int) -> int:
    digest = hashlib.md5(value.encode()).digest()  # noqa: S324 - what Prometheus uses
    return int.from_bytes(digest[8:], "big") % modulus


def relabel(labels: dict[str, str], rule: dict[str, Any]) -> dict[str, str] | None:
    """Apply one rule; None when the rule drops the target."""
    action = str(rule.get("action", "replace")).lower()
    regex = _go_regex(str(rule.get("regex", "(.*)")))
    separator = str(rule.get("separator", ";"))
    replacement = str(rule.get("replacement", "$1"))
    target = rule.get("target_label")
    value = separator.join(labels.get(s, "") for s in rule.get("source_labels", []) or [])
    out = dict(labels)
    match = regex.fullmatch(value)
    if action == "replace":
        if match is None or not target:
            return out
        name = _expand(str(target), match)
        result = _expand(replacement, match)
        if result:
            out[name] = result
        else:
            out.pop(name, None)
    elif action == "keep":
        return out if match else None
    elif action == "drop":
        return None if match else out
    elif action == "keepequal":
        return out if labels.get(str(target), "") == value else None
    elif action == "dropequal":
        return None if labels.get(str(target), "") == value else out
    elif action in ("lowercase", "uppercase"):
        out[str(target)] = value.lower() if action == "lowercase" else value.upper()
    elif action == "hashmod":
        out[str(target)] = str(_hashmod(value, int(rule.get("modulus", 1))))
    elif action == "labelmap":
        for name, v in labels.items():
            m = regex.fullmatch(name)
            if m:
                out[_expand(replacement, m)] = v
    elif action in ("labeldrop", "labelkeep"):
        keep = action == "labelkeep"
        out = {k: v for k, v in labels.items() if bool(regex.fullmatch(k)) == keep}
    else:
        raise ValueError(f"unknown relabel action {action!r}")
    return out


# A pod as discovery.kubernetes (role "pod") presents one container of it on the sample node.
SAMPLE_NODE = "lab2-logging-worker"
SAMPLE_ALLOY_POD = "alloy-x7k2p"  # constants.hostname inside the agent is its pod's hostname
SAMPLE_UID = "0f8e4a52-3c1b-4d2e-9a6f-1b2c3d4e5f60"
OTHER_UID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
SAMPLE_POD = "catalog-6d5f7c9b8-x2x4z"
SAMPLE_IP = "10.244.1.7"
SAMPLE_CONTAINER_ID = "containerd://4f2a9c1e8b7d"
SAMPLE_TARGET = {
    "__address__": f"{SAMPLE_IP}:8080",
    "__meta_kubernetes_namespace": "bookstore",
    "__meta_kubernetes_pod_name": SAMPLE_POD,
    "__meta_kubernetes_pod_uid": SAMPLE_UID,
    "__meta_kubernetes_pod_ip": SAMPLE_IP,
    "__meta_kubernetes_pod_host_ip": "172.18.0.3",
    "__meta_kubernetes_pod_node_name": SAMPLE_NODE,
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_ready": "true",
    "__meta_kubernetes_pod_container_name": "catalog",
    "__meta_kubernetes_pod_container_id": SAMPLE_CONTAINER_ID,
    "__meta_kubernetes_pod_container_image": "bookstore/catalog:0.1.0",
    "__meta_kubernetes_pod_container_init": "false",
    "__meta_kubernetes_pod_container_port_name": "http",
    "__meta_kubernetes_pod_container_port_number": "8080",
    "__meta_kubernetes_pod_container_port_protocol": "TCP",
    "__meta_kubernetes_pod_controller_kind": "ReplicaSet",
    "__meta_kubernetes_pod_controller_name": "catalog-6d5f7c9b8",
    "__meta_kubernetes_pod_label_app": "catalog",
    "__meta_kubernetes_pod_labelpresent_app": "true",
    "__meta_kubernetes_pod_label_pod_template_hash": "6d5f7c9b8",
    "__meta_kubernetes_pod_labelpresent_pod_template_hash": "true",
}
# The kubelet's files for that container (0.log, then 1.log after a restart), and files the
# glob must NOT pick up: another replica's same-named container, a sibling container.
OWN_FILES = tuple(
    f"/var/log/pods/bookstore_{SAMPLE_POD}_{SAMPLE_UID}/catalog/{n}.log" for n in (0, 1)
)
OTHER_POD_FILE = f"/var/log/pods/bookstore_catalog-6d5f7c9b8-q9w8e_{OTHER_UID}/catalog/0.log"
SIBLING_FILE = f"/var/log/pods/bookstore_{SAMPLE_POD}_{SAMPLE_UID}/istio-proxy/0.log"
KUBELET_LAYOUT = "/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A doublestar glob as Alloy's file matching reads it: * and ? stop at /, ** does not."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append("[^/]*")
            i += 1
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "{":
            end = pattern.find("}", i)
            if end < 0:
                out.append(re.escape(ch))
                i += 1
                continue
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")))
            out.append(")")
            i = end + 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
                i += 1
                continue
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out))


# --- the lint ---------------------------------------------------------------------------------

# Fields each component exports (Alloy reference, "Exported fields").
EXPORTS: dict[str, set[str]] = {
    "discovery.kubernetes": {"targets"},
    "discovery.relabel": {"output", "rules"},
    "local.file_match": {"targets"},
    "loki.source.file": set(),
    "loki.process": {"receiver"},
    "loki.write": {"receiver"},
    "loki.relabel": {"receiver", "rules"},
    "loki.source.kubernetes": set(),
}
COMPONENT_ROOTS = ("discovery", "local", "loki", "prometheus", "otelcol", "remote", "pyroscope")
ALLOWED_LABELS = ("namespace", "pod", "container", "app")
# stage.cri sets `stream` (stdout or stderr): two values, harmless for the index.
BOUNDED_EXTRAS = ("stream",)
# Label names whose values change per request, user, pod incarnation or file.
HIGH_CARDINALITY = re.compile(
    r"(^|_)(trace|span|request|user|session|order|uid|id|ip|filename|file|path|timestamp|time"
    r"|msg|message)(_|$)|traceid|requestid|userid|_id$",
    re.IGNORECASE,
)
PUSH_PATH = "/loki/api/v1/push"
PIPELINE = (
    "discovery.kubernetes",
    "discovery.relabel",
    "local.file_match",
    "loki.source.file",
    "loki.process",
    "loki.write",
)
# (upstream type, downstream type, component holding the reference, attribute, export)
LINKS = (
    ("discovery.kubernetes", "discovery.relabel", "down", "targets", "targets"),
    ("discovery.relabel", "local.file_match", "down", "path_targets", "output"),
    ("local.file_match", "loki.source.file", "down", "targets", "targets"),
    ("loki.source.file", "loki.process", "up", "forward_to", "receiver"),
    ("loki.process", "loki.write", "up", "forward_to", "receiver"),
)


@dataclass(frozen=True)
class LokiTarget:
    """Where Loki's push API lives, derived from the Loki chart values."""

    service: str
    namespace: str
    port: int
    cluster_domain: str = "cluster.local"

    @property
    def url(self) -> str:
        host = f"{self.service}.{self.namespace}.svc.{self.cluster_domain}"
        return f"http://{host}:{self.port}{PUSH_PATH}"

    def hosts(self, from_namespace: str) -> set[str]:
        svc, ns = self.service, self.namespace
        names = {f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.{self.cluster_domain}"}
        names.add(f"{svc}.{ns}.svc.{self.cluster_domain}.")  # the chart's own trailing-dot form
        if from_namespace == ns:
            names.add(svc)
        return names


def _dict(value: Any) -> dict:
    """A values section, or {} when it is absent or not a mapping (Helm's schema rejects those)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _port(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _versions_chart(name: str) -> dict[str, Any]:
    try:
        from labconfig.versions import load_versions

        return dict(load_versions().get("charts", {}).get(name, {}))
    except (SystemExit, ImportError, OSError):
        return {}


def loki_target(loki_values: dict | None) -> LokiTarget:
    """Service, namespace and port of Loki's push endpoint, as the Loki chart names them."""
    chart = _versions_chart("loki")
    release = str(chart.get("release", "loki"))
    namespace = str(chart.get("namespace", "logging"))
    if loki_values is None:  # the lab's contract: Service loki, port 3100, namespace logging
        return LokiTarget(release, namespace, 3100)
    values = loki_values
    name = values.get("nameOverride") or "loki"
    fullname = values.get("fullnameOverride") or (
        release if name in release else f"{release}-{name}"
    )
    namespace = values.get("namespaceOverride") or namespace
    domain = _dict(values.get("global")).get("clusterDomain") or "cluster.local"
    gateway = _dict(values.get("gateway"))
    if gateway.get("enabled", True):  # the chart's default is a gateway in front of Loki
        port = _port(_dict(gateway.get("service")).get("port"), 80)
        return LokiTarget(f"{fullname}-gateway", namespace, port, domain)
    server = _dict(_dict(values.get("loki")).get("server"))
    port = _port(server.get("http_listen_port"), 3100)
    mode = str(values.get("deploymentMode", "Monolithic"))
    if mode.startswith(("SingleBinary", "Monolithic")):
        return LokiTarget(fullname, namespace, port, domain)
    if mode.startswith("SimpleScalable"):
        return LokiTarget(f"{fullname}-write", namespace, port, domain)
    return LokiTarget(f"{fullname}-distributor", namespace, port, domain)


# --- the checks, one function per concern ------------------------------------------------------
#
# Each takes the parsed config (or one component of it) and returns its findings; lint_values
# runs them in the order the pipeline is built, so one broken link does not hide the others.


class Components:
    """The labelled components of one config (`type "label" { ... }`), by type and by name."""

    def __init__(self, blocks: list[Block]) -> None:
        self.blocks = blocks
        self.all = [b for b in blocks if b.label is not None and "." in b.name]

    def of_type(self, name: str) -> list[Block]:
        return [c for c in self.all if c.name == name]

    def resolve(self, path: str) -> tuple[Block, str] | None:
        """`loki.write.default.receiver` -> (the loki.write "default" block, "receiver")."""
        for comp in self.all:
            prefix = f"{comp.name}.{comp.label}."
            if path.startswith(prefix):
                return comp, path[len(prefix) :]
        return None


def check_duplicates(comps: Components) -> list[Finding]:
    findings = []
    seen: dict[str, Block] = {}
    for comp in comps.all:
        if comp.title in seen:
            findings.append(
                Finding(
                    "component",
                    f"{comp.title} (line {comp.line})",
                    f"a second {comp.title} (the first is at line {seen[comp.title].line})",
                    "a unique label per component type",
                    "rename one of them; Alloy refuses to load duplicate components.",
                )
            )
        seen.setdefault(comp.title, comp)
    return findings


# references -----------------------------------------------------------------------------------


def check_references(comps: Components) -> list[Finding]:
    """Every reference to a component names one that exists, and an export it has."""
    roots = tuple(r + "." for r in COMPONENT_ROOTS)
    return [
        finding
        for comp in comps.all
        for ref in _all_refs(comp)
        if ref.path.startswith(roots)
        for finding in _reference_problem(comps, comp, ref)
    ]


def _reference_problem(comps: Components, comp: Block, ref: Ref) -> list[Finding]:
    where = f"{comp.title} (line {ref.line})"
    resolved = comps.resolve(ref.path)
    if resolved is None:
        defined = ", ".join(c.title for c in comps.all) or "none"
        return [
            Finding(
                "reference",
                where,
                f"a reference to {ref.path}, but no component by that name exists",
                f"a reference to a defined component (defined: {defined})",
                "correct the type and label in the reference so that they match a "
                "component block exactly.",
            )
        ]
    target, export = resolved
    exports = EXPORTS.get(target.name)
    first = export.split(".")[0]
    if exports is None or first in exports:
        return []
    return [
        Finding(
            "reference",
            where,
            f"{ref.path}: {target.name} has no exported field {first!r}",
            f"one of its exports: {', '.join(sorted(exports)) or 'nothing'}",
            f"use {target.name}.{target.label}.{sorted(exports)[0]}"
            if exports
            else f"{target.name} exports nothing; wire it through forward_to.",
        )
    ]


# wiring ---------------------------------------------------------------------------------------


def _links_to(holder: Block, attr: str, target: Block, export: str) -> bool:
    wanted = f"{target.name}.{target.label}.{export}"
    return any(r.path == wanted for r in refs_in(holder.attrs.get(attr)))


def _builtin_file_match(comps: Components) -> list[Block]:
    """loki.source.file components with their own `file_match { enabled = true }` block."""
    return [
        s
        for s in comps.of_type("loki.source.file")
        if any(evaluate(b.attrs.get("enabled"), {}) is True for b in s.children("file_match"))
    ]


def _missing_components(comps: Components, builtin: list[Block]) -> list[Finding]:
    missing = [t for t in PIPELINE if not comps.of_type(t)]
    if builtin:
        missing = [m for m in missing if m != "local.file_match"]
    return [
        Finding(
            "component",
            "alloy.configMap.content",
            f"no {name} component",
            "the file pipeline " + " -> ".join(PIPELINE),
            f'add a {name} "<label>" {{ ... }} block and wire it in (see the Alloy '
            "reference page for " + name + ").",
        )
        for name in missing
    ]


def _attr_shown(block: Block, attr: str) -> str:
    if attr in block.attrs:
        return f"{block.title} has {attr} = {render(block.attrs[attr])}"
    return f"{block.title} has no {attr}"


def _broken_link(link: tuple[str, ...], current: list[Block], candidates: list[Block]) -> Finding:
    up_type, down_type, holder, attr, export = link
    if holder == "down":
        found = "; ".join(_attr_shown(d, attr) for d in candidates)
        example = f"{attr} = {up_type}.{current[0].label}.{export}"
        where = candidates[0].title
    else:
        found = "; ".join(_attr_shown(u, attr) for u in current)
        example = f"{attr} = [{down_type}.{candidates[0].label}.{export}]"
        where = current[0].title
    return Finding(
        "wiring",
        where,
        f"the link {up_type} -> {down_type} is broken: {found}",
        f"{down_type} to receive from {' or '.join(u.title for u in current)}",
        f"set {example} in {where}.",
    )


def follow_pipeline(comps: Components) -> tuple[dict[str, Block], list[Finding]]:
    """The first connected chain of components, by type, and the first broken link if any."""
    builtin = _builtin_file_match(comps)
    missing = _missing_components(comps, builtin)
    if missing:
        return {}, missing
    links = list(LINKS)
    if not comps.of_type("local.file_match"):
        # loki.source.file's own file_match block stands in for the separate component.
        links[1:3] = [("discovery.relabel", "loki.source.file", "down", "targets", "output")]
    chain: dict[str, Block] = {}
    current = comps.of_type("discovery.kubernetes")
    for link in links:
        up_type, down_type, holder, attr, export = link
        candidates = comps.of_type(down_type)
        if down_type == "loki.source.file" and up_type == "discovery.relabel":
            candidates = builtin
        connected = [
            (up, down)
            for up in current
            for down in candidates
            if (
                _links_to(down, attr, up, export)
                if holder == "down"
                else _links_to(up, attr, down, export)
            )
        ]
        if not connected:
            return chain, [_broken_link(link, current, candidates)]
        chain.setdefault(up_type, connected[0][0])
        chain[down_type] = connected[0][1]
        current = sorted({id(d): d for _, d in connected}.values(), key=lambda b: b.line)
    return chain, []


# discovery ------------------------------------------------------------------------------------


def check_discovery(disco: Block) -> list[Finding]:
    """Pods (role "pod") of the agent's own node only."""
    findings = []
    if evaluate(disco.attrs.get("role"), {}) != "pod":
        shown = render(disco.attrs["role"]) if "role" in disco.attrs else "(unset)"
        findings.append(
            Finding(
                "discovery",
                disco.title,
                f"role = {shown}",
                'role = "pod" (one target per container, with the pod uid and container name)',
                f'set role = "pod" in {disco.title}.',
            )
        )
    return findings + _check_node_local(disco)


def _check_node_local(disco: Block) -> list[Finding]:
    env = {"HOSTNAME": SAMPLE_NODE, "__constants.hostname__": SAMPLE_ALLOY_POD}
    wanted = f"spec.nodeName={SAMPLE_NODE}"
    fix = (
        f'add to {disco.title}: selectors {{ role = "pod"  field = "spec.nodeName=" + '
        'coalesce(sys.env("HOSTNAME"), constants.hostname) }: the chart sets HOSTNAME to the '
        "node's name, so each agent only watches and tails the pods of its own node."
    )
    pod_fields = [
        s.attrs.get("field")
        for s in disco.children("selectors")
        if evaluate(s.attrs.get("role"), {}) == "pod" and "field" in s.attrs
    ]
    if not pod_fields:
        return [
            Finding(
                "node-local",
                disco.title,
                'no selectors block with role "pod" and a field selector',
                "discovery limited to pods on the agent's own node (spec.nodeName)",
                fix,
            )
        ]
    findings = []
    for expr in pod_fields:
        value = evaluate(expr, env)
        if value != wanted:
            shown = "could not be evaluated" if value is _UNKNOWN else f"gives {value!r}"
            findings.append(
                Finding(
                    "node-local",
                    disco.title,
                    f"field = {render(expr)} ({shown} on node {SAMPLE_NODE})",
                    f'"spec.nodeName=" + the node name from sys.env("HOSTNAME") ({wanted!r})',
                    fix,
                )
            )
    return findings


# relabel: what the sample pod's target becomes ---------------------------------------------------


@dataclass
class SampleTarget:
    """The sample pod's labels after the relabel rules, and which rule set each one."""

    labels: dict[str, str] | None  # None: a rule dropped the sample pod
    origin: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _rule_problem(where: str, rule: Block, args: dict[str, Any]) -> Finding | None:
    """Why a rule cannot be run offline, or None."""
    sources = args.get("source_labels", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
        return Finding(
            "path",
            where,
            f"source_labels = {render(rule.attrs['source_labels'])}",
            'a list of label names, e.g. ["__meta_kubernetes_namespace"]',
            "write source_labels as a list of strings.",
        )
    unknown = [k for k, v in args.items() if v is _UNKNOWN]
    if unknown:
        return Finding(
            "path",
            where,
            f"{', '.join(unknown)} that can only be computed by a running Alloy",
            "literal strings in relabel rules",
            "write the rule with literal values so that it can be checked offline.",
        )
    return None


def sample_target(relabel_block: Block) -> SampleTarget:
    """Run the relabel rules on the sample pod, as discovery.relabel would."""
    result = SampleTarget(dict(SAMPLE_TARGET))
    env = {"HOSTNAME": SAMPLE_NODE}
    for rule in relabel_block.children("rule"):
        where = f"{relabel_block.title} rule at line {rule.line}"
        args = {k: evaluate(v, env) for k, v in rule.attrs.items()}
        problem = _rule_problem(where, rule, args)
        if problem is not None:
            result.findings.append(problem)
            continue
        try:
            after = relabel(result.labels, args)
        except (re.error, ValueError) as e:
            result.findings.append(
                Finding(
                    "path",
                    where,
                    f"a rule Alloy would reject ({e})",
                    "a valid action and RE2 regex",
                    "fix the rule's action or regex.",
                )
            )
            continue
        if after is None:
            result.findings.append(
                Finding(
                    "path",
                    where,
                    f"a rule that drops the sample pod bookstore/{SAMPLE_POD} "
                    f"(container catalog) — its logs would never be read",
                    "bookstore pods kept",
                    "narrow the keep/drop rule so that it only removes what you mean to.",
                )
            )
            result.labels = None
            return result
        result.origin |= {k: where for k, v in after.items() if result.labels.get(k) != v}
        result.labels = after
    return result


# the files a target's __path__ reads ------------------------------------------------------------

_PATH_FIX = (
    'build __path__ with the rule { source_labels = ["__meta_kubernetes_pod_uid", '
    '"__meta_kubernetes_pod_container_name"]  separator = "/"  target_label = '
    '"__path__"  replacement = "/var/log/pods/*$1/*.log" }'
)


def check_path(relabel_block: Block, target: dict[str, str]) -> list[Finding]:
    """__path__ matches the sample container's files and no other container's."""
    where = relabel_block.title
    glob = target.get("__path__")
    if not glob:
        return [
            Finding(
                "path",
                where,
                "no __path__ on the sample pod's target after relabeling",
                f"a __path__ glob for the kubelet layout {KUBELET_LAYOUT}",
                _PATH_FIX,
            )
        ]
    pattern = glob_regex(glob)
    misses = [f for f in OWN_FILES if not pattern.fullmatch(f)]
    if misses:
        return [
            Finding(
                "path",
                where,
                f"__path__ = {glob!r} for the sample pod, which does not match its file "
                f"{misses[0]}",
                f"a glob matching {KUBELET_LAYOUT} (any restart number n)",
                _PATH_FIX + " (the directory is /var/log/pods, the pod uid ends the pod's "
                "directory name, the container name is the next directory, files end in .log)",
            )
        ]
    return [
        Finding(
            "path",
            where,
            f"__path__ = {glob!r}, which also matches {other}: {what}",
            "a glob that matches only this container's files: pod uid and container "
            "name in the path",
            _PATH_FIX,
        )
        for other, what in (
            (OTHER_POD_FILE, "another replica's container of the same name (uid missing?)"),
            (SIBLING_FILE, "another container of the same pod (container name missing?)"),
        )
        if pattern.fullmatch(other)
    ]


# labels: what reaches Loki ----------------------------------------------------------------------

_LABEL_SOURCES = {
    "namespace": "__meta_kubernetes_namespace",
    "pod": "__meta_kubernetes_pod_name",
    "container": "__meta_kubernetes_pod_container_name",
    "app": "__meta_kubernetes_pod_label_app",
}


def pushed_labels(sample: SampleTarget, chain: dict[str, Block]) -> dict[str, str]:
    """Label name -> what set it, for the sample pod's lines as loki.write pushes them."""
    assert sample.labels is not None
    labels = {k: sample.origin.get(k, "discovery") for k in sample.labels if not k.startswith("__")}
    if "loki.source.file" in chain:
        labels["filename"] = f"{chain['loki.source.file'].title} (from __path__)"
    process = chain.get("loki.process")
    if process is not None:
        apply_stages(process, labels)
    write = chain.get("loki.write")
    if write is not None:
        extra = evaluate(write.attrs.get("external_labels"), {})
        if isinstance(extra, dict):
            labels |= {k: f"{write.title} external_labels" for k in extra}
    return labels


def apply_stages(process: Block, labels: dict[str, str]) -> None:
    """What loki.process's stages add and remove (stage.match blocks included)."""
    for stage in process.blocks:
        where = f"{process.title} {stage.name} (line {stage.line})"
        values = evaluate(stage.attrs.get("values"), {})
        if stage.name in ("stage.cri", "stage.docker"):
            labels["stream"] = where
        elif stage.name == "stage.label_drop" and isinstance(values, list):
            for name in values:
                labels.pop(name, None)
        elif stage.name == "stage.label_keep" and isinstance(values, list):
            for name in [k for k in labels if k not in values]:
                labels.pop(name)
        elif stage.name in ("stage.labels", "stage.static_labels") and isinstance(values, dict):
            labels |= {k: where for k in values}
        elif stage.name == "stage.match":
            apply_stages(stage, labels)


def check_labels(sample: SampleTarget, chain: dict[str, Block]) -> list[Finding]:
    """Exactly the lab's low-cardinality labels, from the right metadata."""
    labels = pushed_labels(sample, chain)
    return (
        _missing_labels(labels)
        + _volatile_labels(sample)
        + [f for name, source in sorted(labels.items()) for f in _extra_label(name, source)]
    )


def _missing_labels(labels: dict[str, str]) -> list[Finding]:
    return [
        Finding(
            "labels",
            "discovery.relabel",
            f"no {name!r} label on the sample pod's lines",
            "labels " + ", ".join(ALLOWED_LABELS),
            f"add a rule with target_label = {name!r} from {_LABEL_SOURCES[name]}.",
        )
        for name in ALLOWED_LABELS
        if name not in labels
    ]


def _volatile_labels(sample: SampleTarget) -> list[Finding]:
    volatile = {SAMPLE_UID: "pod uid", SAMPLE_IP: "pod IP", SAMPLE_CONTAINER_ID: "container id"}
    labels = sample.labels or {}
    return [
        Finding(
            "labels",
            sample.origin.get(name, "discovery.relabel"),
            f"label {name} = the {volatile[labels[name]]} ({labels[name]})",
            f"{name} from its own metadata, a value that is the same for every replica",
            f"take {name} from the matching __meta_kubernetes_* label.",
        )
        for name in ALLOWED_LABELS
        if labels.get(name) in volatile
    ]


def _extra_label(name: str, source: str) -> list[Finding]:
    if name in ALLOWED_LABELS or name in BOUNDED_EXTRAS:
        return []
    if name == "filename":
        return [
            Finding(
                "filename",
                source,
                "the filename label is kept (one more stream per file and restart)",
                "filename dropped before the push",
                'add stage.label_drop { values = ["filename"] } to loki.process.',
            )
        ]
    if HIGH_CARDINALITY.search(name):
        return [
            Finding(
                "labels",
                source,
                f"label {name!r}, which has a new value per request, pod or file",
                "only " + ", ".join(ALLOWED_LABELS) + " as labels",
                f"remove {name!r} from the labels; if it is in the log line, query it with "
                f'`| json | {name}="..."` instead (or keep it as structured metadata).',
            )
        ]
    return [
        Finding(
            "labels",
            source,
            f"extra label {name!r}",
            "exactly the lab's label set: " + ", ".join(ALLOWED_LABELS),
            f"remove the rule or stage that adds {name!r}.",
        )
    ]


# the CRI format and the push URL ----------------------------------------------------------------


def check_cri(process: Block) -> list[Finding]:
    """stage.cri unwraps the kubelet's line format before anything parses the app's line."""
    names = [b.name for b in process.blocks]
    fix = f"put stage.cri {{}} first in {process.title}."
    if "stage.cri" not in names:
        found = (
            "stage.docker (Docker's json-file format; kind nodes run containerd)"
            if "stage.docker" in names
            else "no stage.cri"
        )
        expected = 'stage.cri: the kubelet\'s files hold "<time> <stream> <P|F> <line>", not JSON'
        return [Finding("cri", process.title, found, expected, fix)]
    parsers = ("stage.json", "stage.logfmt", "stage.regex", "stage.multiline")
    first_parser = next((i for i, n in enumerate(names) if n in parsers), None)
    if first_parser is not None and first_parser < names.index("stage.cri"):
        return [
            Finding(
                "cri",
                process.title,
                f"{names[first_parser]} before stage.cri",
                "stage.cri before any stage that reads the application's line",
                fix,
            )
        ]
    return []


def _pushes_to(url: Any, loki: LokiTarget, from_namespace: str) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number
        return False
    return (
        parts.scheme == "http"
        and (parts.hostname or "") in loki.hosts(from_namespace)
        and port == loki.port
        and parts.path == PUSH_PATH
    )


def check_push_url(write: Block, loki: LokiTarget, from_namespace: str) -> list[Finding]:
    """One endpoint of loki.write pushes to the Loki Service the Loki values create."""
    endpoints = write.children("endpoint")
    fix = f'set url = "{loki.url}" in the endpoint block of {write.title}.'
    if not endpoints:
        return [Finding("push-url", write.title, "no endpoint block", f"url {loki.url}", fix)]
    if any(_pushes_to(evaluate(e.attrs.get("url"), {}), loki, from_namespace) for e in endpoints):
        return []
    shown = ", ".join(render(e.attrs["url"]) for e in endpoints if "url" in e.attrs)
    return [
        Finding(
            "push-url",
            write.title,
            f"endpoint url {shown or '(unset)'}",
            f"Loki's push API at {loki.url} (Service {loki.service} in namespace "
            f"{loki.namespace}, port {loki.port}, path {PUSH_PATH})",
            fix,
        )
    ]


def _alloy_section(values: dict) -> dict:
    # The chart still reads the grafana-agent era key `agent` when `alloy` is absent.
    return _dict(values.get("alloy") or values.get("agent"))


def _lint_chart_values(values: dict) -> list[Finding]:
    findings = []
    alloy = _alloy_section(values)
    mounts = _dict(alloy.get("mounts"))
    if mounts.get("varlog") is not True:
        findings.append(
            Finding(
                "varlog",
                "alloy.mounts.varlog",
                json.dumps(mounts["varlog"])
                if "varlog" in mounts
                else "unset (chart default false)",
                "true: the node's /var/log mounted read-only into the agent",
                "set alloy.mounts.varlog: true; without it local.file_match finds no files and "
                "nothing is shipped.",
            )
        )
    controller_type = _dict(values.get("controller")).get("type", "daemonset")
    if controller_type != "daemonset":
        findings.append(
            Finding(
                "controller",
                "controller.type",
                repr(controller_type),
                "daemonset: one agent per node, each reading its own node's files",
                "set controller.type: daemonset (a Deployment or StatefulSet runs on some nodes "
                "only and misses the others' log files).",
            )
        )
    findings += _lint_positions(values)
    return findings


def _under(path: str, directory: str) -> bool:
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _lint_positions(values: dict) -> list[Finding]:
    """loki.source.file keeps its read offsets under --storage.path: they must survive the pod.

    The chart default /tmp/alloy is the container's own filesystem: a restarted or rescheduled
    agent re-reads every file from the start (duplicate lines, Loki's old-sample rejects).
    """
    alloy = _alloy_section(values)
    storage = str(alloy.get("storagePath", "/tmp/alloy"))
    mounts = [m for m in _list(_dict(alloy.get("mounts")).get("extra")) if isinstance(m, dict)]
    volumes = {
        v.get("name"): v
        for v in _list(_dict(_dict(values.get("controller")).get("volumes")).get("extra"))
        if isinstance(v, dict)
    }
    fix = (
        "set alloy.storagePath to a directory on a mount that outlives the pod: a "
        "controller.volumes.extra hostPath (e.g. /var/lib/alloy-lab2, type DirectoryOrCreate) "
        "mounted read-write through alloy.mounts.extra."
    )
    where = "alloy.storagePath"
    expected = "positions on a node hostPath or a PersistentVolumeClaim, mounted read-write"
    mount = max(
        (m for m in mounts if _under(storage, str(m.get("mountPath", "")))),
        key=lambda m: len(str(m.get("mountPath", ""))),
        default=None,
    )
    if mount is None:
        found = f"{storage!r}, inside the container's own filesystem (lost with the pod)"
        return [Finding("positions", where, found, expected, fix)]
    volume = volumes.get(mount.get("name")) or {}
    if mount.get("readOnly") is True:
        found = f"{storage!r} on mount {mount.get('name')!r}, which is readOnly"
        return [Finding("positions", where, found, expected, fix)]
    if not ({"hostPath", "persistentVolumeClaim"} & set(volume)):
        kind = next((k for k in volume if k != "name"), "no volume of that name")
        found = f"{storage!r} on volume {mount.get('name')!r} ({kind}), which dies with the pod"
        return [Finding("positions", where, found, expected, fix)]
    return []


def _content_problem(alloy_values: dict) -> Finding | None:
    """Why alloy.configMap.content cannot be linted (not there, empty, templated), or None."""
    config_map = _dict(_alloy_section(alloy_values).get("configMap"))
    if config_map.get("create", True) is False:
        return Finding(
            "config",
            "alloy.configMap.create",
            "false (the config lives in a ConfigMap this lint cannot see)",
            "the pipeline in alloy.configMap.content",
            "keep the config in the values (configMap.create: true) so it is reviewed and "
            "linted with them.",
        )
    content = config_map.get("content")
    if not isinstance(content, str) or not content.strip():
        return Finding(
            "config",
            "alloy.configMap.content",
            "empty",
            "the Alloy pipeline as a string",
            "put the pipeline in alloy.configMap.content; when it is empty the chart ships "
            "an example config that sends logs nowhere.",
        )
    if "{{" in content:
        return Finding(
            "config",
            "alloy.configMap.content",
            "Helm template expressions ({{ ... }}): the chart renders the content with tpl",
            "plain Alloy syntax, so that what is reviewed is what Alloy runs",
            "write the values literally (or lint the ConfigMap that `helm template` renders).",
        )
    return None


def lint_values(alloy_values: dict, loki_values: dict | None = None) -> list[Finding]:
    """Every finding for these Alloy chart values (and, if given, the Loki chart values).

    Without Loki values, the push URL is checked against the lab's contract: Service `loki`,
    port 3100, in the namespace versions.toml gives the Loki release.
    """
    findings = _lint_chart_values(alloy_values)
    problem = _content_problem(alloy_values)
    if problem is not None:
        return [*findings, problem]
    content = _alloy_section(alloy_values)["configMap"]["content"]
    try:
        blocks = parse(content)
    except AlloySyntaxError as e:
        findings.append(
            Finding(
                "syntax",
                f"alloy.configMap.content line {e.line}",
                e.message,
                "valid Alloy syntax",
                "fix the config at that line (line numbers count from the first line of content).",
            )
        )
        return findings
    try:
        return findings + _lint_pipeline(Components(blocks), loki_values)
    except RecursionError:  # e.g. thousands of chained operators: evaluate/render recurse
        return findings + [
            Finding(
                "syntax",
                "alloy.configMap.content",
                "expressions nested or chained too deeply to evaluate",
                "the short expressions a pipeline needs",
                "simplify the expressions (a few operators per attribute).",
            )
        ]


def _lint_pipeline(comps: Components, loki_values: dict | None) -> list[Finding]:
    findings = check_duplicates(comps) + check_references(comps)
    chain, broken = follow_pipeline(comps)
    findings += broken
    # The checks below look at the chained component of each type, or (when the chain broke
    # before it) the first one defined, so that one broken link does not hide other problems.
    picked = {t: chain.get(t) or next(iter(comps.of_type(t)), None) for t in PIPELINE}
    parts = {t: b for t, b in picked.items() if b is not None}
    if "discovery.kubernetes" in parts:
        findings += check_discovery(parts["discovery.kubernetes"])
    if "discovery.relabel" in parts:
        sample = sample_target(parts["discovery.relabel"])
        findings += sample.findings
        if sample.labels is not None:
            findings += check_path(parts["discovery.relabel"], sample.labels)
            findings += check_labels(sample, parts)
    if "loki.process" in parts:
        findings += check_cri(parts["loki.process"])
    if "loki.write" in parts:
        alloy_namespace = str(_versions_chart("alloy").get("namespace", "logging"))
        findings += check_push_url(parts["loki.write"], loki_target(loki_values), alloy_namespace)
    return findings


def describe_pipeline(alloy_values: dict) -> str:
    """One line naming the chain that was followed (for the clean report)."""
    content = _dict(_alloy_section(alloy_values).get("configMap")).get("content", "")
    chain, _ = follow_pipeline(Components(parse(content)))
    return " -> ".join(chain[t].title for t in PIPELINE if t in chain)


# --- command line -----------------------------------------------------------------------------


class InputError(Exception):
    pass


def _read_values(path: Path) -> dict:
    try:
        return files.yaml_mapping(path, "Helm values")
    except files.FileProblem as e:
        raise InputError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    defaults = {n: _versions_chart(n).get("values") for n in ("alloy", "loki")}
    parser = argparse.ArgumentParser(
        prog="python -m validators.alloy_lint",
        description="Lint the Alloy pipeline in the Alloy chart values (no Alloy binary needed).",
    )
    parser.add_argument(
        "values",
        nargs="?",
        default=repo / defaults["alloy"] if defaults["alloy"] else None,
        help="Alloy chart values (default: versions.toml [charts.alloy].values)",
    )
    parser.add_argument(
        "--loki-values",
        help="Loki chart values, to derive the push URL (default: versions.toml "
        "[charts.loki].values when that file exists)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    files.safe_output()
    if args.values is None:
        parser.error("give the Alloy values file")
    loki_path = args.loki_values
    if loki_path is None and defaults["loki"] and (repo / defaults["loki"]).is_file():
        loki_path = repo / defaults["loki"]
    try:
        values = _read_values(Path(args.values))
        loki_values = _read_values(Path(loki_path)) if loki_path else None
    except InputError as e:
        print(f"validators.alloy_lint: {e}", file=sys.stderr)
        return 2
    findings = lint_values(values, loki_values)
    if args.json:
        print(
            json.dumps({"ok": not findings, "findings": [f.to_dict() for f in findings]}, indent=2)
        )
    elif findings:
        for f in findings:
            print(f"FAIL [{f.check}] {f.where}")
            print(f"      found:    {f.found}")
            print(f"      expected: {f.expected}")
            print(f"      fix:      {f.fix}")
        print(f"\n{len(findings)} finding(s) in the Alloy values {args.values}.")
    else:
        print(f"ok: {args.values}: {describe_pipeline(values)}")
        print(f"    pushes to {loki_target(loki_values).url}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
