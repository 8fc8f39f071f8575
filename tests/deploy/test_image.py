"""deploy/Dockerfile, its build context and entrypoint, checked without a Docker engine:
the instructions, what .dockerignore lets in, the dependency lock, and the entrypoint run
by sh."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from service.http.schema_viewer import ASSETS
from tests.deploy.deploy_files import DEPLOY, K8S_BASE, ROOT, load_yaml_documents

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(i.split(None, 1)[0].upper(), i.split(None, 1)[1]) for i in logical]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_base_image_is_python_3_11_slim_bookworm_pinned_by_patch_tag_and_digest():
    (arg,) = [a for i, a in _instructions() if i == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", arg)
    assert [a.split()[0] for i, a in _instructions() if i == "FROM"] == ["${PYTHON_IMAGE}"] * 2


def test_runtime_stage_runs_as_the_non_root_user_the_pods_expect():
    runtime = _stages()[-1]
    (user,) = [a for i, a in runtime if i == "USER"]
    uid = int(user.split(":")[0])
    assert uid != 0
    for path in K8S_BASE.glob("*.yaml"):
        for resource in load_yaml_documents(path):
            pod = resource.get("spec", {}).get("template", {}).get("spec")
            if pod:
                assert pod["securityContext"]["runAsUser"] == uid, path.name


def test_only_runtime_dependencies_are_installed():
    """The Dockerfile's requirement list is pyproject's dependencies: no embedded, no dev."""
    run = next(a for i, a in _stages()[0] if i == "RUN" and "tomllib" in a)
    program = shlex.split(run.split("&&")[0].split(">")[0])[2]
    listed = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert listed == pyproject["dependencies"]
    extras = {Requirement(r).name for deps in pyproject["optional-dependencies"].values() for r in deps}
    assert not {Requirement(r).name for r in pyproject["dependencies"]} & extras
    assert "--only-binary=:all:" in run and "-c requirements.lock" in run


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    return pins


def test_lock_pins_every_runtime_dependency_within_its_range():
    pins = _lock_pins()
    assert list(pins) == sorted(pins), "sorted, one per line"
    for dependency in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in deploy/requirements.lock (make -f deploy/deploy.mk lock)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement}"


def test_lock_pins_what_the_virtualenv_installed():
    """The lock is current: every package it pins is the version pip installed in .venv
    from pyproject (its newest fit, as `make lock` would pick). Offline: `make lock` itself
    asks PyPI for two foreign platforms, so this compares with the local resolution
    instead. A failure means the lock is behind (run `make lock`) or the .venv is (rebuild it)."""
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in metadata.distributions()}
    behind, ahead = [], []
    for name, pinned in _lock_pins().items():
        if name not in installed:
            continue  # not needed on this platform
        if Version(installed[name]) > Version(pinned):
            behind.append(f"{name}=={pinned} (.venv has {installed[name]})")
        elif Version(installed[name]) < Version(pinned):
            ahead.append(f"{name}=={pinned} (.venv has {installed[name]})")
    assert not behind, f"deploy/requirements.lock is behind: {', '.join(behind)}; run make lock"
    assert not ahead, (
        f".venv is older than deploy/requirements.lock: {', '.join(ahead)}; rebuild it (make clean; make venv)"
    )


def test_command_healthcheck_and_entrypoint():
    runtime = dict(_stages()[-1])
    assert runtime["CMD"] == (
        '["sh", "-c", "exec uvicorn service.app:app --host 0.0.0.0 --port 8000 --loop uvloop '
        '--http httptools --workers ${WEB_CONCURRENCY:-2} --timeout-graceful-shutdown 20 --no-proxy-headers"]'
    )
    assert "urllib.request" in runtime["HEALTHCHECK"]
    assert "http://127.0.0.1:8000/health/live" in runtime["HEALTHCHECK"]
    assert runtime["ENTRYPOINT"] == '["ticket-cart-entrypoint"]'
    assert "APP_ENV=production" in runtime["ENV"]


def test_application_code_and_lua_scripts_are_copied_side_by_side():
    copies = [a for i, a in _stages()[0] if i == "COPY"]
    assert {"service/ service/", "workers/ workers/", "lua/ lua/"} <= set(copies)


def _dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for written in patterns:
        negated = written.startswith("!")
        pattern = written.lstrip("!").rstrip("/")
        glob = pattern.replace("**/", "*")
        if any(fnmatch.fnmatchcase(c, glob) for c in candidates):
            excluded = not negated
    return excluded


def test_build_context_holds_what_the_dockerfile_copies_and_no_secrets():
    for instruction, argument in _instructions():
        if instruction == "COPY" and not argument.startswith("--from"):
            for source in argument.split()[:-1]:
                assert not _dockerignore_excludes(source.rstrip("/")), f"{source} is not in the context"
    for private in (
        ".data/dev-secrets.json",
        ".venv/bin/python",
        "deploy/.env",
        "tests/conftest.py",
        "devtools/dev_secrets.py",
        "service/__pycache__/settings.cpython-311.pyc",
        ".git/config",
    ):
        assert _dockerignore_excludes(private), private


def test_the_schema_viewers_files_are_in_the_image():
    """Swagger UI's files (service/http/swagger_ui/) reach the image: /schema needs no CDN."""
    copied = {source.rstrip("/") for i, a in _stages()[0] if i == "COPY" for source in a.split()[:-1]}
    files = sorted(path.relative_to(ROOT).as_posix() for path in ASSETS.iterdir() if path.is_file())
    assert "service/http/swagger_ui/swagger-ui-bundle.js" in files
    for name in files:
        assert not _dockerignore_excludes(name), f"{name} is not in the build context"
        assert any(name.startswith(f"{source}/") for source in copied), f"{name} is not copied"


def test_development_tools_are_not_in_the_image():
    """devtools/ (make run, embedded servers, development secrets), tests/ and loadtest/ are
    neither copied nor in the build context."""
    copied = [
        source.rstrip("/")
        for instruction, argument in _instructions()
        if instruction == "COPY" and not argument.startswith("--from")
        for source in argument.split()[:-1]
    ]
    assert not [source for source in copied if source.split("/")[0] in ("devtools", "tests", "loadtest")]
    for path in (
        "devtools",
        "devtools/__init__.py",
        "devtools/devserver.py",
        "devtools/embedded_servers.py",
        "tests/test_layout.py",
        "loadtest/bench.py",
    ):
        assert _dockerignore_excludes(path), path


def test_entrypoint_is_executable():
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR


def test_entrypoint_empties_the_metrics_directory_then_runs_the_command(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242.db").write_bytes(b"stale")
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'ls -A "$PROMETHEUS_MULTIPROC_DIR"; echo ran'],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ran\n"


def test_entrypoint_refuses_an_unwritable_metrics_directory():
    # Run as an unprivileged user (the image's own user is not root either): root may write
    # anywhere, so as root the check is made through setpriv as nobody.
    as_user = [] if os.geteuid() != 0 else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    parent = tempfile.mkdtemp(prefix="tc-entrypoint-")
    try:
        os.chmod(parent, 0o755)
        locked = os.path.join(parent, "locked")
        os.mkdir(locked, 0o555)
        done = subprocess.run(
            [*as_user, "sh", str(ENTRYPOINT), "echo", "ran"],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": os.path.join(locked, "prometheus")},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_entrypoint_refuses_a_metrics_path_that_is_a_file(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "ran"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(not_a_dir)},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("ticket-cart: PROMETHEUS_MULTIPROC_DIR=") and len(done.stderr.splitlines()) == 1


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (ROOT / ".venv/bin/hadolint").exists(), reason="hadolint is not installed"
)
def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv/bin/hadolint")
    done = subprocess.run(
        [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
