"""tests/cart/test_expiry_and_flush.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.cart.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.cart.test_expiry_and_flush import *  # noqa: F401,F403

del test_scripts_reload_after_redis_forgets_them  # noqa: F821  (runs on a private standalone Redis)
