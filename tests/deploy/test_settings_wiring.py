"""The deploy files give every process the settings production requires, and no variable
that service.settings does not know (a misspelt name would silently take the default)."""

from __future__ import annotations

import re

import pytest

from service.settings import ENVIRONMENT_VARIABLES, SECRET_VARIABLES, Settings
from tests.deploy.deploy_files import DEPLOY, K8S_OVERLAY, container_environment, find, pod_spec, read_env_file

# Read by the image and prometheus-client, not by Settings.
PROCESS_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"}
# SePay's secrets are required only with SEPAY_AUTH on (tests/test_settings.py).
REQUIRED_IN_PRODUCTION = (set(SECRET_VARIABLES) - {"TRUSTED_SERVICE_KEY", "SEPAY_API_KEY", "SEPAY_HMAC_SECRET"}) | {
    "REDIS_URL",
    "DATABASE_URL",
    "APP_ENV",
}
# Every container Settings.from_env runs in. The migration runner reads DATABASE_URL alone.
K8S_WORKLOADS = [("Deployment", "ticket-cart-api"), ("Deployment", "ticket-cart-worker")]
COMPOSE_SERVICES = ["api", "worker"]


def test_required_variables_list_is_what_production_settings_refuse_to_start_without():
    complete = {name: "x" for name in REQUIRED_IN_PRODUCTION} | {"APP_ENV": "production"}
    Settings.from_env(complete)
    for name in SECRET_VARIABLES:
        if name in REQUIRED_IN_PRODUCTION:
            with pytest.raises(ValueError, match=name):
                Settings.from_env({k: v for k, v in complete.items() if k != name})


@pytest.mark.parametrize("kind,name", K8S_WORKLOADS, ids=[n for _, n in K8S_WORKLOADS])
def test_kubernetes_workload_gets_every_required_setting_and_only_known_ones(overlay_resources, kind, name):
    env = container_environment(overlay_resources, kind, name)
    assert env.keys() >= REQUIRED_IN_PRODUCTION, f"missing: {REQUIRED_IN_PRODUCTION - env.keys()}"
    unknown = env.keys() - set(ENVIRONMENT_VARIABLES) - PROCESS_VARIABLES
    assert not unknown, f"not read by service.settings: {sorted(unknown)}"
    assert env["APP_ENV"] == "production"


@pytest.mark.parametrize("kind,name", K8S_WORKLOADS, ids=[n for _, n in K8S_WORKLOADS])
def test_kubernetes_settings_parse(overlay_resources, kind, name):
    env = container_environment(overlay_resources, kind, name)
    settings = Settings.from_env({k: v for k, v in env.items() if k not in PROCESS_VARIABLES})
    assert settings.is_production


def test_the_kubernetes_migration_gets_the_database_url_and_nothing_else(overlay_resources):
    (container,) = pod_spec(find(overlay_resources, "Job", "ticket-cart-migrate"))["containers"]
    assert "envFrom" not in container
    (variable,) = container["env"]
    reference = variable["valueFrom"]["secretKeyRef"]
    assert (variable["name"], reference["key"]) == ("DATABASE_URL", "DATABASE_URL")
    secret = find(overlay_resources, "Secret", reference["name"])  # the generated name, hashed
    assert "DATABASE_URL" in secret["data"]


def test_the_compose_migration_gets_the_database_url_and_nothing_else(compose):
    environment = compose["services"]["migrate"]["environment"]
    assert environment == {"DATABASE_URL": compose["services"]["api"]["environment"]["DATABASE_URL"]}


def test_base_config_carries_no_secret(base_resources):
    data = find(base_resources, "ConfigMap", "ticket-cart-config")["data"]
    assert not set(data) & (set(SECRET_VARIABLES) | {"DATABASE_URL", "REDIS_URL", "ARQ_REDIS_URL"})


def test_overlay_secret_example_lists_only_known_variables():
    keys = set(read_env_file(K8S_OVERLAY / "secrets.env.example"))
    assert keys <= set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize("service", COMPOSE_SERVICES)
def test_compose_service_gets_every_required_setting_and_only_known_ones(compose, service):
    env = compose["services"][service]["environment"]
    assert isinstance(env, dict), "environment as a mapping, so it can be checked"
    assert env.keys() >= REQUIRED_IN_PRODUCTION, f"missing: {REQUIRED_IN_PRODUCTION - env.keys()}"
    unknown = env.keys() - set(ENVIRONMENT_VARIABLES) - PROCESS_VARIABLES
    assert not unknown, f"not read by service.settings: {sorted(unknown)}"
    assert "env_file" not in compose["services"][service], "env_file would pass unchecked names"


def test_compose_secrets_come_from_the_env_file_example():
    """Each ${NAME:?...} compose demands is a key of deploy/.env.example, and vice versa."""
    text = (DEPLOY / "compose.yaml").read_text()
    demanded = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = set(read_env_file(DEPLOY / ".env.example"))
    optional = set(re.findall(r"\$\{([A-Z_]+):-", text))
    assert demanded <= example
    assert example <= demanded | optional
