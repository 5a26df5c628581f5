"""A small Loki HTTP client: the one seam between the checkers and Loki.

It speaks Loki's query API over any `httpx.Client` whose base URL is Loki's root, so the same
code runs through the Kubernetes API server's service proxy
(`.../api/v1/namespaces/logging/services/loki:3100/proxy/`), a kind-mapped NodePort, or an
`httpx.MockTransport` in the tests. Timestamps are Unix nanoseconds, sent as strings as
Loki documents them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import yaml

from checks.polling import Clock, DeadlineExceeded, SystemClock, poll

# Since Loki 3.2 the instant endpoint refuses log selectors with this text (grafana/loki#13421).
INSTANT_LOG_QUERY_TEXT = "not supported as an instant query"
# Asked of Loki on every query: keep stream labels apart from structured metadata (`trace_id`
# kept as metadata, Loki's own `detected_level`) and from `| json` fields. Without it Loki merges
# all three into the stream labels (grafana/loki pkg/logql/engine.go readStreams,
# pkg/util/marshal/query.go encodeStream), and a checker would take metadata for a label.
ENCODING_FLAGS = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
# Answers of the API server's proxy that say "try again" rather than "wrong": the Service has
# no ready endpoint for a moment (rollout, pod deleted), or the dial failed (503 Status,
# k8s.io/apimachinery pkg/util/proxy/transport.go; 502 from the reverse proxy).
TRANSIENT_STATUSES = (502, 503, 504)
# Loki with `auth_enabled: true` (a class: one tenant per learner) takes the tenant of every
# query from this header, and refuses a query without it with 401 "no org id" (grafana/dskit
# middleware/http_auth.go AuthenticateUser, user.ExtractOrgIDFromHTTPRequest).
TENANT_HEADER = "X-Scope-OrgID"


class LokiError(RuntimeError):
    """Loki (or the proxy in front of it) answered with an error; the message says what to do.

    `transient` is true for an answer that may well be different a second later (a proxy 502/503,
    a refused connection): waits retry those until their deadline instead of giving a verdict.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status, self.transient = status, transient


class InstantLogQueryError(LokiError):
    """A log query was sent to /loki/api/v1/query: Loki >= 3.2 answers 400 to that."""


@dataclass(frozen=True)
class Entry:
    """One log line as Loki returned it, with the labels of its stream."""

    ts_ns: int
    line: str
    labels: dict[str, str] = field(default_factory=dict)  # the stream's (indexed) labels only
    structured_metadata: dict[str, str] = field(default_factory=dict)
    parsed: dict[str, str] = field(default_factory=dict)  # from `| json`, `| logfmt` ...


@dataclass(frozen=True)
class Found:
    """What `wait_for` found, and how long after the wait began it became visible."""

    entries: list[Entry]
    seconds: float


class Loki:
    """Query Loki. Every method raises `LokiError` with the status and body on failure."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        where: str = "Loki",
        clock: Clock | None = None,
        transient_retries: int = 3,
        tenant: str | None = None,
    ):
        self.http = http
        self.tenant = tenant  # None: a Loki without auth (the laptop lab)
        self.headers = dict(ENCODING_FLAGS) | ({TENANT_HEADER: tenant} if tenant else {})
        self.where = where  # how to name this Loki in messages (e.g. the service proxy path)
        self.clock = clock or SystemClock()
        self.transient_retries = transient_retries  # tries of one call on a proxy 502/503

    # -- plumbing -----------------------------------------------------------------------
    def _get(self, path: str, params: dict | list | None = None) -> httpx.Response:
        try:
            return self.http.get(path, params=params, headers=self.headers)
        except httpx.HTTPError as e:
            raise LokiError(
                f"could not reach {self.where} ({type(e).__name__}: {e}). "
                "Run `kubectl -n logging get pods,svc` to see whether Loki is running.",
                transient=True,
            ) from e

    def _json(self, path: str, params: dict | list | None = None) -> dict:
        """One call; a transient error (proxy 502/503, refused) is tried again a few times,
        a second apart, before it is raised."""
        for attempt in range(1, self.transient_retries + 1):
            try:
                return self._json_once(path, params)
            except LokiError as e:
                if not e.transient or attempt == self.transient_retries:
                    raise
                self.clock.sleep(1)
        raise AssertionError("unreachable")

    def _json_once(self, path: str, params: dict | list | None = None) -> dict:
        response = self._get(path, params)
        if response.status_code != 200:
            body = response.text.strip()[:500]
            if response.status_code == 400 and INSTANT_LOG_QUERY_TEXT in body:
                raise InstantLogQueryError(
                    f"{self.where} answered 400 to {path}: {body!r}. Log queries (a selector "
                    "with or without line filters) only run on /loki/api/v1/query_range since "
                    "Loki 3.2; use query_range with a start and end, or wrap the query in a "
                    "metric such as count_over_time(...[5m])."
                )
            hint = ""
            if response.status_code == 503 and "no endpoints available" in body:
                hint = " The Loki Service has no ready pod: `kubectl -n logging get pods`."
            if response.status_code == 401 and "no org id" in body:
                hint = (
                    " This Loki has auth on (one tenant per learner): give the tenant with "
                    "--tenant (LAB_TENANT), which is sent as the X-Scope-OrgID header."
                )
            if "maximum number of series" in body:
                hint = (
                    " An un-aggregated metric query returns one series per label set: wrap it "
                    "in sum by (...) (...)."
                )
            raise LokiError(
                f"{self.where} answered {response.status_code} to GET {path}: {body!r}.{hint}",
                status=response.status_code,
                transient=response.status_code in TRANSIENT_STATUSES,
            )
        try:
            payload = response.json()
        except ValueError:
            raise LokiError(
                f"{self.where} answered GET {path} with non-JSON: {response.text[:200]!r}"
            ) from None
        if payload.get("status") != "success":
            raise LokiError(f"{self.where} answered GET {path} with status {payload!r}")
        return payload

    # -- the API ------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        """Loki's /ready: (True, "ready") once the ingester is up; 503 with a reason before."""
        try:
            response = self.http.get("/ready", headers=self.headers)
        except httpx.HTTPError as e:
            return False, f"{type(e).__name__}: {e}"
        return response.status_code == 200, f"{response.status_code} {response.text.strip()}"

    def query_range(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        limit: int = 100,
        direction: str = "backward",
        step: str | None = None,
    ) -> dict:
        """The `data` of /loki/api/v1/query_range (log or metric query)."""
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
        if start_ns >= end_ns:
            raise ValueError(f"start ({start_ns}) must be before end ({end_ns})")
        params = {
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns),
            "limit": str(limit),
            "direction": direction,
        }
        if step is not None:
            params["step"] = step
        return self._json("/loki/api/v1/query_range", params)["data"]

    def query(self, query: str, *, time_ns: int | None = None) -> dict:
        """The instant endpoint, for metric queries only: log queries raise InstantLogQueryError."""
        params = {"query": query}
        if time_ns is not None:
            params["time"] = str(time_ns)
        return self._json("/loki/api/v1/query", params)["data"]

    def entries(
        self,
        query: str,
        *,
        start_ns: int,
        end_ns: int,
        limit: int = 1000,
        direction: str = "forward",
    ) -> list[Entry]:
        """The lines of a log query, each with its stream's labels, returned oldest first.

        `direction` picks which end of the range `limit` keeps: forward the oldest lines,
        backward the newest.
        """
        data = self.query_range(
            query, start_ns=start_ns, end_ns=end_ns, limit=limit, direction=direction
        )
        if data.get("resultType") != "streams":
            raise LokiError(
                f"{query!r} is a metric query (result type {data.get('resultType')!r}); "
                "expected a log query that returns streams"
            )
        out = []
        for stream in data.get("result", []):
            labels = dict(stream.get("stream", {}))
            for ts, line, *rest in stream.get("values", []):
                extra = rest[0] if rest and isinstance(rest[0], dict) else {}
                out.append(
                    Entry(
                        int(ts), line, labels,
                        dict(extra.get("structuredMetadata") or {}),
                        dict(extra.get("parsed") or {}),
                    )
                )  # fmt: skip
        return sorted(out, key=lambda e: e.ts_ns)

    def labels(self, *, start_ns: int, end_ns: int) -> list[str]:
        params = {"start": str(start_ns), "end": str(end_ns)}
        return list(self._json("/loki/api/v1/labels", params).get("data") or [])

    def label_values(self, name: str, *, start_ns: int, end_ns: int) -> list[str]:
        params = {"start": str(start_ns), "end": str(end_ns)}
        path = f"/loki/api/v1/label/{name}/values"
        return list(self._json(path, params).get("data") or [])

    def series(self, match: list[str], *, start_ns: int, end_ns: int) -> list[dict[str, str]]:
        params = [("match[]", m) for m in match]
        params += [("start", str(start_ns)), ("end", str(end_ns))]
        return list(self._json("/loki/api/v1/series", params).get("data") or [])

    # -- the ruler and the running configuration ---------------------------------------
    def rule_groups(self) -> list[dict]:
        """The ruler's groups as /prometheus/api/v1/rules lists them (grafana/loki v3.7
        pkg/ruler/base/api.go: `{"status", "data": {"groups": [{"name", "file", "rules":
        [{"name", "query", "state", "health", "lastError", "type", "alerts", ...}]}]}}`)."""
        data = self._json("/prometheus/api/v1/rules").get("data") or {}
        return list(data.get("groups") or [])

    def alerts(self) -> list[dict]:
        """Active (pending or firing) alerts from /prometheus/api/v1/alerts:
        `{"data": {"alerts": [{"labels", "annotations", "state", "activeAt", "value"}]}}`."""
        data = self._json("/prometheus/api/v1/alerts").get("data") or {}
        return list(data.get("alerts") or [])

    def config(self) -> dict:
        """The configuration Loki runs with, from `/config` (YAML, text/plain; grafana/loki
        v3.7 pkg/loki/config_handler.go). Durations come back in Prometheus form (`1w`, `1d`)."""
        response = self._get("/config")
        if response.status_code != 200:
            raise LokiError(
                f"{self.where} answered {response.status_code} to GET /config: "
                f"{response.text.strip()[:300]!r}"
            )
        try:
            parsed = yaml.safe_load(response.text)
        except yaml.YAMLError as e:
            raise LokiError(f"{self.where} answered GET /config with bad YAML: {e}") from None
        if not isinstance(parsed, dict):
            raise LokiError(
                f"{self.where} answered GET /config with {type(parsed).__name__}, not a mapping"
            )
        return parsed

    # -- waiting ------------------------------------------------------------------------
    def wait_for(
        self,
        query: str,
        predicate: Callable[[list[Entry]], bool],
        *,
        start_ns: int,
        timeout: float,
        clock: Clock | None = None,
        interval: float = 1.0,
        limit: int = 1000,
        ahead_ns: int = 0,
    ) -> Found:
        """Poll `query` (range: start_ns .. now + ahead_ns) until `predicate(entries)` holds.

        `ahead_ns` covers lines stamped by a node clock that runs ahead of this machine's. A
        transient error (a proxy 502/503, a refused connection) counts as "not yet"; if the
        deadline passes on one, that error is raised. Otherwise DeadlineExceeded carries the
        last entries seen, so the caller can say what it saw.
        """
        clock = clock or SystemClock()
        seen: list[Entry] = []
        errors: list[LokiError] = []

        def probe() -> list[Entry] | None:
            end = max(clock.time_ns() + ahead_ns, start_ns + 1)
            try:
                entries = self.entries(query, start_ns=start_ns, end_ns=end, limit=limit)
            except LokiError as e:
                if not e.transient:
                    raise
                errors.append(e)
                return None
            errors.clear()
            seen[:] = entries
            return entries

        try:
            waited = poll(
                probe, lambda es: es is not None and predicate(es),
                what=f"Loki to return {query}", timeout=timeout, clock=clock, interval=interval,
            )  # fmt: skip
        except DeadlineExceeded as e:
            if errors:
                raise errors[-1] from None
            raise DeadlineExceeded(e.what, e.timeout, list(seen), e.attempts) from None
        return Found(list(waited.value), waited.seconds)
