"""tests/cart/test_merge.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.cart.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.cart.test_merge import *  # noqa: F401,F403
