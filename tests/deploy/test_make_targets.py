"""deploy/deploy.mk: a target whose tool is missing prints one line naming it and exits
non-zero before doing anything; with the tools there, it runs the expected commands.

docker and kubectl are stand-in scripts on a PATH of their own, which record how they are
called, so the tests need neither tool and depend on nothing installed on the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_files import ROOT

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")

# A stand-in that logs its arguments, and fails for the argument prefixes given.
STAND_IN = """#!/bin/sh
echo "{name} $*" >> "$CALLS"
case "$*" in
{failures}
esac
{extra}
exit 0
"""


class Tools:
    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.calls = directory / "calls"
        self.calls.touch()
        for tool in ("sed",):  # what the recipes use besides sh's builtins
            os.symlink(shutil.which(tool), self.bin / tool)

    def add(self, name: str, failing: tuple[str, ...] = (), extra: str = "") -> None:
        failures = "\n".join(f'"{prefix}"*) echo "{name}: no" >&2; exit 1 ;;' for prefix in failing)
        path = self.bin / name
        path.write_text(STAND_IN.format(name=name, failures=failures, extra=extra))
        path.chmod(0o755)

    def make(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [MAKE, "--no-print-directory", "-f", "deploy/deploy.mk", *args],
            cwd=ROOT,
            env={"PATH": str(self.bin), "CALLS": str(self.calls)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def called(self) -> list[str]:
        return self.calls.read_text().splitlines()


@pytest.fixture
def tools(tmp_path) -> Tools:
    return Tools(tmp_path)


def assert_refused(done: subprocess.CompletedProcess, target: str, says: str) -> None:
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(ours) == 1, done.stderr
    assert ours[0].startswith(f"{target}: ") and says in ours[0], ours[0]


@pytest.mark.parametrize("target", ["image", "compose-up", "compose-down"])
def test_docker_targets_without_docker(tools, target):
    assert_refused(tools.make(target), target, "the docker CLI is not installed")


@pytest.mark.parametrize("target", ["image", "compose-up", "compose-down"])
def test_docker_targets_without_an_engine(tools, target):
    tools.add("docker", failing=("info",))
    assert_refused(tools.make(target), target, "no Docker engine is reachable")
    assert tools.called() == ["docker info"]


@pytest.mark.parametrize("target", ["compose-up", "compose-down"])
def test_compose_targets_without_the_compose_plugin(tools, target):
    tools.add("docker", failing=("compose version",))
    assert_refused(tools.make(target), target, "Docker Compose plugin is missing")
    assert not [c for c in tools.called() if c.startswith("docker compose -f")]


def test_image_builds_from_the_repository_root(tools):
    tools.add("docker")
    done = tools.make("image", "TAG=1.2.3")
    assert done.returncode == 0, done.stderr
    assert tools.called()[-1] == "docker build -f deploy/Dockerfile -t ticket-cart:1.2.3 ."


def test_compose_up_needs_the_env_file(tools):
    tools.add("docker")
    assert_refused(
        tools.make("compose-up", "COMPOSE_ENV=deploy/no-such.env"), "compose-up", "deploy/no-such.env is missing"
    )
    assert not [c for c in tools.called() if c.startswith("docker compose -f")]


def test_compose_up_builds_starts_and_waits(tools):
    tools.add("docker")
    done = tools.make("compose-up", "COMPOSE_ENV=deploy/.env.example")
    assert done.returncode == 0, done.stderr
    assert tools.called()[-1] == (
        "docker compose -f deploy/compose.yaml --env-file deploy/.env.example up --build --detach --wait"
    )


def test_k8s_render_without_kubectl_or_kustomize(tools):
    assert_refused(tools.make("k8s-render"), "k8s-render", "neither kubectl nor kustomize")


def test_k8s_render_with_kubectl_or_kustomize(tools):
    tools.add("kustomize")
    assert tools.make("k8s-render").returncode == 0
    tools.add("kubectl")
    assert tools.make("k8s-render", "OVERLAY=example").returncode == 0
    assert tools.called() == [
        "kustomize build deploy/k8s/overlays/example",
        "kubectl kustomize deploy/k8s/overlays/example",
    ]


@pytest.mark.parametrize("target", ["k8s-render", "deploy"])
def test_unknown_overlay(tools, target):
    tools.add("kubectl")
    assert_refused(tools.make(target, "OVERLAY=nope"), target, "no overlay 'nope'")


def test_deploy_without_kubectl(tools):
    assert_refused(tools.make("deploy"), "deploy", "kubectl is not installed")


def test_deploy_without_a_cluster_changes_nothing(tools):
    tools.add("kubectl", failing=("cluster-info",), extra='[ "$1" = config ] && echo kind-dev')
    assert_refused(tools.make("deploy"), "deploy", "kubectl reaches no cluster (context: kind-dev)")
    assert [c.split()[1] for c in tools.called()] == ["cluster-info", "config"]


def test_deploy_migrates_before_rolling_out(tools):
    tools.add("kubectl")
    done = tools.make("deploy", "OVERLAY=example")
    assert done.returncode == 0, done.stderr
    ns = "--namespace ticket-cart-example"
    overlay = "deploy/k8s/overlays/example"
    assert tools.called() == [
        "kubectl cluster-info --request-timeout=5s",
        f"kubectl delete job ticket-cart-migrate {ns} --ignore-not-found --wait=true",
        f"kubectl apply -k {overlay} --selector app.kubernetes.io/component notin (api,worker)",
        f"kubectl wait job/ticket-cart-migrate {ns} --for=condition=complete --timeout=600s",
        f"kubectl apply -k {overlay}",
        f"kubectl rollout status deployment/ticket-cart-api {ns} --timeout=300s",
        f"kubectl rollout status deployment/ticket-cart-worker {ns} --timeout=300s",
    ]


def test_deploy_stops_at_the_first_failing_step(tools):
    tools.add("kubectl", failing=("wait",))
    assert tools.make("deploy").returncode != 0
    assert not [c for c in tools.called() if "rollout" in c or c.endswith("overlays/example")]
