"""`make` lists its targets; `.ci/run` fails with pytest's own exit code, "no tests
collected" (exit 5) included: a run that tested nothing is not a pass."""

import re
import subprocess

import pytest

from devtools import PROJECT_ROOT

STAMP = ".venv/.installed-from-pyproject"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def built_venv() -> None:
    if _run("make", "-q", STAMP).returncode != 0:
        pytest.skip("pyproject.toml changed since .venv was built: `make venv` first")


def test_make_alone_lists_every_target():
    result = _run("make")
    assert result.returncode == 0, result.stderr
    for target in ("venv", "test-tools", "run", "worker", "migrate", "lint", "test", "bench", "loadtest", "clean"):
        assert re.search(rf"^  {target}\s", result.stdout, re.MULTILINE), target


def test_the_readme_lists_every_target():
    listed = set(re.findall(r"^  ([a-z0-9-]+)\s", _run("make").stdout, re.MULTILINE))
    section = (PROJECT_ROOT / "README.md").read_text().split("\n## Make targets\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `make ([a-z0-9-]+)`", section, re.MULTILINE)) | {"help"}
    assert listed == documented


def test_ci_run_fails_when_no_tests_are_collected(built_venv):
    result = _run("bash", ".ci/run", "tests/infra/test_resolve_servers.py", "-k", "no_such_test")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "collected no tests" in result.stderr


def test_ci_run_fails_with_pytest_exit_code(built_venv):
    result = _run("bash", ".ci/run", "tests/infra/no_such_file.py")
    assert result.returncode == 4, result.stdout + result.stderr
