"""The fake lab, extended with what the alerting, retention, node and incident checkers read.

Built on tests/fakes.py (same clock, same Loki lines, same bookstore) without changing it:

- `RulerLoki` adds Loki's ruler API (`/prometheus/api/v1/rules`, `/prometheus/api/v1/alerts`)
  evaluating a rules file the way the ruler does, and `/config` (the running configuration as
  YAML, durations in Prometheus form).
- `ExtrasCluster` adds the kubelet's configz and its log rotation, and the incident: an
  explicit FAULT_RATE on one Deployment whose simulated database fails in the logs.
- `fake_lab(...)` returns a Lab over it; `Extras` holds one switch per way these exercises go
  wrong (the defaults are the lab as the repository ships it, solved).

Every modelled response names its upstream source next to it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import yaml

from checks.lab import Lab
from labconfig.versions import REPO_ROOT
from tests.fake_loki import apply_stages as _apply
from tests.fake_loki import match_labels
from tests.fakes import (
    NS_APP,
    NS_LOGGING,
    FakeCluster,
    FakeLoki,
    Scenario,
    _ProxyClient,
    parse_logql,
)

LOKI_VALUES = REPO_ROOT / "manifests" / "logging" / "loki-values.yaml"
KIND_CONFIG = REPO_ROOT / "manifests" / "kind" / "cluster.yaml"

# A solved exercises/lab2/alert-rules.yaml (what a learner is expected to end up with).
SOLVED_RULES = """
groups:
  - name: bookstore
    interval: 30s
    rules:
      - alert: BookstoreErrorRate
        expr: |
          sum(rate({namespace="bookstore"} | json | level="ERROR" [5m]))
            /
          sum(rate({namespace="bookstore"}[5m])) > 0.05
        for: 1m
      - alert: BookstoreLogsMissing
        expr: absent_over_time({namespace="bookstore"}[5m])
        for: 2m
"""
SOLVED_INCIDENT = {
    "failing_dependency": "catalog-db",
    "query": '{namespace="bookstore"} | json | database="catalog-db"',
}
# Go's zero time.Time as encoding/json writes it: a rule the ruler has not evaluated yet.
ZERO_TIME = "0001-01-01T00:00:00Z"
# The kubelet checks container log sizes every containerLogMonitorInterval (default 10s; also
# containerLogMaxSize 10Mi, containerLogMaxFiles 5: kubernetes pkg/kubelet/apis/config/v1beta1/
# defaults.go).
MONITOR_INTERVAL_S = 10.0
CRI_PREFIX_BYTES = len("2026-12-01T14:00:00.123456789Z stdout F ")


def prom_duration(seconds: float) -> str:
    """prometheus/common model.Duration.String(), which Loki's /config uses for durations:
    years and weeks only when exact, then d, h, m, s, ms (`168h` -> `1w`, `24h` -> `1d`)."""
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult, exact in (
        ("y", 365 * 86400_000, True), ("w", 7 * 86400_000, True), ("d", 86400_000, False),
        ("h", 3600_000, False), ("m", 60_000, False), ("s", 1000, False), ("ms", 1, False),
    ):  # fmt: skip
        if exact and ms % mult:
            continue
        if ms // mult:
            out += f"{ms // mult}{unit}"
            ms -= (ms // mult) * mult
    return out


def go_float_e(value: float) -> str:
    """strconv.FormatFloat(v, 'e', -1, 64): the shortest digits, a two-digit signed exponent
    (0.15 -> "1.5e-01", 2.0 -> "2e+00")."""
    mantissa, exponent = f"{Decimal(repr(value)).normalize():e}".split("e")
    return f"{mantissa}e{int(exponent):+03d}"


def go_duration_seconds(text: object) -> float:
    """Seconds of a duration as our values file writes it (`168h`, `30s`, `5m`, `1d`)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, pos = 0.0, 0
    value = str(text)
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(value):
        raise ValueError(f"not a duration: {text!r}")
    return total


def config_from_values(values_file: Path = LOKI_VALUES) -> dict:
    """The parts of Loki's running configuration the checkers read, as Loki would print them for
    our values: the chart copies `loki.compactor` and `loki.limits_config` through
    (grafana-community/loki 18.11.0 values.yaml); Loki fills in its defaults
    (grafana/loki v3.7 pkg/compactor/config.go: retention_enabled false, delete_request_store
    ""; pkg/validation/limits.go: retention_period 0s, retention_stream omitted when empty)."""
    loki = (yaml.safe_load(values_file.read_text()) or {}).get("loki", {})
    compactor = {
        "retention_enabled": False,
        "delete_request_store": "",
        **loki.get("compactor", {}),
    }
    limits = dict(loki.get("limits_config") or {})
    limits["retention_period"] = prom_duration(
        go_duration_seconds(limits.get("retention_period", "0s"))
    )
    streams = [
        {**s, "period": prom_duration(go_duration_seconds(s["period"]))}
        for s in limits.pop("retention_stream", None) or []
    ]
    if streams:
        limits["retention_stream"] = streams
    return {"compactor": compactor, "limits_config": limits, "ruler": loki.get("rulerConfig", {})}


# -- a tiny LogQL metric evaluator for the rules ------------------------------------------------
def _top_level(expr: str, ops: tuple[str, ...]) -> tuple[int, str] | None:
    """Position and text of the last operator of `ops` outside parentheses and braces."""
    depth, quoted, found = 0, False, None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"' and (i == 0 or expr[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "({[":
            depth += 1
        elif not quoted and ch in ")}]":
            depth -= 1
        elif not quoted and depth == 0:
            for op in ops:
                if expr.startswith(op, i):
                    found = (i, op)
                    i += len(op) - 1
                    break
        i += 1
    return found


class RuleEvaluator:
    """Evaluates the LogQL forms the lab's rules use, as one series or none (None), at time t.

    Semantics follow Prometheus/LogQL: a range aggregation over a window without lines returns
    no series (so `count_over_time(...) == 0` never holds), absent_over_time returns 1 only when
    nothing matched, and a comparison filters the series (grafana/loki v3.7
    pkg/logql/engine.go and pkg/logql/syntax; Loki docs "Metric queries").
    """

    def __init__(self, loki: FakeLoki):
        self.loki = loki

    def lines(self, query: str, start_ns: int, end_ns: int) -> int:
        matchers, stages = parse_logql(query)
        horizon = end_ns - int(self.loki.ingest_delay * 1e9)  # not yet queryable at end_ns
        return sum(
            1
            for ts, labels, line in self.loki.lines
            if start_ns < ts <= min(end_ns, horizon)
            and labels.get("pod") not in self.loki.forget_pods
            and match_labels(labels, matchers)
            and _apply(labels, line, stages) is not None
        )

    def value(self, expr: str, t_ns: int) -> float | None:
        expr = expr.strip()
        cmp = _top_level(expr, (">=", "<=", "==", "!=", ">", "<"))
        if cmp:
            pos, op = cmp
            left = self.value(expr[:pos], t_ns)
            right = float(expr[pos + len(op) :].strip())
            if left is None:
                return None
            holds = {
                ">": left > right, "<": left < right, ">=": left >= right,
                "<=": left <= right, "==": left == right, "!=": left != right,
            }[op]  # fmt: skip
            return left if holds else None
        div = _top_level(expr, ("/",))
        if div:
            num, den = self.value(expr[: div[0]], t_ns), self.value(expr[div[0] + 1 :], t_ns)
            return None if num is None or den in (None, 0) else num / den
        m = re.fullmatch(r"(sum|max|min|avg)(?:\s+by\s*\([^)]*\))?\s*\((.*)\)", expr, re.S)
        if m:
            return self.value(m.group(2), t_ns)
        m = re.fullmatch(r"vector\(\s*([\d.]+)\s*\)", expr)
        if m:
            return float(m.group(1))
        m = re.fullmatch(
            r"(rate|count_over_time|absent_over_time)\((.*)\[(\d+[smhd])\]\s*\)", expr, re.S
        )
        if not m:
            raise ValueError(f"this fake does not evaluate {expr!r}")
        window = go_duration_seconds(m.group(3))
        n = self.lines(m.group(2), t_ns - int(window * 1e9), t_ns)
        if m.group(1) == "absent_over_time":
            return 1.0 if n == 0 else None
        if n == 0:
            return None
        return n / window if m.group(1) == "rate" else float(n)


@dataclass
class RuleState:
    group: str
    file: str
    rule: dict
    interval: float
    state: str = "inactive"
    active_at: float | None = None
    value: float | None = None
    health: str = "unknown"
    last_error: str = ""
    last_eval: float | None = None


class RulerLoki(FakeLoki):
    """FakeLoki plus the ruler API and /config."""

    def __init__(self, base: FakeLoki, config: dict, rules_yaml: str | None, eval_error: str = ""):
        super().__init__(
            base.clock, ready_after=base.ready_after, ingest_delay=base.ingest_delay,
            records=base.records, requests=base.requests, forget_pods=base.forget_pods,
            auth_enabled=base.auth_enabled,
        )  # fmt: skip
        self.config = config
        self.eval_error = eval_error
        self.evaluator = RuleEvaluator(self)
        self.rules: list[RuleState] = []
        self.loaded_at = self.clock.monotonic()
        self.load_rules(rules_yaml)

    def load_rules(self, rules_yaml: str | None) -> None:
        """A rules file as the local rule store reads it. A file that does not parse (YAML or
        LogQL) loads no group at all: the local client returns the parse error for the whole
        tenant (grafana/loki v3.7 pkg/ruler/rulestore/local/local.go, "error parsing %s")."""
        self.rules = []
        self.loaded_at = self.clock.monotonic()
        if not rules_yaml:
            return
        try:
            doc = yaml.safe_load(rules_yaml) or {}
            states = []
            for group in doc.get("groups", []):
                interval = go_duration_seconds(group.get("interval", "1m"))
                for rule in group.get("rules", []):
                    self._parse_check(rule["expr"])
                    states.append(RuleState(group["name"], "alert-rules.yaml", rule, interval))
        except (yaml.YAMLError, ValueError, KeyError):
            return
        self.rules = states

    def _parse_check(self, expr: str) -> None:
        for m in re.finditer(r"\{[^}]*\}[^\[\)]*", expr):
            parse_logql(m.group(0).strip())

    def _evaluate(self) -> None:
        """Run every evaluation due up to now, at its own time (a rule group ticks every
        `interval`; an alert goes inactive -> pending -> firing after `for`, and back to
        inactive when its expression returns nothing: prometheus/prometheus rules/alerting.go)."""
        now = self.clock.monotonic()
        wall0 = self.clock.time_ns() - int(now * 1e9)
        for r in self.rules:
            t = (r.last_eval if r.last_eval is not None else self.loaded_at) + r.interval
            while t <= now:
                r.last_eval = t
                if self.eval_error:
                    r.health, r.last_error = "err", self.eval_error
                    t += r.interval
                    continue
                value = self.evaluator.value(r.rule["expr"], wall0 + int(t * 1e9))
                r.health, r.value = "ok", value
                hold = go_duration_seconds(r.rule.get("for", "0s"))
                if value is None:
                    r.state, r.active_at = "inactive", None
                elif r.state == "inactive":
                    r.state, r.active_at = ("firing" if hold == 0 else "pending"), t
                elif r.state == "pending" and t - r.active_at >= hold:
                    r.state = "firing"
                t += r.interval

    def _iso(self, t: float | None) -> str:
        if t is None:
            return ZERO_TIME
        wall = self.clock.time_ns() - int((self.clock.monotonic() - t) * 1e9)
        return datetime.fromtimestamp(wall / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")

    def _alert(self, r: RuleState) -> dict:
        # pkg/ruler/base/api.go Alert: labels (alertname + rule labels), annotations, state,
        # activeAt, value formatted with strconv.FormatFloat(v, 'e', -1, 64).
        return {
            "labels": {"alertname": r.rule["alert"], **r.rule.get("labels", {})},
            "annotations": r.rule.get("annotations", {}),
            "state": r.state,
            "activeAt": self._iso(r.active_at),
            "value": go_float_e(r.value or 0.0),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/config":
            self.requests.append(path)
            # pkg/loki/config_handler.go writeYAMLResponse: YAML, Content-Type text/plain.
            return httpx.Response(
                200, text=yaml.safe_dump(self.config), headers={"Content-Type": "text/plain"}
            )
        if path in ("/prometheus/api/v1/rules", "/prometheus/api/v1/alerts"):
            self.requests.append(path)
            refused = self.authenticate(request)  # the ruler API is per tenant too
            if refused is not None:
                return refused
            self._evaluate()
            if path.endswith("/alerts"):
                # PrometheusAlerts lists only active alerts (pending or firing).
                alerts = [self._alert(r) for r in self.rules if r.state != "inactive"]
                data: dict = {"alerts": alerts}
            else:
                data = {"groups": self._groups()}
            # response{Status, Data, ErrorType, Error} of pkg/ruler/base/api.go.
            return httpx.Response(
                200, json={"status": "success", "data": data, "errorType": "", "error": ""}
            )
        return super().handle(request)

    def _groups(self) -> list[dict]:
        groups: dict[str, dict] = {}
        for r in self.rules:
            g = groups.setdefault(
                r.group, {"name": r.group, "file": r.file, "rules": [], "interval": r.interval}
            )
            g["rules"].append({
                "state": r.state, "name": r.rule["alert"], "query": r.rule["expr"],
                "duration": go_duration_seconds(r.rule.get("for", "0s")),
                "labels": r.rule.get("labels", {}), "annotations": r.rule.get("annotations", {}),
                "alerts": [self._alert(r)] if r.state != "inactive" else [],
                "health": r.health, "lastError": r.last_error, "type": "alerting",
                "lastEvaluation": self._iso(r.last_eval), "evaluationTime": 0.001,
            })  # fmt: skip
        return list(groups.values())


# -- the cluster ---------------------------------------------------------------------------------
def kubelet_from_kind(kind_config: Path = KIND_CONFIG) -> dict:
    """The kubelet configuration our kind config gives every node (its KubeletConfiguration
    patch over the kubelet defaults: containerLogMaxSize 10Mi, containerLogMaxFiles 5)."""
    config = {"containerLogMaxSize": "10Mi", "containerLogMaxFiles": 5}
    for patch in (yaml.safe_load(kind_config.read_text()) or {}).get("kubeadmConfigPatches", []):
        doc = yaml.safe_load(patch) or {}
        if doc.get("kind") == "KubeletConfiguration":
            config.update({k: v for k, v in doc.items() if k.startswith("containerLog")})
    return config


def size_of(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(quantity))
    return int(m.group(1)) * {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}[m.group(2)]


@dataclass
class Extras:
    """Switches for the four new exercises; the defaults are the repository's lab, solved."""

    rules_yaml: str | None = SOLVED_RULES
    ruler_enabled: bool = True
    eval_error: str = ""
    config: dict | None = None  # None: what our loki-values.yaml gives
    kubelet: dict | None = None  # None: what our kind config gives
    rotates: bool = True
    loadgen_ran: bool = True  # step 3's traffic Job left its lines in Loki
    incident_service: str | None = "catalog"
    incident_rate: float = 0.3
    incident_requests: int = 10  # one cycle of the 3 failing / 3 recovering / 4 clean pattern
    answers: dict | None = field(default_factory=lambda: dict(SOLVED_INCIDENT))


class ExtrasCluster(FakeCluster):
    def __init__(self, scenario: Scenario | None = None, extras: Extras | None = None):
        self.x = extras or Extras()
        self.rotated: dict[tuple[str, str], list[list[str]]] = {}
        self.kubelet = dict(self.x.kubelet or kubelet_from_kind())
        self.next_check = MONITOR_INTERVAL_S
        super().__init__(scenario)
        config = self.x.config if self.x.config is not None else config_from_values()
        self.loki = RulerLoki(self.loki, config, self.x.rules_yaml, self.x.eval_error)
        if self.x.loadgen_ran:
            self.loadgen_lines()
        if self.x.incident_service:
            self.inject_fault(self.x.incident_service, self.x.incident_rate)
        # What was written before the checker runs has been shipped and is queryable by then.
        self.clock.sleep(self.loki.ingest_delay + 1)

    # -- the kubelet: configz and rotation ---------------------------------------------------
    def kubelet_config(self, node):
        # GET /api/v1/nodes/<node>/proxy/configz -> {"kubeletconfig": {...}}; Kube returns the
        # inner object.
        return dict(self.kubelet)

    def _rotate_due(self) -> None:
        """At each monitor tick, rename every current file at or past containerLogMaxSize and
        start an empty one; keep containerLogMaxFiles files in all (kubernetes
        pkg/kubelet/logs/container_log_manager.go: processContainer rotates when the size is not
        below MaxSize; removeExcessLogs keeps MaxFiles-2 older rotated files, then the newly
        rotated one and the new current file make MaxFiles)."""
        if not self.x.rotates:
            return
        limit = size_of(self.kubelet["containerLogMaxSize"])
        keep = int(self.kubelet["containerLogMaxFiles"]) - 1
        while self.clock.monotonic() >= self.next_check:
            self.next_check += MONITOR_INTERVAL_S
            # FakeCluster.cri holds each container's current file as (ts, stream, content).
            for key, lines in list(self.cri.items()):
                if sum(len(line) + 1 + CRI_PREFIX_BYTES for _, _, line in lines) >= limit:
                    old = self.rotated.setdefault(key, [])
                    old.append([line for _, _, line in lines])
                    del old[:-keep]
                    self.cri[key] = []

    def write(self, pod: dict, fields: dict | None, raw: str | None = None) -> None:
        self._rotate_due()
        super().write(pod, fields, raw)

    def pod_logs(self, namespace, name, container, *, tail_lines=None):
        # The kubelet serves `kubectl logs` from the current file only (docs "Logging
        # Architecture": only the latest log file is available through kubectl logs).
        self._rotate_due()
        return super().pod_logs(namespace, name, container, tail_lines=tail_lines)

    def loadgen_lines(self) -> None:
        """The traffic Job's pod as the agent labels it (namespace, pod, container, app), with
        the one JSON summary line `python -m bookstore loadgen` prints (bookstore/loadgen.py)."""
        labels = {"namespace": self.app_ns, "pod": "loadgen-x7k2p", "container": "loadgen",
                  "app": "loadgen"}  # fmt: skip
        summary = {"time": self.clock.iso(), "level": "INFO", "msg": "loadgen finished",
                   "service": "loadgen", "requests": 200, "succeeded": 192}  # fmt: skip
        tenant = self.app_ns if self.s.loki_auth else "fake"  # as FakeCluster.write does
        self.loki.push(labels, json.dumps(summary), tenant=tenant)

    # -- the incident -----------------------------------------------------------------------
    def inject_fault(self, service: str, rate: float) -> None:
        """`kubectl set env deployment/<service> FAULT_RATE=<rate>`, then traffic through orders
        as the services log it: per ten requests three fail every connection attempt (two WARN
        retries naming the database, the ERROR of bookstore/web.py, a 503 request line, and
        orders' 503), three fail once and recover (one WARN), four succeed
        (bookstore/faults.py FaultSwitch.failing_attempts: a share `rate` fails, as many again
        fail once)."""
        dep = next(d for d in self.deployments if d["metadata"]["name"] == service)
        for c in dep["spec"]["template"]["spec"]["containers"]:
            c.setdefault("env", []).append({"name": "FAULT_RATE", "value": str(rate)})
        faulty = [p for p in self.pods.values() if p["metadata"]["labels"].get("app") == service]
        front = [p for p in self.pods.values() if p["metadata"]["labels"].get("app") == "orders"]
        database = f"{service}-db"
        error = f"could not connect to database {database!r}: connection refused (simulated fault)"
        for i in range(self.x.incident_requests):
            pod, entry = faulty[i % len(faulty)], front[i % len(front)]
            # The request context every line of a request carries (bookstore/log-schema.json).
            base = {"trace_id": secrets.token_hex(16), "span_id": secrets.token_hex(8),
                    "trace_flags": "01", "request_id": secrets.token_hex(8)}  # fmt: skip
            done = {"method": "POST", "duration_ms": 4.2}
            failing = {0: 3, 1: 3, 2: 3, 3: 1, 4: 1, 5: 1}.get(i % 10, 0)
            for attempt in range(1, min(failing, 2) + 1):
                self.write(pod, {**base, "level": "WARN",
                                 "msg": "database connection failed, retrying", "error": error,
                                 "error_type": "DatabaseConnectionError",
                                 "retry_attempt": attempt, "database": database})  # fmt: skip
            if failing == 3:
                self.write(pod, {**base, "level": "ERROR", "msg": "Database connection failed",
                                 "error": error, "error_type": "DatabaseConnectionError",
                                 "retry_attempt": 3})  # fmt: skip
            status = 503 if failing == 3 else 200
            self.write(pod, {**base, **done, "level": "ERROR" if failing == 3 else "INFO",
                             "msg": "request completed", "route": "/books/{book_id}/reserve",
                             "status": status})  # fmt: skip
            if entry is not pod:
                self.write(entry, {**base, **done, "level": "ERROR" if failing == 3 else "INFO",
                                   "msg": "request completed", "route": "/orders",
                                   "status": 503 if failing == 3 else 201})  # fmt: skip

    def service_client(self, namespace, service, port):
        if (namespace, service, port) == (NS_LOGGING, "loki", 3100) and not self.x.ruler_enabled:
            base = f"{self.host}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/"
            return _ProxyClient(base_url=base, transport=httpx.MockTransport(self._without_ruler))
        return super().service_client(namespace, service, port)

    def _without_ruler(self, request: httpx.Request) -> httpx.Response:
        # With the ruler API off its routes are not registered and Loki answers 404
        # (grafana/loki v3.7 pkg/loki/modules.go registers them only when ruler.enable_api is on).
        if request.url.path.startswith("/prometheus/"):
            return httpx.Response(404, text="404 page not found\n")
        return self.loki.handle(request)


def write_answers(answers: dict | None, folder: Path | None = None) -> Path:
    """An exercises/lab2 folder holding these incident answers (none: the file is absent)."""
    folder = folder or Path(tempfile.mkdtemp(prefix="lab2-exercises-"))
    if answers is not None:
        (folder / "incident.yaml").write_text(yaml.safe_dump(answers, sort_keys=False))
    return folder


def fake_lab(
    scenario: Scenario | None = None, extras: Extras | None = None, **switches
) -> tuple[Lab, ExtrasCluster]:
    """A Lab over an ExtrasCluster (Loki in `logging`, as tests/fakes.fake_lab names it)."""
    cluster = ExtrasCluster(scenario or Scenario(**switches), extras)
    names = {"namespace": NS_LOGGING, "loki": "loki", "alloy": "alloy", "grafana": "grafana"}
    lab = Lab(cluster, clock=cluster.clock, names=names)
    lab.exercises_dir = write_answers(cluster.x.answers)
    weakref.finalize(lab, shutil.rmtree, lab.exercises_dir, True)  # no temp folder left behind
    return lab, cluster


__all__ = ["NS_APP", "Extras", "ExtrasCluster", "RulerLoki", "fake_lab", "prom_duration"]
