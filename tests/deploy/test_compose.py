"""deploy/compose.yaml: valid against the Compose specification, and started in order
(databases healthy, then migrations, then API and worker)."""

from __future__ import annotations

import ipaddress
import json
import re
from importlib.resources import files

import jsonschema
import pytest

from service.settings import Settings
from tests.deploy.deploy_files import DEPLOY

APP_SERVICES = ("migrate", "api", "worker")


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    jsonschema.validate(compose, schema)


def test_every_service_is_present(compose):
    assert set(compose["services"]) == {"redis", "postgres", "migrate", "api", "worker"}


def test_backing_services_are_pinned_redis_7_and_postgresql_16(compose):
    redis, postgres = compose["services"]["redis"]["image"], compose["services"]["postgres"]["image"]
    assert redis.startswith("redis:7.") and redis.count(".") == 2, "a patch release"
    assert postgres.startswith("postgres:16.") and postgres.count(".") == 1, "a minor release"
    assert "noeviction" in compose["services"]["redis"]["command"]


def test_redis_keeps_holds_and_carts_across_a_restart_with_an_append_only_file_on_a_volume(compose):
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert "redis-data:/data" in redis["volumes"] and "redis-data" in compose["volumes"]


@pytest.mark.parametrize("service", ["redis", "postgres", "api", "worker"])
def test_long_running_services_have_a_healthcheck(compose, service):
    check = compose["services"][service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and not check.get("disable")


def test_migrations_run_once_postgres_is_healthy(compose):
    migrate = compose["services"]["migrate"]
    assert migrate["command"] == ["python", "-m", "service.db.migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("service", ["api", "worker"])
def test_api_and_worker_start_after_healthy_databases_and_finished_migrations(compose, service):
    assert compose["services"][service]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }


def test_worker_runs_arq_and_its_healthcheck_asks_its_metrics_port(compose):
    worker = compose["services"]["worker"]
    assert worker["command"] == ["arq", "workers.main.WorkerSettings"]
    port = worker["environment"]["WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/metrics" in " ".join(worker["healthcheck"]["test"])


def test_api_runs_the_image_command_and_checks_readiness(compose):
    api = compose["services"]["api"]
    assert "command" not in api
    assert "/health/ready" in " ".join(api["healthcheck"]["test"])
    assert all(p.startswith("127.0.0.1:") for p in api["ports"]), "not on every interface"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_share_one_hardened_image(compose, service):
    spec = compose["services"][service]
    assert spec["image"] == compose["services"]["api"]["image"]
    assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
    assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
    multiproc = spec["environment"].get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc:
        assert multiproc in spec["tmpfs"]


def test_databases_publish_no_port(compose):
    for service in ("redis", "postgres"):
        assert "ports" not in compose["services"][service]


def test_real_env_file_is_ignored_by_git():
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_the_api_trusts_the_forwarded_for_of_this_hosts_reverse_proxy_only(compose):
    """The port is published on loopback only, so the API's peers are this host's processes
    (coming through the compose network's gateway) and the other containers: the gateway
    is the proxy whose X-Forwarded-For counts."""
    (network,) = compose["networks"]["default"]["ipam"]["config"]
    api = compose["services"]["api"]
    configured = _default(api["environment"]["TRUSTED_PROXIES"])
    trusted = Settings.from_env(
        {
            "APP_ENV": "development",
            "TRUSTED_PROXIES": configured,
            "ADMIN_API_KEY": "-",
            "CART_TOKEN_SECRET": "-",
            "JWT_SECRET": "-",
        }
    ).trusted_proxies
    assert trusted == (f"{network['gateway']}/32",)
    assert ipaddress.ip_address(network["gateway"]) in ipaddress.ip_network(network["subnet"])
    assert all(p.startswith("127.0.0.1:") for p in api["ports"])


def _default(value: str) -> str:
    return re.fullmatch(r"\$\{[A-Z_]+:-([^}]*)\}", value)[1]
