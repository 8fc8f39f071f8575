"""lua/rate_limit.lua (GCRA, one key per subject) on real Redis, and the promo attempt
limits built on it. Time is the caller's ``now_ms``, so nothing here waits."""

from __future__ import annotations

import pytest
import pytest_asyncio
from redis.exceptions import ResponseError

from service.errors import RateLimited
from service.keys import Keys
from service.promo.attempts import PromoAttempts
from service.redis.scripts import Scripts
from tests.conftest import TEST_KEY_PREFIX

pytestmark = pytest.mark.usefixtures("clean_state")

NOW = 1_900_000_000_000


@pytest_asyncio.fixture(loop_scope="session")
async def scripts(redis) -> Scripts:
    return Scripts(redis, Keys(TEST_KEY_PREFIX))


async def test_a_burst_is_allowed_then_the_next_is_refused_with_its_wait(scripts):
    key = scripts.keys.rate_limit("test", "subject")
    replies = [await scripts.rate_limit(key, 10, 10, NOW) for _ in range(11)]
    assert [r.allowed for r in replies] == [True] * 10 + [False]
    assert [r.remaining for r in replies[:10]] == list(range(9, -1, -1))
    assert replies[10].retry_after_ms == 6_000  # one interval of 60 s / 10
    assert replies[9].reset_ms == 60_000


async def test_one_interval_later_one_more_is_allowed(scripts):
    key = scripts.keys.rate_limit("test", "subject")
    for _ in range(5):
        await scripts.rate_limit(key, 5, 5, NOW)
    assert not (await scripts.rate_limit(key, 5, 5, NOW + 11_999)).allowed
    assert (await scripts.rate_limit(key, 5, 5, NOW + 12_000)).allowed
    assert not (await scripts.rate_limit(key, 5, 5, NOW + 12_000)).allowed


async def test_refused_calls_do_not_push_the_wait_further(scripts):
    key = scripts.keys.rate_limit("test", "subject")
    await scripts.rate_limit(key, 1, 1, NOW)
    for _ in range(50):
        assert not (await scripts.rate_limit(key, 1, 1, NOW + 1_000)).allowed
    assert (await scripts.rate_limit(key, 1, 1, NOW + 60_000)).allowed


async def test_subjects_do_not_share_a_bucket(scripts):
    one, two = scripts.keys.rate_limit("test", "one"), scripts.keys.rate_limit("test", "two")
    assert (await scripts.rate_limit(one, 1, 1, NOW)).allowed
    assert not (await scripts.rate_limit(one, 1, 1, NOW)).allowed
    assert (await scripts.rate_limit(two, 1, 1, NOW)).allowed


async def test_cost_and_period_are_general(scripts):
    key = scripts.keys.rate_limit("test", "subject")
    # 100 per second, burst 10, a call of cost 4: two fit at once, the third waits.
    assert (await scripts.rate_limit(key, 100, 10, NOW, cost=4, period_ms=1_000)).remaining == 6
    assert (await scripts.rate_limit(key, 100, 10, NOW, cost=4, period_ms=1_000)).remaining == 2
    refused = await scripts.rate_limit(key, 100, 10, NOW, cost=4, period_ms=1_000)
    assert not refused.allowed and refused.retry_after_ms == 20


async def test_the_key_expires_once_the_bucket_is_full_again(scripts, redis):
    key = scripts.keys.rate_limit("test", "subject")
    await scripts.rate_limit(key, 10, 10, NOW)
    assert 0 < await redis.pttl(key) <= 6_000


async def test_bad_arguments_are_an_error_not_a_free_pass(scripts):
    with pytest.raises(ResponseError):
        await scripts.rate_limit(scripts.keys.rate_limit("test", "subject"), 0, 1, NOW)


def test_a_subjects_key_is_its_own_hash_tag(scripts):
    assert scripts.keys.rate_limit("promo-cart", "c1") == f"{TEST_KEY_PREFIX}{{rl:promo-cart:c1}}"


# -- promo attempts --------------------------------------------------------------------------


async def test_promo_attempts_are_limited_per_cart_and_per_client(scripts):
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=2, per_address_per_minute=2)
    await attempts.spend("cart-1", "10.0.0.1", NOW)
    await attempts.spend("cart-1", "10.0.0.2", NOW)
    with pytest.raises(RateLimited) as by_cart:  # a third address does not help the cart
        await attempts.spend("cart-1", "10.0.0.3", NOW)
    assert by_cart.value.headers["Retry-After"] == "30"

    await attempts.spend("cart-2", "10.0.0.1", NOW)
    with pytest.raises(RateLimited):  # nor does a new cart help the address
        await attempts.spend("cart-3", "10.0.0.1", NOW)


async def test_the_tighter_bucket_sets_the_headers(scripts):
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=3, per_address_per_minute=3)
    await attempts.spend("cart-1", "10.0.0.1", NOW)
    outcome = await attempts.spend("cart-2", "10.0.0.1", NOW)
    assert outcome.headers() == {"RateLimit-Limit": "3", "RateLimit-Remaining": "1", "RateLimit-Reset": "40"}


async def test_a_limit_of_zero_means_no_limit(scripts, redis):
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=0, per_address_per_minute=100)
    for _ in range(20):
        assert (await attempts.spend("cart-1", "10.0.0.1", NOW)).headers() == {}
    assert await redis.exists(scripts.keys.rate_limit("promo-cart", "cart-1")) == 0


async def test_a_trusted_backend_is_limited_per_cart_only(scripts, redis):
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=1, per_address_per_minute=1)
    await attempts.spend("cart-1", None, NOW)
    await attempts.spend("cart-2", None, NOW)
    with pytest.raises(RateLimited):
        await attempts.spend("cart-1", None, NOW)
    assert await attempts.spend(None, None, NOW) is not None  # nothing to count against


async def test_an_address_is_a_looser_bucket_than_a_cart(scripts):
    """Many buyers share an address (carrier-grade NAT): each cart keeps its own tight
    limit, and the address is refused only past its own, larger one."""
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=2, per_address_per_minute=5)
    for cart in ("cart-1", "cart-2"):
        for _ in range(2):
            await attempts.spend(cart, "10.0.0.1", NOW)
    for _ in range(3):  # refused by the cart: the address's bucket is not spent
        with pytest.raises(RateLimited) as by_cart:
            await attempts.spend("cart-1", "10.0.0.1", NOW)
        assert by_cart.value.headers["RateLimit-Limit"] == "2"
    last = await attempts.spend("cart-3", "10.0.0.1", NOW)  # the address's fifth
    assert last.headers() == {"RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "60"}
    with pytest.raises(RateLimited) as by_address:
        await attempts.spend("cart-4", "10.0.0.1", NOW)
    assert by_address.value.headers["RateLimit-Limit"] == "5"
    assert by_address.value.headers["Retry-After"] == "12"


async def test_an_address_limit_of_zero_leaves_the_cart_limit(scripts, redis):
    attempts = PromoAttempts(scripts, scripts.keys, per_minute=1, per_address_per_minute=0)
    await attempts.spend("cart-1", "10.0.0.1", NOW)
    await attempts.spend("cart-2", "10.0.0.1", NOW)
    with pytest.raises(RateLimited):
        await attempts.spend("cart-1", "10.0.0.1", NOW)
    assert await redis.exists(scripts.keys.rate_limit("promo-client", "10.0.0.1")) == 0
