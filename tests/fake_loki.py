"""A fake Loki 3.7 for the offline tests: an httpx.MockTransport handler no kinder than Loki.

Each behaviour cites where real Loki does the same (grafana/loki at tag v3.7.6 unless said):

- `/ready` answers 503 "Ingester not ready: waiting for 15s after being ready" at first
  (vendor/github.com/grafana/dskit/ring/lifecycler.go CheckReady, `min_ready_duration` 15s).
- A pushed line becomes queryable when its batch arrives (`arrives`, on the fake clock), not
  when it was stamped: its timestamp is the node's clock (the CRI timestamp `stage.cri` keeps),
  which may be minutes off this machine's.
- Loki adds the stream label `service_name` from `app` (`discover_service_name`, whose
  default list in pkg/validation/limits.go holds `app`), and `detected_level` as structured
  metadata from the line's level (pkg/distributor/field_detection.go, `discover_log_levels`;
  pkg/util/constants/levels.go LevelLabel), lower-cased.
- query_range: structured metadata and `| json` fields are merged into the stream labels
  (one stream per full label set) unless the request carries
  `X-Loki-Response-Encoding-Flags: categorize-labels`; then streams keep only their own labels,
  `data.encodingFlags` says so and each value is `[ts, line, {"structuredMetadata": {...},
  "parsed": {...}}]` (pkg/logql/engine.go readStreams, pkg/util/marshal/query.go
  encodeStream, pkg/util/httpreq/encoding_flags.go).
- Metric queries: an un-aggregated `count_over_time(... | json [5m])` has one series per label
  set; above `max_query_series` (500) Loki answers 400 "maximum number of series (500) reached
  for a single query; ..." (pkg/logql/engine.go JoinSampleVector, pkg/logqlmodel/error.go
  NewSeriesLimitError; pkg/util/server/error.go maps it to 400). With
  `align_queries_with_step` (the chart sets it) start and end are cut down to a multiple of the
  step (pkg/querier/queryrange/queryrangebase/step_align.go).
- Log queries on the instant endpoint get 400 since Loki 3.2 (grafana/loki#13421).
- `/labels`, `/label/<name>/values` and `/series` see stream labels only (the index), never
  structured metadata.
- Tenants. Without auth (the laptop lab) every line is in the single tenant `fake` and no
  header is needed; with `auth_enabled: true` (a class, grafana-community/loki 18.11.0
  values.yaml `loki.auth_enabled`) each line is in the tenant its pusher named, and every API
  call but `/ready` must name one in `X-Scope-OrgID`: without it Loki answers 401 "no org id"
  (grafana/dskit middleware/http_auth.go AuthenticateUser; Loki docs, operations/multi-tenancy:
  "a request that does not include the X-Scope-OrgID header fails with an HTTP 401
  Unauthorized error and the message no org id"). A query sees its own tenant's lines only;
  `A|B` (several tenants) needs `multi_tenant_queries_enabled`, off by default, so it is refused
  here (dskit tenant.TenantID: "multiple org IDs present").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

INSTANT_LOG_QUERY_ERROR = (
    "log queries are not supported as an instant query type, please change your query to a "
    "range query type"
)
NOT_READY = "Ingester not ready: waiting for 15s after being ready\n"
SERIES_LIMIT_ERROR = (
    "maximum number of series ({limit}) reached for a single query; consider reducing query "
    "cardinality by adding more specific stream selectors, reducing the time range, or "
    "aggregating results with functions like sum(), count() or topk()"
)
FLAGS_HEADER = "x-loki-response-encoding-flags"

_STRING = r'"((?:[^"\\]|\\.)*)"|`([^`]*)`'
SELECTOR = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
STAGE = re.compile(
    rf"\s*(?:(\|=|!=|\|~|!~)\s*(?:{_STRING})|\|\s*json\b|\|\s*(\w+)\s*(=|!=)\s*(?:{_STRING}))"
)
METRIC = re.compile(
    r"^\s*(?:sum\s+by\s*\(([\w\s,]*)\)\s*\(\s*)?count_over_time\s*\((.*)\[(\d+)([smh])\]\s*\)"
    r"\s*(\))?\s*$",
    re.DOTALL,
)
UNITS = {"s": 1, "m": 60, "h": 3600}


def _unquote(double: str | None, back: str | None) -> str:
    return back if double is None else double.replace('\\"', '"').replace("\\\\", "\\")


def parse_logql(query: str):
    """(matchers, stages) of a log query; ValueError for what this subset does not know."""
    query = query.strip()
    if not query.startswith("{") or "}" not in query:
        raise ValueError(f"not a log query: {query!r}")
    close = query.index("}")
    inner, rest = query[1:close], query[close + 1 :]
    matchers = []
    pos = 0
    while pos < len(inner):
        m = SELECTOR.match(inner, pos)
        if not m:
            raise ValueError(f"parse error in selector at {inner[pos:]!r}")
        matchers.append((m.group(1), m.group(2), m.group(3).replace('\\"', '"')))
        pos = m.end()
    stages = []
    pos = 0
    while rest[pos:].strip():
        m = STAGE.match(rest, pos)
        if not m:
            raise ValueError(f"parse error at {rest[pos:]!r}")
        if m.group(1):
            stages.append(("line", m.group(1), _unquote(m.group(2), m.group(3))))
        elif m.group(4):
            stages.append(("label", m.group(4), m.group(5), _unquote(m.group(6), m.group(7))))
        else:
            stages.append(("json",))
        pos = m.end()
    return matchers, stages


def match_labels(labels: dict, matchers) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def apply_stages(labels: dict, line: str, stages) -> dict | None:
    """The fields `| json` extracted (the "parsed" labels), or None when a stage drops the line.
    Label filters see stream labels, structured metadata and parsed fields alike."""
    parsed: dict[str, str] = {}
    for stage in stages:
        if stage[0] == "line":
            _, op, text = stage
            hit = re.search(text, line) is not None if op in ("|~", "!~") else text in line
            if hit != (op in ("|=", "|~")):
                return None
        elif stage[0] == "json":
            try:
                obj = json.loads(line)
            except ValueError:
                parsed["__error__"] = "JSONParserErr"
                continue
            if isinstance(obj, dict):
                for key, value in obj.items():
                    if not isinstance(value, dict | list):
                        parsed[key] = str(value)
        else:
            _, name, op, value = stage
            have = parsed.get(name, labels.get(name))
            if (have == value) != (op == "="):
                return None
    return parsed


SINGLE_TENANT = "fake"  # Loki's tenant id when auth_enabled is false (operations/multi-tenancy)
TENANT_HEADER = "x-scope-orgid"


@dataclass
class Record:
    ts: int  # the line's timestamp: the node's clock
    labels: dict[str, str]  # stream labels
    line: str
    metadata: dict[str, str]  # structured metadata
    arrives: float  # fake-clock monotonic time at which the agent's batch reaches Loki
    tenant: str = SINGLE_TENANT  # X-Scope-OrgID of the push


@dataclass
class FakeLoki:
    clock: object  # tests.fakes.FakeClock
    ready_after: float = 15.0  # Loki: "Ingester not ready: waiting for 15s after being ready"
    ingest_delay: float = 3.0  # agent batch + ingester: a line is queryable a few s later
    max_series: int = 500  # limits_config.max_query_series default
    align_queries_with_step: bool = True  # the Loki chart sets it (query_range config)
    records: list[Record] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    headers_seen: list[dict] = field(default_factory=list)
    forget_pods: set[str] = field(default_factory=set)  # lines of these pods vanish
    auth_enabled: bool = False  # loki.auth_enabled: one tenant per X-Scope-OrgID
    asking_tenant: str = SINGLE_TENANT  # the tenant of the request being answered

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def push(
        self,
        labels: dict,
        line: str,
        ts_ns: int | None = None,
        *,
        metadata: dict | None = None,
        delay: float | None = None,
        tenant: str = SINGLE_TENANT,
    ) -> Record:
        """Store a line as the agent would push it (timestamp: now, or the CRI one given)."""
        labels = dict(labels)
        metadata = dict(metadata or {})
        if "app" in labels:
            labels.setdefault("service_name", labels["app"])
        level = _json_level(line)
        if level:
            metadata.setdefault("detected_level", level.lower())
        ts = self.clock.time_ns() if ts_ns is None else ts_ns
        arrives = self.clock.monotonic() + (self.ingest_delay if delay is None else delay)
        record = Record(ts, labels, line, metadata, arrives, tenant)
        self.records.append(record)
        return record

    @property
    def lines(self) -> list[tuple[int, dict, str]]:
        return [(r.ts, r.labels, r.line) for r in self.records]

    def visible(self, start: int, end: int, at: float | None = None):
        """Lines Loki holds with start <= ts < end, as of fake-clock time `at` (default now):
        a line is there once its batch has arrived. `at` is for the ruler fake
        (tests/fakes_ruler.py), whose evaluations catch up on past ticks."""
        now = self.clock.monotonic() if at is None else at
        for r in self.records:
            if (
                r.arrives <= now
                and start <= r.ts < end
                and r.labels.get("pod") not in (self.forget_pods)
                and r.tenant == self.asking_tenant
            ):
                yield r

    # -- HTTP --------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        self.headers_seen.append(dict(request.headers))
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        categorize = "categorize-labels" in request.headers.get(FLAGS_HEADER, "")
        if path == "/ready":
            if self.clock.monotonic() < self.ready_after:
                return httpx.Response(503, text=NOT_READY)
            return httpx.Response(200, text="ready\n")
        refused = self.authenticate(request)
        if refused is not None:
            return refused
        if path == "/loki/api/v1/query":
            if params.get("query", "").lstrip().startswith("{"):
                return httpx.Response(400, text=INSTANT_LOG_QUERY_ERROR + "\n")
            return self.metric(params, instant=True)
        if path == "/loki/api/v1/query_range":
            if METRIC.match(params.get("query", "")):
                return self.metric(params, instant=False)
            return self.query_range(params, categorize)
        start = int(params.get("start", 0))
        end = int(params.get("end", self.clock.time_ns() + 1))
        if path == "/loki/api/v1/labels":
            names = sorted({k for r in self.visible(start, end) for k in r.labels})
            return httpx.Response(200, json={"status": "success", "data": names})
        m = re.fullmatch(r"/loki/api/v1/label/(\w+)/values", path)
        if m:
            name = m.group(1)
            values = sorted({r.labels[name] for r in self.visible(start, end) if name in r.labels})
            return httpx.Response(200, json={"status": "success", "data": values})
        if path == "/loki/api/v1/series":
            matches = parse_qs(request.url.query.decode()).get("match[]", [])
            try:
                selectors = [parse_logql(m)[0] for m in matches]
            except ValueError as e:
                return httpx.Response(400, text=f"parse error: {e}\n")
            series = {
                tuple(sorted(r.labels.items()))
                for r in self.visible(start, end)
                if any(match_labels(r.labels, sel) for sel in selectors)
            }
            data = [dict(s) for s in sorted(series)]
            return httpx.Response(200, json={"status": "success", "data": data})
        return httpx.Response(404, text="404 page not found\n")

    def authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Pick the request's tenant (the module docstring says how Loki does); an answer
        when the request is refused."""
        if not self.auth_enabled:
            self.asking_tenant = SINGLE_TENANT
            return None
        org = request.headers.get(TENANT_HEADER, "")
        if not org:
            return httpx.Response(401, text="no org id\n")
        if "|" in org:
            return httpx.Response(400, text="multiple org IDs present\n")
        self.asking_tenant = org
        return None

    def _select(self, query: str, start: int, end: int):
        """(record, parsed) for every visible line the log query keeps."""
        matchers, stages = parse_logql(query)
        for r in self.visible(start, end):
            if not match_labels(r.labels, matchers):
                continue
            parsed = apply_stages({**r.labels, **r.metadata}, r.line, stages)
            if parsed is not None:
                yield r, parsed

    def query_range(self, params: dict, categorize: bool) -> httpx.Response:
        for key in ("start", "end"):
            if key in params and not params[key].isdigit():
                return httpx.Response(400, text=f"invalid parameter {key}: {params[key]!r}\n")
        now = self.clock.time_ns()
        start = int(params.get("start", now - 3600 * 10**9))
        end = int(params.get("end", now))
        limit = int(params.get("limit", 100))
        try:
            hits = list(self._select(params["query"], start, end))
        except (KeyError, ValueError) as e:
            return httpx.Response(400, text=f"parse error: {e}\n")
        backward = params.get("direction", "backward") == "backward"
        hits.sort(key=lambda h: h[0].ts, reverse=backward)
        streams: dict[tuple, list] = {}
        for r, parsed in hits[:limit]:
            if categorize:
                key = tuple(sorted(r.labels.items()))
                extra = {}
                if r.metadata:
                    extra["structuredMetadata"] = dict(r.metadata)
                if parsed:
                    extra["parsed"] = dict(parsed)
                value = [str(r.ts), r.line, extra]
            else:
                key = tuple(sorted({**r.labels, **r.metadata, **parsed}.items()))
                value = [str(r.ts), r.line]
            streams.setdefault(key, []).append(value)
        data = {
            "resultType": "streams",
            "result": [{"stream": dict(k), "values": v} for k, v in streams.items()],
            "stats": {},
        }
        if categorize:
            data["encodingFlags"] = ["categorize-labels"]
        return httpx.Response(200, json={"status": "success", "data": data})

    def metric(self, params: dict, *, instant: bool) -> httpx.Response:
        m = METRIC.match(params.get("query", ""))
        if not m:
            return httpx.Response(400, text="parse error: this fake knows count_over_time only\n")
        by, inner, n, unit, closing = m.groups()
        if (by is None) != (closing is None):
            return httpx.Response(400, text="parse error: unbalanced parentheses\n")
        window = int(n) * UNITS[unit] * 10**9
        now = self.clock.time_ns()
        if instant:
            steps = [int(params.get("time", now))]
        else:
            start = int(params.get("start", now - 3600 * 10**9))
            end = int(params.get("end", now))
            step_s = _step_seconds(params.get("step"), start, end)
            step = int(step_s * 10**9)
            if self.align_queries_with_step:
                start, end = start // step * step, end // step * step
            steps = list(range(start, end + 1, step))
        try:
            hits = list(self._select(inner, min(steps) - window, max(steps) + 1))
        except ValueError as e:
            return httpx.Response(400, text=f"parse error: {e}\n")
        keys = [k.strip() for k in by.split(",") if k.strip()] if by is not None else None
        series: dict[tuple, dict[int, int]] = {}
        for r, parsed in hits:
            labels = {**r.labels, **r.metadata, **parsed}
            if keys is not None:
                labels = {k: labels[k] for k in keys if k in labels}
            counts = series.setdefault(tuple(sorted(labels.items())), {})
            for t in steps:
                if t - window < r.ts <= t:
                    counts[t] = counts.get(t, 0) + 1
            if len(series) > self.max_series:
                return httpx.Response(400, text=SERIES_LIMIT_ERROR.format(limit=self.max_series))
        if instant:
            result = [
                {"metric": dict(k), "value": [steps[0] / 1e9, str(c.get(steps[0], 0))]}
                for k, c in series.items()
                if c
            ]
            data = {"resultType": "vector", "result": result}
        else:
            result = [
                {"metric": dict(k), "values": [[t / 1e9, str(c[t])] for t in steps if t in c]}
                for k, c in series.items()
            ]
            data = {"resultType": "matrix", "result": [s for s in result if s["values"]]}
        return httpx.Response(200, json={"status": "success", "data": data})


def _step_seconds(step: str | None, start: int, end: int) -> float:
    """The query's step; Loki's default is the range / 250 s, at least 1 s
    (pkg/loghttp/params.go defaultQueryRangeStep)."""
    if step:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", step)
        if match:
            return float(match.group(1)) * UNITS.get(match.group(2) or "s", 1)
    return max(1.0, math.floor((end - start) / 1e9 / 250))


def _json_level(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    level = obj.get("level") if isinstance(obj, dict) else None
    return level if isinstance(level, str) else None
