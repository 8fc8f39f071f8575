"""The checkout saga: a cart's parts in Redis become one order in PostgreSQL, exactly once.

1. begin: every part of the cart moves to `checkout` under one order id O (checkout_begin.lua);
2. one PostgreSQL transaction writes O, its items and tickets, takes the seats (guarded) and
   counts the promo use;
3. apply: every part's hold goes and the new (sold, version) pairs are installed
   (checkout_apply.lua). A PostgreSQL failure in 2 moves the parts back to open, holds
   kept (checkout_abort.lua); a crash between 2 and 3 is finished by recovery.py.

Exactly once: O stays in the parts from their first begin until they are applied, so a
retry, a second request or the worker all write the same O, and PostgreSQL's primary key
refuses a second order (the clash answers the committed one). A per-cart Redis lock keeps
concurrent checkouts of one cart from even trying twice at once.

Parts naming different order ids: a part that named none takes the one the others name.
Two earlier ids at once cannot arise through the API (a merge drops the guest's id); if
they do, PostgreSQL decides: a committed one is answered (its parts applied, the others
back to open), else every part takes the smallest of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg
from redis.exceptions import RedisError

from service.cart.dto import CartItem
from service.cart.service import CartRef, events_of, now_ms
from service.errors import (
    CartEmpty,
    CheckoutInProgress,
    CurrencyMismatch,
    DomainError,
    ReservationExpired,
    SoldOut,
    Unavailable,
)
from service.inventory.store import fetch_tiers
from service.metrics import CHECKOUT_DURATION, CHECKOUTS
from service.orders import codes, store
from service.orders.draft import as_record, cart_items, draft_order
from service.orders.dto import OrderView
from service.orders.lifecycle import SoldChange, install_sold_changes
from service.orders.service import order_view
from service.orders.store import Inserted, NewOrder, OrderRecord, TierGuardFailed
from service.redis.replies import BeginReply

if TYPE_CHECKING:
    from service.http.services import Services

log = logging.getLogger("ticket_cart.orders")

ABORT_GRACE_MS = 60_000  # the least time a part moved back to open still holds its seats
LOCK_WAIT_SECONDS = 3.0  # how long a second checkout of one cart waits for the first
LOCK_POLL_SECONDS = 0.02
REPLAY_WINDOW_MS = 15 * 60 * 1000  # an emptied cart checked out again answers its last order
CODE_DRAWS = 5  # fresh codes after a clash on a unique code
DEADLOCK_RETRIES = 2
LAST_ORDER_FIELD = "last_order"  # cart meta: "<order id> <ms>" of the cart's last order
_CODE_CONSTRAINTS = {"orders_number_key", "orders_payment_code_key", "tickets_code_key", "tickets_pkey"}
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class CheckoutResult(NamedTuple):
    order: OrderView
    created: bool  # False: an earlier checkout's order, answered again


def checkout_window_ms(database_timeout_seconds: float) -> int:
    """How long a part may stay in checkout before the worker resolves it."""
    return int((2 * database_timeout_seconds + 30) * 1000)


def commit_fence_ms(database_timeout_seconds: float) -> int:
    """A checkout starts its transaction within this of its begin, and that transaction
    is cut off after database_timeout: so it ends well inside the checkout window, and
    the worker never resolves a part whose order could still commit."""
    return int((database_timeout_seconds + 10) * 1000)


async def checkout(
    services: Services, cart: CartRef, *, email: str, name: str | None, idempotency_key: str | None,
    clock: Callable[[], int] | None = None,
) -> CheckoutResult:
    """Turn the cart into an order (created) or answer the order it already became."""
    started = time.perf_counter()
    outcome = "error"
    try:
        saga = _Checkout(services, cart, email, name, idempotency_key, clock or now_ms)
        result = await saga.locked_run()
        outcome = "created" if result.created else "replayed"
        return result
    except DomainError as exc:
        outcome = exc.code
        raise
    finally:
        CHECKOUTS.labels(outcome).inc()
        CHECKOUT_DURATION.observe(time.perf_counter() - started)


class _Existing(Exception):
    """The transaction met an order that already exists (by id or idempotency key)."""

    def __init__(self, order_id: uuid.UUID) -> None:
        self.order_id = order_id


class _Checkout:
    def __init__(self, services: Services, cart: CartRef, email: str, name: str | None,
                 idempotency_key: str | None, clock: Callable[[], int]) -> None:
        self.s = services
        self.scripts = services.scripts
        self.cart = cart
        self.email = email
        self.name = name
        self.key = idempotency_key
        self.clock = clock
        self.db_timeout = services.settings.database_timeout_seconds
        self.window_ms = checkout_window_ms(self.db_timeout)
        self.promos = getattr(services, "promos", None)
        self.meta: dict[bytes, bytes] = {}
        self.fresh_id = ""  # the order id this checkout proposed to parts that named none
        self.last_order: str | None = None

    # -- the lock around the whole saga ------------------------------------------------------

    async def locked_run(self) -> CheckoutResult:
        token = uuid.uuid4().hex
        cart_id = self.cart.cart_id
        waited_until = time.monotonic() + LOCK_WAIT_SECONDS
        while not await self.scripts.checkout_lock(cart_id, token, self.window_ms):
            if time.monotonic() >= waited_until:
                raise CheckoutInProgress("Another checkout of this cart is running; try again in a moment",
                                         headers={"Retry-After": "1"})
            await asyncio.sleep(LOCK_POLL_SECONDS)
        try:
            return await self.run()
        finally:
            remember = {LAST_ORDER_FIELD: f"{self.last_order} {self.clock()}"} if self.last_order else None
            try:
                await self.scripts.checkout_unlock(
                    cart_id, token, remember=remember, forget=["promo"] if remember else None,
                    meta_ttl_ms=self.s.carts.meta_ttl_ms,
                )
            except (RedisError, OSError) as exc:  # the lock times out by itself
                log.warning("checkout lock of cart %s not released: %r", cart_id, exc)

    # -- the saga ----------------------------------------------------------------------------

    async def run(self) -> CheckoutResult:
        self.meta = await self.scripts.cart_meta(self.cart.cart_id)
        events = events_of(self.meta)
        if not events:
            return await self.replay_or_empty()
        begun_at = self.clock()
        begun = await self.begin(events, begun_at)
        if not begun:
            return await self.replay_or_empty()
        try:
            order_id = await self.one_order_id(begun, begun_at)
            if isinstance(order_id, CheckoutResult):
                return order_id
            return await self.write_and_apply(order_id, begun, begun_at)
        except _STORE_ERRORS as exc:
            await self.abort(begun, ABORT_GRACE_MS)
            log.warning("checkout of cart %s failed in PostgreSQL, parts back to open: %r", self.cart.cart_id, exc)
            raise Unavailable("The order could not be written; your seats are still held, try again",
                              headers={"Retry-After": "1"}) from exc
        except Exception:
            await self.abort(begun, ABORT_GRACE_MS)
            raise

    async def begin(self, events: list[str], now: int) -> dict[str, BeginReply]:
        """Every part into checkout; {} when the cart has none. ReservationExpired (the
        parts moved so far back to open) when a part's hold had expired."""
        deadline = now + self.window_ms
        fresh = str(uuid.uuid4())
        replies = await self.scripts.checkout_begin(
            cart_id=self.cart.cart_id, event_ids=events, order_id=fresh, replace="", now_ms=now, deadline_ms=deadline
        )
        unloaded = [e for e, r in replies.items() if r.r == "not-loaded"]
        if unloaded:  # a tier evicted from Redis: load it from PostgreSQL, begin again
            try:
                for tier_id in sorted({t for e in unloaded for t in replies[e].tiers}):
                    await self.s.catalog.load(tier_id)
                replies.update(await self.scripts.checkout_begin(
                    cart_id=self.cart.cart_id, event_ids=unloaded, order_id=fresh, replace="", now_ms=now,
                    deadline_ms=deadline,
                ))
            except Exception:
                await self.abort({e: r for e, r in replies.items() if r.r == "ok"}, 0)
                raise
        begun = {e: r for e, r in replies.items() if r.r == "ok"}
        if any(r.r == "expired" for r in replies.values()):
            await self.abort(begun, 0)
            raise ReservationExpired("The hold on some of the cart's seats has expired; add them again")
        if any(r.r == "not-loaded" for r in replies.values()):
            await self.abort(begun, 0)
            raise RuntimeError(f"tiers of events {unloaded} did not load into Redis")
        self.fresh_id = fresh
        return begun

    async def one_order_id(self, begun: dict[str, BeginReply], now: int) -> str | CheckoutResult:
        """The one order id every part names (see the module's docstring)."""
        named = {r.o for r in begun.values()}
        if len(named) == 1:
            return named.pop()
        earlier = sorted(named - {self.fresh_id})
        if len(earlier) > 1:
            existing = await store.existing_orders(self.s.pool, [uuid.UUID(o) for o in earlier])
            if existing:
                return await self.answer_existing(min(existing), begun)
        target = earlier[0]
        for event_id, reply in list(begun.items()):
            if reply.o != target:
                again = await self.scripts.checkout_begin(
                    cart_id=self.cart.cart_id, event_ids=[event_id], order_id=target, replace=reply.o,
                    now_ms=now, deadline_ms=now + self.window_ms,
                )
                begun[event_id] = again[event_id]
        if any(r.r != "ok" or r.o != target for r in begun.values()):
            await self.abort(begun, ABORT_GRACE_MS)
            raise CheckoutInProgress("The cart changed during checkout; try again", headers={"Retry-After": "1"})
        return target

    async def write_and_apply(self, order_id: str, begun: dict[str, BeginReply], begun_at: int) -> CheckoutResult:
        items = cart_items(begun)
        currencies = {item.currency for item in items}
        if len(currencies) != 1:
            raise CurrencyMismatch("The cart holds tickets in more than one currency; remove some",
                                   currencies=sorted(currencies))
        quote, customer_key = await self.quote(items)
        try:
            order, inserted = await self.write(order_id, items, quote, customer_key, begun_at)
        except _Existing as existing:
            return await self.answer_existing(existing.order_id, begun)
        except TierGuardFailed as refused:
            raise await self.sold_out_in_postgres(refused) from None
        await self.apply(order_id, begun, inserted.sold)
        self.last_order = order_id
        token = None if self.cart.user_id else self.access_token(order_id)
        return CheckoutResult(order_view(as_record(order, inserted), token), created=True)

    async def quote(self, items: list[CartItem]) -> tuple[Any, str | None]:
        code = self.meta.get(b"promo")
        if self.promos is None or not code:
            return None, None
        customer_key = self.promos.customer_key(self.cart.user_id, self.email)
        return await self.promos.quote(code.decode(), items, customer_key), customer_key

    async def write(self, order_id: str, items: list[CartItem], quote: Any, customer_key: str | None,
                    begun_at: int) -> tuple[NewOrder, Inserted]:
        """The transaction, with fresh codes after a clash on one and again after a deadlock.
        _Existing when the order (or the idempotency key's order) is already there."""
        clashes = deadlocks = 0
        while True:
            if self.clock() - begun_at > commit_fence_ms(self.db_timeout):
                raise TimeoutError("the checkout took too long to reach PostgreSQL")
            order = draft_order(
                order_id=order_id, cart_id=self.cart.cart_id, user_id=self.cart.user_id, email=self.email,
                name=self.name, items=items, quote=quote, idempotency_key=self.key,
                payment_ttl_seconds=self.s.settings.payment_ttl_seconds,
                guest_token=None if self.cart.user_id else self.access_token(order_id),
            )
            try:
                async with asyncio.timeout(self.db_timeout):
                    async with self.s.pool.acquire(timeout=self.db_timeout) as conn, conn.transaction():
                        inserted = await store.insert_order(conn, order)
                        if quote is not None:
                            await self.promos.redeem(conn, quote, order.id, customer_key)
                return order, inserted
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "orders_pkey":
                    raise _Existing(order.id) from None
                if exc.constraint_name == "orders_cart_idempotency" and self.key:
                    found = await store.order_id_by_idempotency_key(self.s.pool, self.cart.cart_id, self.key)
                    if found is not None:
                        raise _Existing(found) from None
                clashes += 1
                if exc.constraint_name not in _CODE_CONSTRAINTS or clashes >= CODE_DRAWS:
                    raise
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                deadlocks += 1
                if deadlocks > DEADLOCK_RETRIES:
                    raise

    # -- answers other than a new order --------------------------------------------------------

    async def answer_existing(self, order_id: uuid.UUID, begun: dict[str, BeginReply]) -> CheckoutResult:
        """The order was committed before (a lost answer, a retry, a commit after a timeout):
        apply the parts that belong to it, put the others back, answer it."""
        record = await store.fetch_order(self.s.pool, order_id)
        if record is None or record.cart_id != self.cart.cart_id:
            raise RuntimeError(f"order {order_id} clashed but is not this cart's")
        oid = str(order_id)
        mine = {item.event_id for item in record.items}
        ours = {e: r for e, r in begun.items() if r.o == oid and e in mine}
        pairs = await store.sold_pairs(self.s.pool, [uuid.UUID(item.tier_id) for item in record.items])
        await self.apply(oid, ours, pairs)
        for other_id, group in _by_order({e: r for e, r in begun.items() if e not in ours}).items():
            # Parts that are not in the committed order: back to open, and no longer
            # naming it where they named it (it is committed, so nothing can clash later).
            await self.scripts.checkout_abort(cart_id=self.cart.cart_id, order_id=other_id, event_ids=group,
                                              now_ms=self.clock(), grace_ms=ABORT_GRACE_MS, forget=other_id == oid)
        self.last_order = oid
        return CheckoutResult(order_view(record, self.replayed_token(record)), created=False)

    async def replay_or_empty(self) -> CheckoutResult:
        """No parts: the cart's last order if this is a retry of its checkout, else CartEmpty."""
        order_id: uuid.UUID | None = None
        if self.key:
            order_id = await store.order_id_by_idempotency_key(self.s.pool, self.cart.cart_id, self.key)
        else:
            last = self.meta.get(LAST_ORDER_FIELD.encode(), b"").decode().split()
            if len(last) == 2 and self.clock() - int(last[1]) <= REPLAY_WINDOW_MS:
                order_id = uuid.UUID(last[0])
        record = await store.fetch_order(self.s.pool, order_id) if order_id else None
        if record is None or record.cart_id != self.cart.cart_id:
            raise CartEmpty("The cart is empty; add tickets before checking out")
        return CheckoutResult(order_view(record, self.replayed_token(record)), created=False)

    async def sold_out_in_postgres(self, refused: TierGuardFailed) -> SoldOut:
        """Redis granted holds PostgreSQL cannot sell: Redis's `sold` was behind. Never
        expected; install PostgreSQL's counts so Redis stops granting them."""
        rows = await fetch_tiers(self.s.pool, [uuid.UUID(t) for t in refused.tier_ids])
        log.error("OVERSELL PREVENTED: cart %s holds seats PostgreSQL no longer has (tiers %s); Redis sold was "
                  "behind, installing PostgreSQL's counts", self.cart.cart_id, refused.tier_ids)
        await install_sold_changes(self.scripts, [
            SoldChange(str(r.event_id), str(r.id), r.quantity_sold, r.sold_version) for r in rows
        ])
        available = min((r.quantity_total - r.quantity_sold for r in rows), default=0)
        return SoldOut(f"Only {available} seats are left", available=available, tiers=refused.tier_ids)

    # -- the parts ---------------------------------------------------------------------------

    async def apply(self, order_id: str, parts: dict[str, BeginReply], sold: Iterable[SoldChange]) -> None:
        by_event: dict[str, list[tuple[str, int, int]]] = {e: [] for e in parts}
        for change in sold:
            if change.event_id in by_event:
                by_event[change.event_id].append((change.tier_id, change.sold, change.version))
        try:
            await self.scripts.checkout_apply(cart_id=self.cart.cart_id, order_id=order_id, sold=by_event)
        except (RedisError, OSError) as exc:  # committed: the worker's recovery applies it
            log.warning("order %s committed but its parts are not applied yet (recovery will): %r", order_id, exc)

    async def abort(self, parts: dict[str, BeginReply], grace_ms: int) -> None:
        """Parts back to open, holds kept; on a Redis failure they wait for recovery."""
        try:
            for order_id, group in _by_order(parts).items():
                await self.scripts.checkout_abort(cart_id=self.cart.cart_id, order_id=order_id, event_ids=group,
                                                  now_ms=self.clock(), grace_ms=grace_ms)
        except (RedisError, OSError) as exc:
            log.warning("parts of cart %s left in checkout (recovery will resolve them): %r", self.cart.cart_id, exc)

    # -- the guest's access token ----------------------------------------------------------------

    def access_token(self, order_id: str) -> str:
        return codes.order_access_token(self.s.settings.cart_token_secrets[0], order_id)

    def replayed_token(self, record: OrderRecord) -> str | None:
        """The guest's token again, for the cart that made the order (none after a key
        rotation: the order keeps only the token's hash)."""
        if record.user_id is not None or record.access_token_hash is None:
            return None
        token = self.access_token(str(record.id))
        return token if codes.access_token_matches(token, record.access_token_hash) else None


def _by_order(parts: dict[str, BeginReply]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for event_id, reply in sorted(parts.items()):
        groups.setdefault(reply.o, []).append(event_id)
    return groups
