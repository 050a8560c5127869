"""Prometheus metrics: ``GET /metrics`` in the text exposition format, across uvicorn workers.

What an operator of a payment switch watches (issue 14, item 4; docs/reference/metrics.md):

- ``flashpay_http_requests_total{method,route,status}`` and
  ``flashpay_http_request_duration_seconds{method,route}`` — per route *template*
  (``/v1/payments/{payment_id}``, never the raw path: a label per payment id would grow without
  bound), ``unmatched`` for a path no route has;
- ``flashpay_batch_size{switch}`` — how many requests each group-commit batch carried;
- ``flashpay_declines_total{outcome,reason}`` — refusals (``outcome="refused"``: the request was
  answered with a refusal, nothing recorded) and declines (``outcome="declined"``: a payment or
  transfer recorded as declined), by reason;
- ``flashpay_db_pool_connections{pool,state}`` — each worker's SQLAlchemy pools (checked out, idle
  in the pool, size), summed over the live workers;
- ``flashpay_audit_log_size`` and ``flashpay_audit_log_lag_chains`` — the audit log's leaves and
  the committed ledger chains not yet appended to it (the outbox), read when scraped.

Across processes: ``flashpay serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before
the workers start (prometheus-client then keeps every value in a per-process memory-mapped file),
and a scrape — answered by whichever worker gets it — merges the files of every worker, alive or
dead. Counters and histograms of a dead worker stay in the sum (what it counted happened); its
pool gauges are dropped (``mark_process_dead``) when a scrape finds its pid gone. Without the
variable (tests, one process) the values live in this process.

This module is the kernel's: it imports no domain. The domains report through the small recorder
functions the composition root hands them (``Metrics.batch_recorder``, ``Metrics.decline``), and
the audit figures come from a function the root hands in (``AuditFigures``).

Who may read: the network operator's administration key (``CurrentNetworkAdmin``, decision
0025) — the figures tell traffic, decline patterns and capacity, which a member institution or a
merchant has no business reading; a Prometheus server sends it as
``Authorization: ApiKey <key>``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.pool import Pool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flashpay.api.deps import CurrentNetworkAdmin
from flashpay.errors import RefusedError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
POOL_REFRESH_SECONDS = 1.0  # a worker writes its pool gauges at most this often
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_PID_FILE = re.compile(r"_(\d+)\.db$")


@dataclass(frozen=True, slots=True)
class AuditSnapshot:
    size: int
    lag_chains: int


AuditFigures = Callable[[], AuditSnapshot]
"""The audit log's figures now (the composition root reads them from the chain and the ledger)."""


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


class Metrics:
    """The metrics of one app; ``MetricsMiddleware`` and ``router`` read it from
    ``app.state.metrics``."""

    def __init__(
        self, *, pools: Mapping[str, Pool] | None = None, audit: AuditFigures | None = None
    ) -> None:
        # A private registry: two apps in one process (tests) must not collide in the global one.
        # Under PROMETHEUS_MULTIPROC_DIR the values go to the mmap files whatever the registry.
        self.registry = CollectorRegistry()
        self._pools = dict(pools or {})
        self.audit = audit
        self._pools_written = 0.0
        r = self.registry
        self.requests = Counter(
            "flashpay_http_requests", "HTTP requests answered, by route template and status.",
            ("method", "route", "status"), registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "flashpay_http_request_duration_seconds",
            "Time from the request's arrival in the app to its last response byte.",
            ("method", "route"), buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_sizes = Histogram(
            "flashpay_batch_size", "Requests per group-commit batch, by switch.",
            ("switch",), buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.declines = Counter(
            "flashpay_declines", "Refused requests and declined payments, by reason.",
            ("outcome", "reason"), registry=r,
        )  # fmt: skip
        self.pool = Gauge(
            "flashpay_db_pool_connections", "Database pool connections, summed over workers.",
            ("pool", "state"), multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.workers = Gauge(
            "flashpay_workers", "Worker processes whose figures are in this exposition.",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.workers.set(1)
        self.audit_size = Gauge(
            "flashpay_audit_log_size", "Leaves in the audit log.",
            multiprocess_mode="mostrecent", registry=r,
        )  # fmt: skip
        self.audit_lag = Gauge(
            "flashpay_audit_log_lag_chains",
            "Committed ledger chains not yet appended to the audit log (the outbox).",
            multiprocess_mode="mostrecent", registry=r,
        )  # fmt: skip

    def add_pool(self, name: str, pool: Pool) -> None:
        self._pools[name] = pool

    # -- what the domains are handed -----------------------------------------------------------
    def batch_recorder(self, switch: str) -> Callable[[int], None]:
        """The function a group commit calls with each batch's size."""
        histogram = self.batch_sizes.labels(switch)
        return histogram.observe

    def decline(self, outcome: str, reason: str) -> None:
        self.declines.labels(outcome, reason).inc()

    # -- the kernel's own ----------------------------------------------------------------------
    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        now = time.monotonic()
        if self._pools and now - self._pools_written >= POOL_REFRESH_SECONDS:
            self._pools_written = now
            self.write_pools()

    def write_pools(self) -> None:
        for name, pool in self._pools.items():
            checked_out = _pool_figure(pool, "checkedout")
            self.pool.labels(name, "checked_out").set(checked_out)
            self.pool.labels(name, "idle").set(_pool_figure(pool, "checkedin"))
            self.pool.labels(name, "size").set(_pool_figure(pool, "size"))

    def exposition(self) -> bytes:
        """The text format over every worker (or this process alone without the directory)."""
        self.write_pools()
        if self.audit is not None:
            figures = self.audit()
            self.audit_size.set(figures.size)
            self.audit_lag.set(figures.lag_chains)
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        mark_dead_workers(directory)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=str(directory))  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _pool_figure(pool: Pool, name: str) -> float:
    method = getattr(pool, name, None)
    return float(method()) if callable(method) else 0.0


def mark_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that are gone (uvicorn restarts a dead one under a new
    pid); their counters stay in the sums."""
    pids = {int(m.group(1)) for p in directory.glob("*.db") if (m := _PID_FILE.search(p.name))}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, path=str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI: times each HTTP request from arrival to its last body message and counts it
    under the route the router matched (read from the scope once the app has run)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._metrics.observe(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )


def install(app: FastAPI, metrics: Metrics) -> None:
    """Put ``metrics`` on ``app``: the middleware (call after the other middleware, so it is the
    outermost and times them too), refusals counted by reason as the error handler answers
    them, and ``GET /metrics``."""
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    handler: Any = app.exception_handlers.get(RefusedError)
    if handler is not None:

        async def counted(request: Request, exc: Exception) -> Any:
            if isinstance(exc, RefusedError):
                metrics.decline("refused", str(exc.code))
            return await handler(request, exc)

        app.add_exception_handler(RefusedError, counted)
    app.include_router(router)


router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (operator key)")
async def prometheus_metrics(request: Request, _admin: CurrentNetworkAdmin) -> Response:
    """Every worker's figures merged, in Prometheus' text format (the network operator's key)."""
    metrics: Metrics = request.app.state.metrics
    body = await to_thread.run_sync(metrics.exposition)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
