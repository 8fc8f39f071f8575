"""The composition root: every long-lived object of a process, built once, wired here.

The API's lifespan and the worker's start-up both call ``open_services``; each domain
object gets only what it uses (its pool, scripts, settings, the other services it calls),
never the container. HTTP handlers receive their area's service by Litestar dependency
injection (``DEPENDENCIES``, declared once in ``create_app``); a buyer's route asks for one:
Litestar resolves two or more dependencies of a handler concurrently, in an anyio task
group per request, which cost the promo route half a millisecond (``make bench``; the two
admin routes of payment outcomes take two). Code
at the edge (middleware, the fast lane, ``service.http.identity`` for the caller's cart and
user) reads the container through ``services_of``. Nothing else holds global state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from litestar.datastructures import State
from litestar.di import Provide
from redis.asyncio import Redis

from service.auth import CartTokens, UserTokens
from service.cart.merge import CartMerge
from service.cart.saved import SavedCarts
from service.cart.service import CartService
from service.db.monitor import PostgresMonitor
from service.db.pool import create_pool
from service.events.endpoints import WebhookEndpoints
from service.inventory.catalog import TierCatalog
from service.inventory.service import InventoryService
from service.keys import Keys
from service.orders.checkout import Checkouts
from service.orders.instructions import bank_account
from service.orders.lifecycle import OrderLifecycle
from service.orders.reads import OrderReads
from service.orders.recovery import CheckoutRecovery
from service.orders.settlement import Settlement
from service.payments.auth import SePayAuth
from service.payments.intake import PaymentIntake
from service.payments.reads import PaymentReads
from service.promo.attempts import PromoAttempts
from service.promo.on_cart import CartPromos
from service.promo.service import PromoService
from service.redis.autopipeline import AutoPipelined
from service.redis.client import RedisClient, create_redis
from service.redis.scripts import Scripts
from service.settings import Settings

log = logging.getLogger("ticket_cart")


@dataclass
class Services:
    settings: Settings
    redis: RedisClient
    pool: asyncpg.Pool
    keys: Keys
    scripts: Scripts
    catalog: TierCatalog
    carts: CartService
    inventory: InventoryService
    promos: PromoService
    cart_promos: CartPromos
    cart_tokens: CartTokens
    user_tokens: UserTokens
    orders: OrderReads
    postgres: PostgresMonitor
    settlement: Settlement
    checkouts: Checkouts
    recovery: CheckoutRecovery
    lifecycle: OrderLifecycle
    merges: CartMerge
    webhooks: WebhookEndpoints
    payments: PaymentIntake
    payment_reads: PaymentReads


def build_services(settings: Settings, redis: RedisClient, pool: asyncpg.Pool) -> Services:
    keys = Keys(settings.key_prefix)
    # Script calls of one event-loop tick leave as one pipeline (standalone Redis only).
    # (create_redis makes a standalone client unless settings.redis_cluster; abstract: redis-py's
    # CommandsProtocol declares a connection_pool, which AutoPipelined has no use for.)
    scripts = Scripts(redis if settings.redis_cluster else AutoPipelined(cast(Redis, redis)), keys)  # type: ignore[abstract]
    catalog = TierCatalog(pool, scripts, max_per_line=settings.max_quantity_per_line)
    promos = PromoService(pool)
    settlement = Settlement(settings, pool, scripts)
    lifecycle = OrderLifecycle(pool, scripts, promos)
    carts = CartService(
        settings,
        scripts,
        catalog,
        discount=promos.discount,
        settle_pending=settlement.settle_cart,
        saved=SavedCarts(pool, scripts),
    )
    return Services(
        settings=settings,
        redis=redis,
        pool=pool,
        keys=keys,
        scripts=scripts,
        catalog=catalog,
        carts=carts,
        inventory=InventoryService(pool, scripts, catalog),
        promos=promos,
        cart_promos=CartPromos(
            promos,
            carts,
            PromoAttempts(
                scripts, keys, settings.promo_attempts_per_minute, settings.promo_attempts_address_per_minute
            ),
        ),
        cart_tokens=CartTokens(settings.cart_token_secrets),
        user_tokens=UserTokens(settings.jwt_secret),
        orders=OrderReads(pool, bank_account(settings)),
        postgres=PostgresMonitor(settings, pool),
        settlement=settlement,
        checkouts=Checkouts(settings, pool, scripts, catalog, carts, settlement, promos),
        recovery=CheckoutRecovery(scripts, settlement),
        lifecycle=lifecycle,
        merges=CartMerge(settings, scripts, carts),
        webhooks=WebhookEndpoints(pool),
        payments=PaymentIntake(
            pool,
            scripts,
            lifecycle,
            SePayAuth(settings.sepay_auth, settings.sepay_api_key, settings.sepay_hmac_secret),
            account_number=settings.payment_account_number,
            grace_seconds=settings.payment_grace_seconds,
            timeout_seconds=settings.database_timeout_seconds,
        ),
        payment_reads=PaymentReads(pool),
    )


async def open_services(settings: Settings) -> Services:
    """The Redis client, the PostgreSQL pool and every domain service, for the API's
    lifespan and the worker's start-up alike. Neither server being down at start is fatal:
    the scripts load on first use (or on the next readiness check), the pool connects on
    first use, and the PostgreSQL monitor starts probing (``service.db.monitor``)."""
    redis = create_redis(settings)
    pool = await create_pool(settings)  # connects nothing yet
    built = build_services(settings, redis, pool)
    built.postgres.start()
    try:
        await built.scripts.load()
    except Exception:
        log.warning("Redis unreachable at start-up; Lua scripts will load on first use")
    return built


async def close_services(built: Services) -> None:
    if built.carts.saved is not None:
        await built.carts.saved.close()  # what is still to be written behind
    await built.postgres.stop()
    await built.pool.close()
    if isinstance(built.scripts.redis, AutoPipelined):
        await built.scripts.redis.aclose()
    await built.redis.aclose()


def services_of(holder: Any) -> Services:
    """The container of a Litestar app, or of the app an ASGI scope belongs to."""
    app = holder["app"] if isinstance(holder, dict) else holder
    # By item: State's attribute access goes through __getattr__ after a failed normal
    # look-up, about 1 us; every cart request asks at least once.
    services: Services = app.state["services"]
    return services


def _provider(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state["services"], name)

    provide.__name__ = f"provide_{name}"
    return Provide(provide, sync_to_thread=False)


# What handlers may ask for by name: each area's service (a buyer's route asks for one: see above).
DEPENDENCIES = {
    name: _provider(name)
    for name in (
        "inventory",
        "merges",
        "promos",
        "cart_promos",
        "orders",
        "checkouts",
        "lifecycle",
        "payments",
        "payment_reads",
        "webhooks",
    )
}
