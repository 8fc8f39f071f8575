"""Fixtures of the deploy tests: rendered kustomizations and the compose file."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import DEPLOY, K8S_BASE, K8S_OVERLAY, Resource, render_kustomization


@pytest.fixture(scope="session")
def base_resources() -> list[Resource]:
    return render_kustomization(K8S_BASE)


@pytest.fixture(scope="session")
def overlay_resources() -> list[Resource]:
    return render_kustomization(K8S_OVERLAY)


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())
