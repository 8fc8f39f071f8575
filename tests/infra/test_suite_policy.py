"""tests/suite_policy.py on small suites of its own (pytester): which tests a cluster pass
keeps, and which skips fail a run under CI."""

from __future__ import annotations

import pytest

from tests.suite_policy import ALLOWED_SKIPS

pytest_plugins = ("pytester",)

CONFTEST = """
import pytest

pytest_plugins = ("tests.suite_policy",)


@pytest.fixture
def settings(on_cluster):
    return "cluster" if on_cluster else "standalone"
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_cluster_pass_keeps_the_tests_whose_fixtures_follow_the_switch(suite):
    suite.makepyfile(
        test_mixed="""
        import pytest

        @pytest.fixture
        def api(settings):
            return settings

        def test_no_redis():
            pass

        def test_through_a_fixture(api, request):
            assert api == request.config.getoption("redis")

        @pytest.mark.standalone_only(reason="a private standalone Redis")
        def test_standalone(settings):
            assert settings == "standalone"
    """
    )
    standalone = suite.runpytest("-p", "no:cacheprovider")
    standalone.assert_outcomes(passed=3)

    cluster = suite.runpytest("-p", "no:cacheprovider", "--redis=cluster")
    cluster.assert_outcomes(passed=1, deselected=2)
    cluster.stdout.fnmatch_lines(
        [
            "1 tests selected for the Redis Cluster; 1 left out as they run the same in the standalone pass*",
            "standalone_only, 1: a private standalone Redis",
            "*test_mixed.py::test_standalone",
        ]
    )


def test_a_cluster_pass_with_nothing_on_redis_passes_but_one_that_collected_nothing_does_not(suite):
    suite.makepyfile(test_plain="def test_no_redis():\n    pass\n")
    assert suite.runpytest("-p", "no:cacheprovider", "--redis=cluster").ret == pytest.ExitCode.OK
    nothing = suite.runpytest("-p", "no:cacheprovider", "--redis=cluster", "-k", "no_such_test")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_standalone_only_needs_a_reason(suite):
    suite.makepyfile(test_bare="import pytest\n\n@pytest.mark.standalone_only\ndef test_x():\n    pass\n")
    result = suite.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*standalone_only needs a reason=*"])


def test_under_ci_a_skip_not_allowed_fails_the_run_and_every_skip_is_listed(suite, monkeypatch):
    allowed_path, _, allowed_name = next(iter(ALLOWED_SKIPS)).partition("::")
    suite.path.joinpath(allowed_path).parent.mkdir(parents=True)
    allowed_source = f"import pytest\n\ndef {allowed_name}():\n    pytest.skip('no tool')\n"
    suite.path.joinpath(allowed_path).write_text(allowed_source)
    suite.makepyfile(
        test_other="import pytest\n\ndef test_missing():\n    pytest.skip('not built yet')\n",
        test_module="import pytest\n\npytest.importorskip('no_such_module_here')\n",
    )

    assert suite.runpytest("-p", "no:cacheprovider").ret == pytest.ExitCode.OK  # not under CI

    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "NOT ALLOWED: test_module.py: could not import 'no_such_module_here'*",
            "NOT ALLOWED: test_other.py::test_missing: not built yet",
            f"allowed: {allowed_path}::{allowed_name}: no tool",
            "2 skip(s) not named in ALLOWED_SKIPS*",
        ]
    )

    only_allowed = suite.runpytest("-p", "no:cacheprovider", allowed_path)
    assert only_allowed.ret == pytest.ExitCode.OK
