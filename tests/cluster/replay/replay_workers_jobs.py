"""tests/workers/test_jobs.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.workers.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.workers.test_jobs import *  # noqa: F401,F403
