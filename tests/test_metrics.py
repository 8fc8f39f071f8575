"""service.metrics renders in one process and adds up several processes in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from service import metrics

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _run(code: str, multiproc_dir: Path) -> str:
    """Run ``code`` in a new interpreter, as one uvicorn worker process would."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_single_process_rendering_shows_the_values_of_this_process(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = _samples(metrics.render_latest()[0])
    key = ("tc_cart_operations_total", frozenset({("op", "add"), ("result", "sold-out")}))

    metrics.CART_OPERATIONS.labels(op="add", result="sold-out").inc(3)
    metrics.HTTP_REQUEST_DURATION.labels(route="/api/cart", method="GET", status="200").observe(0.0007)
    body, content_type = metrics.render_latest()

    assert content_type.startswith("text/plain; version=")
    after = _samples(body)
    assert after[key] - before.get(key, 0.0) == 3
    bucket = (
        "tc_http_request_duration_seconds_bucket",
        frozenset({("route", "/api/cart"), ("method", "GET"), ("status", "200"), ("le", "0.001")}),
    )
    assert after[bucket] >= 1


def test_multiprocess_rendering_adds_up_every_worker_process(tmp_path):
    for _ in range(2):
        _run(
            """
            import time
            from service import metrics
            metrics.CHECKOUTS.labels(result="created").inc()
            metrics.RESERVATIONS.inc(2)
            metrics.CHECKOUT_DURATION.observe(0.02)
            metrics.WORKER_JOB_LAST_SUCCESS.labels(job="sweep").set(time.time())
            """,
            tmp_path,
        )
    assert list(tmp_path.glob("*.db")), "worker processes wrote no multiprocess files"

    out = _run(
        """
        import sys
        from service import metrics
        body, content_type = metrics.render_latest()
        sys.stdout.write(body.decode())
        """,
        tmp_path,
    )

    samples = _samples(out.encode())
    assert samples[("tc_checkouts_total", frozenset({("result", "created")}))] == 2
    assert samples[("tc_reservations_total", frozenset())] == 4
    assert samples[("tc_checkout_duration_seconds_count", frozenset())] == 2
    last_success = samples[("tc_worker_job_last_success_timestamp_seconds", frozenset({("job", "sweep")}))]
    assert last_success > 1_600_000_000  # the newest of both, not their sum


def test_worker_metrics_server_is_not_started_for_port_zero(monkeypatch):
    started = []

    def start_http_server(*args, **kwargs):
        started.append(args)
        return types.SimpleNamespace(server_port=args[0]), None

    monkeypatch.setattr(metrics, "start_http_server", start_http_server)
    assert metrics.start_worker_metrics_server(0) is None
    assert started == []
    assert metrics.start_worker_metrics_server(9108) == 9108
    assert started == [(9108,)]
