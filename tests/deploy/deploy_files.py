"""The deploy files, read as the deploy tests need them, and the kustomizations rendered in
Python, because `kubectl`/`kustomize` may be missing (and the tests run offline).

The renderer knows only the kustomization fields deploy/k8s uses, and fails on any other,
so a new field cannot be skipped silently; where kubectl is installed, a test compares its
rendering with this one.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_OVERLAY = DEPLOY / "k8s" / "overlays" / "example"
KUBERNETES_VERSION = "1.30.0"

Resource = dict[str, Any]

_KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "patches",
}


def load_yaml_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize's `envs` and compose's env files read them."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def render_kustomization(directory: Path) -> list[Resource]:
    """Resources of a kustomization as `kubectl kustomize` builds them, minus name hashes."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - _KNOWN_FIELDS
    assert not unknown, f"{directory}: the test renderer does not implement {sorted(unknown)}"

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render_kustomization(path)
        else:
            resources += load_yaml_documents(path)

    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in kustomization.get(key, []):
            values: dict[str, str] = {}
            for env_file in generator.get("envs", []):
                values.update(read_env_file(directory / env_file))
            for literal in generator.get("literals", []):
                name, _, value = literal.partition("=")
                values[name] = value
            _generate(resources, kind, generator["name"], values, generator.get("behavior", "create"))

    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"test renderer: only file patches, not {patch}"
        for doc in load_yaml_documents(directory / patch["path"]):
            target = find(resources, doc["kind"], doc["metadata"]["name"])
            _merge(target, doc)

    for image in kustomization.get("images", []):
        for container in containers(resources):
            repository, _, _ = container["image"].partition(":")
            if repository == image["name"]:
                tag = image.get("newTag", "latest")
                container["image"] = f"{image.get('newName', repository)}:{tag}"

    for replicas in kustomization.get("replicas", []):
        find(resources, "Deployment", replicas["name"])["spec"]["replicas"] = replicas["count"]

    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] != "Namespace":
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def _generate(resources: list[Resource], kind: str, name: str, values: dict, behavior: str) -> None:
    if kind == "Secret":
        values = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    if behavior == "merge":
        find(resources, kind, name)["data"].update(values)
        return
    assert behavior == "create", f"test renderer: generator behavior {behavior!r}"
    resource: Resource = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "data": values}
    if kind == "Secret":
        resource["type"] = "Opaque"
    resources.append(resource)


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _merge(target: Any, patch: Any) -> None:
    """A strategic merge patch, for what our patches need: maps recursively, lists of
    named items by name, other lists replaced."""
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif (
            isinstance(value, list)
            and isinstance(current, list)
            and all(isinstance(i, dict) and "name" in i for i in value + current)
        ):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            target[key] = copy.deepcopy(value)


def pod_spec(resource: Resource) -> Resource | None:
    spec = resource.get("spec", {})
    return spec.get("template", {}).get("spec") if resource["kind"] in ("Deployment", "Job") else None


def containers(resources: list[Resource]) -> list[Resource]:
    return [c for r in resources if (p := pod_spec(r)) for c in p["containers"]]


def container_environment(resources: list[Resource], kind: str, name: str) -> dict[str, str]:
    """The environment of the workload's one container: envFrom ConfigMaps and Secrets,
    then its own env."""
    (container,) = pod_spec(find(resources, kind, name))["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            data = find(resources, "Secret", source["secretRef"]["name"])["data"]
            env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "<from a reference>")
    return env
