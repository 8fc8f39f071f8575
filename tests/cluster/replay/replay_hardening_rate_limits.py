"""tests/hardening/test_rate_limits.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.hardening.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.hardening.test_rate_limits import *  # noqa: F401,F403
