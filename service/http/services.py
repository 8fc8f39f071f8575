"""The process's long-lived objects, built once in the app's lifespan.

Handlers reach them through ``services(request)``; nothing else holds global state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
from litestar import Request

from service.auth import CartTokens, UserTokens
from service.cart.saved import SavedCarts
from service.cart.service import CartService
from service.inventory.catalog import TierCatalog
from service.inventory.service import InventoryService
from service.keys import Keys
from service.orders.service import OrderService
from service.orders.settlement import Settlement
from service.promo.service import PromoService
from service.db.monitor import PostgresMonitor
from service.db.pool import create_pool
from service.redis.client import RedisClient, create_redis
from service.redis.autopipeline import AutoPipelined
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
    cart_tokens: CartTokens
    user_tokens: UserTokens
    orders: OrderService
    postgres: PostgresMonitor


def build_services(settings: Settings, redis: RedisClient, pool: asyncpg.Pool) -> Services:
    keys = Keys(settings.key_prefix)
    # Script calls of one event-loop tick leave as one pipeline (standalone Redis only).
    scripts = Scripts(redis if settings.redis_cluster else AutoPipelined(redis), keys)
    catalog = TierCatalog(pool, scripts, max_per_line=settings.max_quantity_per_line)
    promos = PromoService(settings, pool, scripts, keys)
    settlement = Settlement(settings, pool, scripts)
    return Services(
        settings=settings,
        redis=redis,
        pool=pool,
        keys=keys,
        scripts=scripts,
        catalog=catalog,
        carts=CartService(settings, scripts, catalog, discount=promos.discount,
                          settle_pending=settlement.settle_cart, saved=SavedCarts(pool, scripts)),
        inventory=InventoryService(pool, scripts, catalog),
        promos=promos,
        cart_tokens=CartTokens(settings.cart_token_secrets),
        user_tokens=UserTokens(settings.jwt_secret),
        orders=OrderService(pool),
        postgres=PostgresMonitor(settings, pool),
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


def services(request: Request) -> Services:
    return request.app.state.services
