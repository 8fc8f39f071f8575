"""deploy/k8s: every manifest is valid Kubernetes (schemas of kubernetes-validate, strict),
and the API, worker and migration Job are wired as the image and the service expect."""

from __future__ import annotations

import base64
import ipaddress
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.deploy.deploy_files import (
    DEPLOY,
    K8S_BASE,
    K8S_OVERLAY,
    KUBERNETES_VERSION,
    containers,
    find,
    load_yaml_documents,
    pod_spec,
    read_env_file,
)

# Where the image keeps Prometheus' multiprocess files (its ENV, parsed from the Dockerfile).
MULTIPROC_DIR = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", (DEPLOY / "Dockerfile").read_text())[1]
UVICORN_GRACEFUL_SHUTDOWN = int(re.search(r"--timeout-graceful-shutdown (\d+)", (DEPLOY / "Dockerfile").read_text())[1])


def _validate(resource: dict) -> None:
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        kind, name = resource["kind"], resource["metadata"]["name"]
        pytest.fail(f"{kind}/{name}: {exc.message} at {'/'.join(map(str, exc.path))}")


def _resource_files() -> list:
    files = []
    for directory in (K8S_BASE, K8S_OVERLAY):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        files += [directory / r for r in kustomization["resources"] if (directory / r).is_file()]
    return files


@pytest.mark.parametrize("path", _resource_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_resource_file_is_valid_kubernetes(path):
    for resource in load_yaml_documents(path):
        _validate(resource)


def test_rendered_base_and_overlay_are_valid_kubernetes(base_resources, overlay_resources):
    for resource in base_resources + overlay_resources:
        _validate(resource)


def test_the_validator_rejects_a_misspelt_field(base_resources):
    api = yaml.safe_load(yaml.safe_dump(find(base_resources, "Deployment", "ticket-cart-api")))
    api["spec"]["template"]["spec"]["containers"][0]["livenesProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", [K8S_BASE, K8S_OVERLAY], ids=["base", "overlay"])
def test_kubectl_kustomize_builds_the_same_valid_resources(directory, request):
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    resources = [r for r in yaml.safe_load_all(built.stdout) if r]
    for resource in resources:
        _validate(resource)

    # Generated names carry a hash of their content in kustomize's output; ours do not.
    hashed = {
        r["metadata"]["name"]: re.sub(r"-[a-z0-9]{10}$", "", r["metadata"]["name"])
        for r in resources
        if r["kind"] in ("ConfigMap", "Secret")
    }
    text = built.stdout
    for name, plain in hashed.items():
        text = text.replace(name, plain)
    theirs = [r for r in yaml.safe_load_all(text) if r]
    ours = request.getfixturevalue("overlay_resources" if directory == K8S_OVERLAY else "base_resources")

    def key(r):
        return r["kind"], r["metadata"]["name"]

    assert sorted(map(key, theirs)) == sorted(map(key, ours))
    for resource in theirs:
        twin = find(ours, *key(resource))
        if resource["kind"] == "Secret":  # kustomize may wrap long base64 lines
            resource["data"] = {k: base64.b64decode(v) for k, v in resource["data"].items()}
            twin = {**twin, "data": {k: base64.b64decode(v) for k, v in twin["data"].items()}}
        assert resource == twin, f"{key(resource)} differs from our rendering"


def test_api_probes_the_health_endpoints_and_drains_before_the_grace_period_ends(base_resources):
    spec = pod_spec(find(base_resources, "Deployment", "ticket-cart-api"))
    (api,) = spec["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert int(pre_stop[1]) + UVICORN_GRACEFUL_SHUTDOWN < spec["terminationGracePeriodSeconds"]
    assert "command" not in api and "args" not in api, "the API runs the image's CMD"


def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(base_resources):
    for resource in base_resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]) == {"requests", "limits"}
            # Writable places: /tmp and the metrics directory the entrypoint empties.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in ("/tmp", MULTIPROC_DIR):
                assert "emptyDir" in volumes[mounts[path]], f"{resource['metadata']['name']}: {path}"
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("PROMETHEUS_MULTIPROC_DIR", MULTIPROC_DIR) == MULTIPROC_DIR


def test_containers_keep_the_image_entrypoint_and_run_the_right_program(base_resources):
    for container in containers(base_resources):
        assert "command" not in container, "command would bypass the entrypoint"
    worker = pod_spec(find(base_resources, "Deployment", "ticket-cart-worker"))["containers"][0]
    assert worker["args"] == ["arq", "workers.main.WorkerSettings"]
    migrate = pod_spec(find(base_resources, "Job", "ticket-cart-migrate"))["containers"][0]
    assert migrate["args"] == ["python", "-m", "service.db.migrate"]
    assert pod_spec(find(base_resources, "Job", "ticket-cart-migrate"))["restartPolicy"] == "Never"


def test_worker_metrics_port_matches_its_setting(base_resources):
    worker = pod_spec(find(base_resources, "Deployment", "ticket-cart-worker"))["containers"][0]
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert [p["containerPort"] for p in worker["ports"]] == [int(env["WORKER_METRICS_PORT"])]


def test_service_hpa_and_pdb_point_at_the_api_pods(base_resources):
    api = find(base_resources, "Deployment", "ticket-cart-api")
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    assert api["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "replicas" not in api["spec"], "the HPA owns the API's replica count"

    service = find(base_resources, "Service", "ticket-cart-api")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {p["name"] for p in pod_spec(api)["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names

    hpa = find(base_resources, "HorizontalPodAutoscaler", "ticket-cart-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ticket-cart-api",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2, "one pod cannot survive a disruption"

    pdb = find(base_resources, "PodDisruptionBudget", "ticket-cart-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_base_is_namespace_less_and_has_no_secret(base_resources):
    assert all("namespace" not in r["metadata"] for r in base_resources)
    assert not [r for r in base_resources if r["kind"] == "Secret"]


def test_overlay_sets_namespace_image_and_replicas(overlay_resources):
    namespace = find(overlay_resources, "Namespace", "ticket-cart-example")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {r["metadata"].get("namespace") for r in overlay_resources if r["kind"] != "Namespace"} == {
        "ticket-cart-example"
    }
    for container in containers(overlay_resources):
        assert container["image"] == "registry.example.com/ticket-cart:0.1.0"
    assert find(overlay_resources, "Deployment", "ticket-cart-worker")["spec"]["replicas"] == 2
    assert find(overlay_resources, "HorizontalPodAutoscaler", "ticket-cart-api")["spec"]["minReplicas"] == 3


def test_overlay_placeholder_secrets_are_marked_as_examples():
    values = read_env_file(K8S_OVERLAY / "secrets.env.example")
    for name in ("ADMIN_API_KEY", "CART_TOKEN_SECRET", "JWT_SECRET"):
        assert values[name].startswith("EXAMPLE-ONLY-"), name
    assert "EXAMPLE-ONLY-" in values["DATABASE_URL"]


def test_the_example_trusts_its_ingress_and_the_base_trusts_no_proxy(base_resources, overlay_resources):
    """Which proxies front the API depends on the cluster: the base names none, the example
    overlay its ingress controller's pod network."""
    assert "TRUSTED_PROXIES" not in find(base_resources, "ConfigMap", "ticket-cart-config")["data"]
    trusted = find(overlay_resources, "ConfigMap", "ticket-cart-config")["data"]["TRUSTED_PROXIES"]
    assert ipaddress.ip_network(trusted).is_private
