"""Promo codes: admin definitions, the cart view's discount, and the checkout's quote,
redemption and release (applying a code to a cart: on_cart.py).

Definitions live in PostgreSQL; the cart view reads them through a short per-process
cache, so a view never waits on PostgreSQL more than once per code every few seconds.
Use counts are only ever changed inside the caller's order transaction, under guards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence

import asyncpg

from service.cart.dto import CartItem
from service.clock import utcnow
from service.errors import (
    Conflict,
    InvalidPromo,
    NotFound,
    PromoExhausted,
)
from service.promo import store
from service.promo.dto import PromoCode, PromoDefinition, PromoQuote
from service.promo.rules import (
    check_applies,
    check_definition,
    invalid,
    line_discounts,
    normalize_code,
    uses_refusal,
)

CACHE_TTL_SECONDS = 5.0
_CACHE_LIMIT = 10_000
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

log = logging.getLogger("ticket_cart.promo")


def customer_key(user_id: str | None, email: str) -> str:
    """Whom per-customer limits count: the signed-in user, else the e-mail, hashed."""
    if user_id:
        return f"user:{user_id}"
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class PromoService:
    customer_key = staticmethod(customer_key)

    def __init__(self, pool: asyncpg.Pool, cache_ttl_seconds: float = CACHE_TTL_SECONDS) -> None:
        self.pool = pool
        self.cache_ttl = cache_ttl_seconds
        self._cache: dict[str, tuple[float, PromoCode | None]] = {}
        self._loading: dict[str, asyncio.Future[PromoCode | None]] = {}

    # -- definitions (admin) ---------------------------------------------------------------

    async def put(self, body: PromoDefinition) -> tuple[PromoCode, bool]:
        """Create the code, or replace its definition (``used`` is kept): (view, created)."""
        promo = check_definition(body)
        async with self.pool.acquire() as conn, conn.transaction():
            used = await store.used_for_update(conn, promo.code)
            if used is not None and promo.max_uses is not None and promo.max_uses < used:
                raise Conflict(f"max_uses cannot go below the {used} uses already counted", field="max_uses", used=used)
            stored, created = await store.upsert_promo(conn, promo)
        self._remember(stored.code, stored)
        return stored, created

    async def get(self, raw_code: str) -> PromoCode:
        code = normalize_code(raw_code)
        promo = await store.fetch_promo(self.pool, code) if code else None
        if promo is None:
            raise NotFound(f"No promo code {raw_code.strip().upper()!r}")
        self._remember(promo.code, promo)
        return promo

    # -- the cached definitions the cart view reads ----------------------------------------

    def _remember(self, code: str, promo: PromoCode | None) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[code] = (time.monotonic(), promo)

    async def definition(self, code: str) -> PromoCode | None:
        """The code as PostgreSQL had it at most ``cache_ttl`` seconds ago (None: no such code).

        Concurrent misses of one code share one query.
        """
        entry = self._cache.get(code)
        if entry is not None and time.monotonic() - entry[0] < self.cache_ttl:
            return entry[1]
        loading = self._loading.get(code)
        if loading is None:
            loading = asyncio.ensure_future(self._load(code))
            self._loading[code] = loading
            loading.add_done_callback(lambda _: self._loading.pop(code, None))
        return await asyncio.shield(loading)

    async def _load(self, code: str) -> PromoCode | None:
        promo = await store.fetch_promo(self.pool, code)
        self._remember(code, promo)
        return promo

    async def discount(self, items: Sequence[CartItem], code: str) -> int:
        """The cart view's DiscountRule: what the code takes off these lines now, else 0.

        Per-customer limits are not known until checkout; a code that stopped applying
        (expired, used up, lines removed) shows no discount. With PostgreSQL unreachable
        the last known definition is used, so the cart view keeps working.
        """
        try:
            promo = await self.definition(code)
        except _STORE_ERRORS as exc:
            log.warning("promo definition unavailable for %s, using the last known: %r", code, exc)
            entry = self._cache.get(code)
            promo = entry[1] if entry else None
        try:
            check_applies(promo, items, utcnow())
        except InvalidPromo:
            return 0
        assert promo is not None
        if uses_refusal(promo, None):
            return 0
        return sum(line_discounts(promo, items).values())

    async def for_customer(self, code: str, user_key: str | None) -> tuple[PromoCode | None, int]:
        """The code fresh from PostgreSQL (an admin's change shows at once), with the uses
        ``user_key`` made of it (0 without one)."""
        promo, customer_uses = await store.fetch_promo_for_customer(self.pool, code, user_key)
        self._remember(code, promo)
        return promo, customer_uses

    # -- checkout --------------------------------------------------------------------------

    async def quote(
        self, code: str, items: Sequence[CartItem], customer_key: str, now: dt.datetime | None = None
    ) -> PromoQuote:
        """Validate the code again, fresh from PostgreSQL, for this customer and these lines.

        InvalidPromo (reason as when applied) or PromoExhausted (``limit``: "total" or
        "customer"). The quote's line discounts are per tier id and add up to its discount.
        """
        normalized = normalize_code(code)
        promo, customer_uses = (
            await store.fetch_promo_for_customer(self.pool, normalized, customer_key) if normalized else (None, 0)
        )
        if normalized:
            self._remember(normalized, promo)
        try:
            check_applies(promo, items, now or utcnow())
        except InvalidPromo as exc:
            log.info("promo quote code=%s result=%s customer=%s", normalized, exc.extra.get("reason"), customer_key)
            raise
        assert promo is not None
        refusal = uses_refusal(promo, customer_uses)
        if refusal:
            log.info("promo quote code=%s result=exhausted limit=%s customer=%s", promo.code, refusal, customer_key)
            raise _exhausted(refusal)
        lines = line_discounts(promo, items)
        return PromoQuote(code=promo.code, discount=sum(lines.values()), line_discounts=lines)

    async def redeem(self, conn: asyncpg.Connection, quote: PromoQuote, order_id: uuid.UUID, customer_key: str) -> None:
        """Count the use inside the caller's order transaction (the order row must exist).

        PromoExhausted when the total or this customer's limit is reached (or InvalidPromo
        "inactive" when an admin switched the code off meanwhile); on either, this call's own
        changes are undone and the caller rolls back. Holds the code's row lock until the
        transaction ends, so call it late in the transaction.
        """
        if not conn.is_in_transaction():
            raise RuntimeError("redeem must run inside the order's transaction")
        counted = await store.count_use(conn, quote.code)
        if counted is None:
            promo = await store.fetch_promo(conn, quote.code)
            result = "inactive" if promo is None or not promo.active else "exhausted"
            log.info("promo redeem code=%s order=%s result=%s customer=%s", quote.code, order_id, result, customer_key)
            raise invalid("inactive") if result == "inactive" else _exhausted("total")
        _, per_customer = counted
        if await store.count_customer_use(conn, quote.code, customer_key, per_customer) is None:
            await store.uncount_use(conn, quote.code)
            log.info(
                "promo redeem code=%s order=%s result=exhausted limit=customer customer=%s",
                quote.code,
                order_id,
                customer_key,
            )
            raise _exhausted("customer")
        await store.record_redemption(conn, order_id, quote.code, customer_key, quote.discount)
        log.info(
            "promo redeem code=%s order=%s result=redeemed discount=%d customer=%s",
            quote.code,
            order_id,
            quote.discount,
            customer_key,
        )

    async def release(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> bool:
        """Give the order's use back (cancel, expiry). Idempotent: only the first call of an
        order gives anything back. True when this call released a redemption."""
        if not conn.is_in_transaction():
            async with conn.transaction():
                return await self.release(conn, order_id)
        released = await store.release_redemption(conn, order_id)
        if released is None:
            return False
        code, key = released
        await store.uncount_use(conn, code)
        await store.uncount_customer_use(conn, code, key)
        log.info("promo release code=%s order=%s customer=%s", code, order_id, key)
        return True

    async def retake(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> bool:
        """Count a released use again, for an order a late payment revived (in its transaction).

        True when the order's use is counted (again, or still); False when it had no code,
        or the code or this customer has no use left (the order keeps its discount anyway:
        the buyer paid the total they were quoted). Both counts or neither.
        """
        redemption = await store.redemption_for_update(conn, order_id)
        if redemption is None:
            return False
        code, key, released = redemption
        if not released:
            return True
        counted = await store.count_use(conn, code, only_if_active=False)
        if counted is None:
            return False
        if await store.count_customer_use(conn, code, key, counted[1]) is None:
            await store.uncount_use(conn, code)
            return False
        await store.unrelease_redemption(conn, order_id)
        log.info("promo retake code=%s order=%s customer=%s", code, order_id, key)
        return True


def _exhausted(limit: str) -> PromoExhausted:
    if limit == "customer":
        return PromoExhausted("This customer has used this promo code the most times allowed", limit="customer")
    return PromoExhausted("This promo code has been used up", limit="total")
