"""Every shipped deployment, at its peak, holds no more PostgreSQL connections than one stated
budget (docs/operations.md, "Connection budget").

The budget is stated once: the annotation ``ticket-cart/postgres-connection-budget`` on the
API's HorizontalPodAutoscaler in deploy/k8s/base, beside the maxReplicas it bounds. Every
overlay inherits it (one whose PostgreSQL gives more slots patches it); compose runs a
PostgreSQL with the default ``max_connections`` and is held to the same number.

What one process holds at most:

- an API process (one of uvicorn's ``WEB_CONCURRENCY``) and the arq worker: ``DB_POOL_MAX``
  in its pool, plus the connection of its own that ``service/db/monitor.py`` opens to probe
  PostgreSQL;
- the migration: one connection (``service/db/migrate.py``).

Pods at the peak: the HPA's ``maxReplicas`` (else ``replicas``), plus the rolling update's
``maxSurge`` (Kubernetes rounds a percentage up), since old pods keep their connections until
they exit. The migration Job counts too, though ``make deploy`` runs it before the rollout.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from service.settings import Settings
from tests.deploy.deploy_files import (
    DEPLOY,
    Resource,
    container_environment,
    find,
    pod_spec,
    render_kustomization,
)

BUDGET_ANNOTATION = "ticket-cart/postgres-connection-budget"
PROBE_CONNECTIONS = 1  # service/db/monitor.py, per process that opens the services
MIGRATION_COMMAND = ["python", "-m", "service.db.migrate"]
# uvicorn's processes per container when WEB_CONCURRENCY is unset: the image's CMD default.
DEFAULT_WEB_CONCURRENCY = int(re.search(r"\$\{WEB_CONCURRENCY:-(\d+)\}", (DEPLOY / "Dockerfile").read_text())[1])
OVERLAYS = sorted(path for path in (DEPLOY / "k8s" / "overlays").iterdir() if (path / "kustomization.yaml").exists())
_PLACEHOLDER_SECRETS = {"ADMIN_API_KEY": "-", "CART_TOKEN_SECRET": "-", "JWT_SECRET": "-"}


def per_process(command: list[str] | None, env: dict[str, str]) -> tuple[int, int]:
    """(processes, connections each) of a container running ``command`` (None: the image's
    CMD, the API)."""
    settings = Settings.from_env({**_PLACEHOLDER_SECRETS, **env})
    pooled = settings.db_pool_max + PROBE_CONNECTIONS
    if command is None:
        return int(env.get("WEB_CONCURRENCY") or DEFAULT_WEB_CONCURRENCY), pooled
    if command[0] == "arq":
        return 1, pooled
    if command == MIGRATION_COMMAND:
        return 1, 1
    raise AssertionError(f"the budget test does not know what {command} opens: teach it")


def _surge(strategy: dict, replicas: int) -> int:
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%") if strategy.get("type") != "Recreate" else 0
    if isinstance(surge, str):
        return math.ceil(replicas * int(surge.rstrip("%")) / 100)
    return surge


def k8s_peak(resources: list[Resource]) -> list[tuple[str, int, int, int]]:
    """(workload, pods, processes a pod, connections a process) of every workload."""
    if not [r for r in resources if r["kind"] == "Secret"]:  # the base: its overlays bring one
        resources = [*resources, {"kind": "Secret", "metadata": {"name": "ticket-cart-secrets"}, "data": {}}]
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["maxReplicas"]
        for hpa in resources
        if hpa["kind"] == "HorizontalPodAutoscaler"
    }
    rows = []
    for workload in resources:
        if pod_spec(workload) is None:
            continue
        kind, name, spec = workload["kind"], workload["metadata"]["name"], workload["spec"]
        (container,) = pod_spec(workload)["containers"]
        processes, each = per_process(
            container.get("command") or container.get("args"), container_environment(resources, kind, name)
        )
        if kind == "Job":
            pods = spec.get("parallelism", 1)
        else:
            replicas = scaled.get(name, spec.get("replicas", 1))
            pods = replicas + _surge(spec.get("strategy", {}), replicas)
        rows.append((name, pods, processes, each))
    return rows


def compose_peak(compose: dict) -> list[tuple[str, int, int, int]]:
    """The same for compose's services of the ticket-cart image (a recreate stops the old
    container first: no surge)."""
    rows = []
    for name, service in compose["services"].items():
        if not str(service.get("image", "")).startswith("ticket-cart:"):
            continue
        env = {key: _compose_value(str(value)) for key, value in service.get("environment", {}).items()}
        processes, each = per_process(service.get("command"), env)
        pods = service.get("deploy", {}).get("replicas", service.get("scale", 1))
        rows.append((name, pods, processes, each))
    return rows


def _compose_value(value: str) -> str:
    """A value as compose interpolates it with nothing set: ``${X:-d}`` is d, ``${X:?e}`` a placeholder."""
    value = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "placeholder", value)


def budget(resources: list[Resource]) -> int:
    annotations = find(resources, "HorizontalPodAutoscaler", "ticket-cart-api")["metadata"].get("annotations", {})
    assert BUDGET_ANNOTATION in annotations, f"the budget is stated on the API's HPA as {BUDGET_ANNOTATION}"
    return int(annotations[BUDGET_ANNOTATION])


def check(rows: list[tuple[str, int, int, int]], limit: int) -> int:
    total = sum(pods * processes * each for _, pods, processes, each in rows)
    table = "\n".join(
        f"  {name}: {pods} pods x {processes} processes x {each} connections = {pods * processes * each}"
        for name, pods, processes, each in rows
    )
    assert total <= limit, f"{total} PostgreSQL connections at the peak, over the budget of {limit}:\n{table}"
    return total


def test_the_base_fits_its_budget(base_resources):
    check(k8s_peak(base_resources), budget(base_resources))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_every_overlay_fits_its_budget(overlay: Path):
    resources = render_kustomization(overlay)
    check(k8s_peak(resources), budget(resources))


def test_compose_fits_the_budget_of_a_default_postgresql(compose, base_resources):
    assert "max_connections" not in " ".join(map(str, compose["services"]["postgres"].get("command", []))), (
        "compose's PostgreSQL would not be a default one: state its own budget"
    )
    check(compose_peak(compose), budget(base_resources))


def test_every_workload_that_opens_connections_is_counted(base_resources, compose):
    counted = {name for name, *_ in k8s_peak(base_resources)}
    assert counted == {"ticket-cart-api", "ticket-cart-worker", "ticket-cart-migrate"}
    assert {name for name, *_ in compose_peak(compose)} == {"api", "worker", "migrate"}


def test_the_arithmetic_counts_processes_pools_probes_and_the_rollout_surge():
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"name": "api"}, "maxReplicas": 10},
    }
    api = {
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"env": [{"name": "WEB_CONCURRENCY", "value": "2"}, {"name": "DB_POOL_MAX", "value": "5"}]}
                    ]
                }
            }
        },
    }
    migrate = {
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [{"args": MIGRATION_COMMAND}]}}},
    }
    # The issue's arithmetic (10 x 2 x 5), plus the probes, the default 25 % surge and the Job.
    assert k8s_peak([hpa, api, migrate]) == [("api", 13, 2, 6), ("migrate", 1, 1, 1)]
    with pytest.raises(AssertionError, match="157 PostgreSQL connections"):
        check(k8s_peak([hpa, api, migrate]), 97)
    assert _compose_value("${WEB_CONCURRENCY:-3}") == "3"
