"""tests/orders/test_checkout_api.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.orders.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.orders.test_checkout_api import *  # noqa: F401,F403
