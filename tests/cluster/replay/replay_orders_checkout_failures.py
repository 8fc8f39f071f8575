"""tests/orders/test_checkout_failures.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.orders.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.orders.test_checkout_failures import *  # noqa: F401,F403
