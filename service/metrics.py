"""Prometheus metrics of the API and the worker: every metric is defined here, once.

Other modules import these objects and only call ``inc``/``observe``/``set`` on them; they
never create metrics of their own. Label values must stay few: ``route`` is the route's
path template (``/api/cart/items/{tier_id}``), never the raw path, and error results are
the problem's stable ``code`` (``sold-out``), never a message.

uvicorn runs several worker processes, each with its own counters. Production sets
``PROMETHEUS_MULTIPROC_DIR`` (a variable prometheus-client reads itself, at import) to a
directory that is emptied before the server starts (the image's entrypoint does it); every
process then writes its values there and ``render_latest`` adds them up. Without the
variable (development, tests) the process's default registry is served.
"""

from __future__ import annotations

import errno
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Fine-grained at the low end: a cart change should take well under 5 ms.
HTTP_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
CHECKOUT_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUEST_DURATION = Histogram(
    "tc_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status code.",
    ("route", "method", "status"),
    buckets=HTTP_LATENCY_BUCKETS,
)
CART_OPERATIONS = Counter(
    "tc_cart_operations_total",
    "Cart operations (add, set, remove, clear, view) by result: ok or a problem code.",
    ("op", "result"),
)
RESERVATIONS = Counter(
    "tc_reservations_total",
    "Seats held: incremented by the quantity each reservation granted.",
)
SOLD_OUT_REFUSALS = Counter(
    "tc_sold_out_refusals_total",
    "Reservations refused because too few seats were left.",
)
CHECKOUTS = Counter(
    "tc_checkouts_total",
    "Checkouts by result: created, replayed, or a problem code.",
    ("result",),
)
CHECKOUT_DURATION = Histogram(
    "tc_checkout_duration_seconds",
    "Time of a whole checkout: every Redis part and the PostgreSQL transaction.",
    buckets=CHECKOUT_LATENCY_BUCKETS,
)
ORDER_WRITES = Counter(
    "tc_order_writes_total",
    "Order writes to PostgreSQL without a promo use, by how many orders each carried (up to "
    "1, 2, 4 ... 64): a hot tier's checkouts are written together (group commit).",
    ("orders",),
)
POSTGRES_UP = Gauge(
    "tc_postgres_up",
    "1 if the last probe of PostgreSQL (every 10 s, 2 s while down) answered, else 0. Readiness "
    "does not depend on it (carts need only Redis); checkouts answer 503 while it is 0.",
    # Every process probes; the latest answer is the state, and a dead process's stale value
    # (its file stays until the container restarts) loses to the live ones' newer values.
    multiprocess_mode="mostrecent",
)
SWEEP_RELEASED = Counter(
    "tc_sweep_released_parts_total",
    "Expired cart parts released by the sweep (their holds given back).",
)
RECONCILE_DRIFT = Counter(
    "tc_reconcile_drift_total",
    "Tiers whose Redis counter the reconciler found wrong and corrected, by field.",
    ("field",),
)
RECONCILE_DRIFT_SEATS = Counter(
    "tc_reconcile_drift_seats_total",
    "Seats the reconciler corrected (absolute difference), by field.",
    ("field",),
)
SWEEP_UNFINISHED_RUNS = Counter(
    "tc_sweep_unfinished_runs_total",
    "Sweep runs that stopped at their time budget with events still to sweep.",
)
SWEEP_UNFINISHED_EVENTS = Counter(
    "tc_sweep_unfinished_events_total",
    "Events a sweep run left unswept at its time budget (the next run starts with them).",
)
EVENTS_RETIRED = Counter(
    "tc_events_retired_total",
    "Finished events (no parts, every sale over) whose Redis state the sweep deleted.",
)
RECONCILE_NOT_RECOUNTED = Counter(
    "tc_reconcile_not_recounted_total",
    "Events whose held counters a reconcile run could not recount (the chunked recount "
    "was superseded or hit its call limit).",
)
WORKER_JOB_DURATION = Histogram(
    "tc_worker_job_duration_seconds",
    "Time of one run of a worker job.",
    ("job",),
    buckets=JOB_DURATION_BUCKETS,
)
WORKER_JOB_LAST_SUCCESS = Gauge(
    "tc_worker_job_last_success_timestamp_seconds",
    "Unix time at which the job last finished without error.",
    ("job",),
    # With several processes the newest success is the one that matters.
    multiprocess_mode="max",
)
WORKER_JOB_FAILURES = Counter(
    "tc_worker_job_failures_total",
    "Worker job runs that raised.",
    ("job",),
)
ORDERS_EXPIRED = Counter(
    "tc_orders_expired_total",
    "Unpaid orders expired at their payment due time (seats given back).",
)
ORDER_EVENTS = Counter(
    "tc_order_events_total",
    "Order events recorded, by kind (order.created, order.paid, ...): counted by the worker as it "
    "fans them out into deliveries, so only events whose transaction committed, each once.",
    ("kind",),
)
WEBHOOK_DELIVERIES = Counter(
    "tc_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered (2xx), retry (another attempt later), failed "
    "(retried for WEBHOOK_RETRY_FOR_SECONDS, or its endpoint deactivated), gone (410: endpoint off).",
    ("outcome",),
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "tc_webhook_oldest_pending_seconds",
    "Age of the oldest webhook delivery still pending (0: none), as the last delivery run saw it.",
    multiprocess_mode="mostrecent",
)
SEPAY_DELIVERIES = Counter(
    "tc_sepay_deliveries_total",
    "Authenticated SePay deliveries by outcome (paid, needs_review, ignored, duplicate) and reason "
    "(docs/payments.md: short, over, unknown-code, late, ...; none for a payment on time or a duplicate).",
    ("status", "reason"),
)
SEPAY_AUTH_FAILURES = Counter(
    "tc_sepay_auth_failures_total",
    "Deliveries to the SePay route refused with 401 (wrong or missing API key or signature, stale "
    "timestamp), by SEPAY_AUTH mode; nothing of them was stored.",
    ("mode",),
)
RATE_LIMITED = Counter(
    "tc_rate_limited_total",
    "Requests refused with 429, by limit scope (cart, client, promo).",
    ("scope",),
)


def _registry() -> CollectorRegistry:
    """The registry to serve: all processes' values in multiprocess mode, else this one's."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        # A fresh registry per call: MultiProcessCollector must not share the default
        # registry, where this process's own (file-backed) metrics would be counted twice.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render_latest() -> tuple[bytes, str]:
    """The text exposition of every metric, and its content type, for ``GET /metrics``."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


class MetricsPortTaken(OSError):
    """The worker's metrics port is in use (another worker, another ``make run``)."""


def start_worker_metrics_server(port: int, *, or_any_free_port: bool = False) -> int | None:
    """Serve the worker's metrics on ``port`` in a background thread; the port served, or
    None for 0 (off). A port in use raises MetricsPortTaken, naming it; with
    ``or_any_free_port`` (development) the metrics go to a free port instead."""
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, registry=_registry())
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        if not or_any_free_port:
            raise MetricsPortTaken(
                exc.errno,
                f"the worker's metrics port {port} (WORKER_METRICS_PORT) is in use: set another, or 0 for none",
            ) from None
        server, _thread = start_http_server(0, registry=_registry())
    return server.server_port
