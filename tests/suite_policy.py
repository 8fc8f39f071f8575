"""How a run is shaped: the ``--redis`` switch, what a cluster pass runs, and which skips
CI allows. A pytest plugin, loaded by tests/conftest.py.

``--redis=standalone`` (the default) runs the tests on the standalone test Redis;
``--redis=cluster`` makes the root ``settings`` and ``redis`` fixtures name this run's
local 3-master Redis Cluster instead. ``make test`` runs both passes. The cluster pass
keeps only the tests whose Redis follows the switch: those that ask for the root
``settings`` or ``redis`` fixture, directly or through another fixture (``api``,
``services``, ``clean_state``, ...), which is to say for ``on_cluster``. Every other test
would repeat the standalone pass unchanged (no Redis, a Redis of its own, or a folder that
pins the cluster, as tests/cluster/ does), so it is deselected, and counted in the summary. A test that cannot
run on a cluster is marked ``@pytest.mark.standalone_only(reason=...)``: the cluster pass
leaves it out and lists it with its reason.

Under CI (``CI`` set to anything but ``""``, ``0`` or ``false``) the run ends with the list
of its skips, and a skip that ``ALLOWED_SKIPS`` does not name fails it: a skip is an
untested path, so each allowed one says why a CI machine may lack what the test needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_TOPOLOGIES = ("standalone", "cluster")

# Test (node id without its parameters) -> why CI may skip it. Nothing else may be skipped.
ALLOWED_SKIPS: dict[str, str] = {
    "tests/infra/test_resolve_servers.py::test_usable_local_servers_are_used": (
        "needs Redis and PostgreSQL on their usual local ports; a CI machine may have neither, "
        "and the run then uses embedded servers, which the other tests of that module check"
    ),
    "tests/deploy/test_k8s_manifests.py::test_kubectl_kustomize_builds_the_same_valid_resources": (
        "needs kubectl, which neither PyPI nor Debian ships in a usable version (Debian's "
        "kubernetes-client is 1.20); kubernetes-validate checks the same manifests without it"
    ),
}


@dataclass
class _ClusterPass:
    kept: int = 0
    same_on_standalone: int = 0
    standalone_only: dict[str, list[str]] = field(default_factory=dict)  # reason -> node ids


def _cluster_run(config: pytest.Config) -> bool:
    return config.getoption("redis") == "cluster"


@pytest.fixture(scope="session")
def on_cluster(request: pytest.FixtureRequest) -> bool:
    """True under ``--redis=cluster``. The root ``settings`` and ``redis`` ask for it; the
    cluster pass runs exactly the tests whose fixtures ask for it."""
    return _cluster_run(request.config)


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def allowed_skip(nodeid: str) -> str | None:
    """Why CI may skip this test, or None."""
    return ALLOWED_SKIPS.get(nodeid.partition("[")[0])


def folder_standalone_only(conftest: str, reason: str) -> Callable[[list[pytest.Item]], None]:
    """A folder's ``pytest_collection_modifyitems`` that marks every test below its conftest
    ``standalone_only(reason)``: ``pytest_collection_modifyitems = folder_standalone_only(__file__, WHY)``."""
    here = Path(conftest).parent

    def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
        for item in items:
            if item.path.is_relative_to(here):
                item.add_marker(pytest.mark.standalone_only(reason=reason))

    return pytest_collection_modifyitems


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis",
        choices=REDIS_TOPOLOGIES,
        default="standalone",
        help="the Redis of the root settings/redis fixtures: the standalone test Redis (default), or "
        "a local 3-master Redis Cluster, running only the tests that use them (tests/suite_policy.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "standalone_only(reason): cannot run on a Redis Cluster; left out of --redis=cluster, with its reason",
    )
    config.pluginmanager.register(_Policy(config), "suite-policy")


class _Policy:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cluster_pass: _ClusterPass | None = None
        self.skips: list[tuple[str, str]] = []  # (node id, reason)

    @pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("standalone_only")
            if marker is not None and not marker.kwargs.get("reason"):
                raise pytest.UsageError(f"{item.nodeid}: standalone_only needs a reason=")
        if not _cluster_run(self.config):
            return
        summary = self.cluster_pass = _ClusterPass()
        kept, left_out = [], []
        for item in items:
            marker = item.get_closest_marker("standalone_only")
            if not _follows_the_switch(item):
                summary.same_on_standalone += 1
                left_out.append(item)
            elif marker is not None:
                summary.standalone_only.setdefault(marker.kwargs["reason"], []).append(item.nodeid)
                left_out.append(item)
            else:
                kept.append(item)
        summary.kept = len(kept)
        if left_out:
            self.config.hook.pytest_deselected(items=left_out)
            items[:] = kept

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self._skipped(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:  # a whole module: pytest.importorskip, pytest.skip(allow_module_level=True)
            self._skipped(report)

    def _skipped(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.skips.append((report.nodeid, reason.removeprefix("Skipped: ")))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = self.cluster_pass
        if (
            summary is not None
            and not summary.kept
            and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED
            and (summary.same_on_standalone or summary.standalone_only)
        ):
            session.exitstatus = pytest.ExitCode.OK  # none of them runs on Redis: the standalone pass has them
        if under_ci() and self.disallowed_skips() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def disallowed_skips(self) -> list[tuple[str, str]]:
        return [(nodeid, reason) for nodeid, reason in self.skips if allowed_skip(nodeid) is None]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write = terminalreporter.write_line
        summary = self.cluster_pass
        if summary is not None:
            terminalreporter.section("--redis=cluster")
            write(
                f"{summary.kept} tests selected for the Redis Cluster; {summary.same_on_standalone} left out "
                "as they run the same in the standalone pass (no root settings/redis fixture)"
            )
            for reason, nodeids in summary.standalone_only.items():
                write(f"standalone_only, {len(nodeids)}: {reason}")
                for nodeid in nodeids:
                    write(f"    {nodeid}")
        if self.skips and under_ci():
            terminalreporter.section("skips (CI)")
            for nodeid, reason in self.skips:
                write(f"{'allowed' if allowed_skip(nodeid) else 'NOT ALLOWED'}: {nodeid}: {reason}")
            if self.disallowed_skips():
                write(
                    f"{len(self.disallowed_skips())} skip(s) not named in ALLOWED_SKIPS (tests/suite_policy.py): "
                    "the run fails under CI",
                    red=True,
                    bold=True,
                )


def _follows_the_switch(item: pytest.Item) -> bool:
    """Some fixture of the test asks for ``on_cluster``: the root ``settings`` or ``redis``,
    not a folder's override of them."""
    return "on_cluster" in getattr(item, "fixturenames", ())
