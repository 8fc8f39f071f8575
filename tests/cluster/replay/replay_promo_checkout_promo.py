"""tests/promo/test_checkout_promo.py on the local cluster (opt-in: see docs/redis-cluster.md)."""

from tests.promo.conftest import *  # noqa: F401,F403  (its fixtures, on the cluster settings)
from tests.promo.test_checkout_promo import *  # noqa: F401,F403
