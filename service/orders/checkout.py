"""The checkout saga: a cart's parts in Redis become one order in PostgreSQL, exactly once.

1. begin: every part of the cart moves to `checkout` under one order id O (checkout_begin.lua;
   the parts' moves are in parts.py);
2. one PostgreSQL transaction writes O, its items and tickets, takes the seats (guarded) and
   counts the promo use (writer.py);
3. apply: every part's hold goes and O's changes of `sold` are counted, in one script per
   event (checkout_apply.lua).

What a failure means depends on when it happened (docs/checkout.md, "Three outcomes"):
- before the COMMIT was sent: certainly not committed. The parts go back to open, holds
  kept (checkout_abort.lua), and the answer is a clear refusal or 503 `unavailable`;
- while or after the COMMIT was sent: unknown. O is looked up on another connection once no
  transaction of O can still be running (outcome.py): committed -> applied and answered as
  a success; absent -> back to open; PostgreSQL unreachable -> the parts stay in checkout
  and the answer is 503 `checkout-pending`: the retry, a cart operation or the worker
  resolves O later (settlement.py). Nothing releases a part that names an unresolved order.

A retry meets the parts still naming the earlier O, and looks O up before anything else
(before the promo is quoted again: a committed O's own promo use must not refuse it). An
Idempotency-Key, a cart that is empty, or an order the cart remembers as unanswered
(settled while nobody listened) are answered with that order, for as long as it lives.
A per-cart Redis lock keeps two checkouts (or a settlement) of one cart from running at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg
from redis.exceptions import RedisError

from service.auth import CartRef
from service.cart.dto import CartItem
from service.cart.meta import (
    LAST_ORDER_FIELD,
    PROMO_FIELD,
    UNANSWERED_FIELD,
    events_of,
    meta_text,
)
from service.clock import now_ms
from service.errors import (
    CartEmpty,
    CheckoutInProgress,
    CheckoutPending,
    CurrencyMismatch,
    DomainError,
    SoldOut,
    Unavailable,
    ValidationFailed,
)
from service.inventory.store import fetch_tiers
from service.metrics import CHECKOUT_DURATION, CHECKOUTS
from service.orders import codes, store
from service.orders.draft import as_record, cart_items, draft_order
from service.orders.dto import OrderView
from service.orders.instructions import bank_account
from service.orders.outcome import Outcome
from service.orders.parts import CheckoutParts
from service.orders.reads import order_view
from service.orders.settlement import (
    ABORT_GRACE_MS,
    Settlement,
    checkout_window_ms,
    commit_fence_ms,
)
from service.orders.store import NewOrder, OrderRecord, TierGuardFailed
from service.orders.writer import CommitUnanswered, ExistingOrder, OrderWriter
from service.redis.refusals import refusal
from service.redis.replies import BeginReply

if TYPE_CHECKING:
    from service.cart.service import CartService
    from service.inventory.catalog import TierCatalog
    from service.promo.service import PromoService
    from service.redis.scripts import Scripts
    from service.settings import Settings

log = logging.getLogger("ticket_cart.orders")

__all__ = ["ABORT_GRACE_MS", "CheckoutResult", "Checkouts", "checkout_window_ms", "commit_fence_ms"]

LOCK_WAIT_SECONDS = 3.0  # how long a second checkout of one cart waits for the first
LOCK_POLL_SECONDS = 0.02
# Errors of a transaction that did not reach its COMMIT: PostgreSQL unreachable or refusing.
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class CheckoutResult(NamedTuple):
    order: OrderView
    created: bool  # False: an earlier checkout's order, answered again


class Checkouts:
    """Checking carts out, on what the saga uses and nothing more."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        scripts: Scripts,
        catalog: TierCatalog,
        carts: CartService,
        settlement: Settlement,
        promos: PromoService | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.scripts = scripts
        self.catalog = catalog
        self.carts = carts
        self.settlement = settlement
        self.promos = promos
        self.writer = OrderWriter(pool, promos, timeout_seconds=settings.database_timeout_seconds)
        self.bank = bank_account(settings)  # where buyers transfer to, shown with each order

    async def checkout(
        self,
        cart: CartRef,
        *,
        email: str,
        name: str | None,
        idempotency_key: str | None,
        clock: Callable[[], int] | None = None,
    ) -> CheckoutResult:
        """Turn the cart into an order (created) or answer the order it already became."""
        return await _checkout(self, cart, email, name, idempotency_key, clock or now_ms)


async def _checkout(
    deps: Checkouts, cart: CartRef, email: str, name: str | None, idempotency_key: str | None, clock: Callable[[], int]
) -> CheckoutResult:
    started = time.perf_counter()
    outcome = "error"
    try:
        saga = _Checkout(deps, cart, email, name, idempotency_key, clock)
        result = await saga.locked_run()
        outcome = "created" if result.created else "replayed"
        return result
    except DomainError as exc:
        outcome = exc.code
        raise
    finally:
        CHECKOUTS.labels(outcome).inc()
        CHECKOUT_DURATION.observe(time.perf_counter() - started)


class _Checkout:
    def __init__(
        self,
        deps: Checkouts,
        cart: CartRef,
        email: str,
        name: str | None,
        idempotency_key: str | None,
        clock: Callable[[], int],
    ) -> None:
        self.settings = deps.settings
        self.scripts = deps.scripts
        self.pool = deps.pool
        self.carts = deps.carts
        self.settlement = deps.settlement
        self.promos = deps.promos
        self.writer = deps.writer
        self.bank = deps.bank
        self.cart = cart
        self.email = email
        self.name = name
        self.key = idempotency_key
        self.clock = clock
        self.db_timeout = deps.settings.database_timeout_seconds
        self.window_ms = checkout_window_ms(self.db_timeout)
        self.meta: dict[bytes, bytes] = {}
        self.parts = CheckoutParts(deps.scripts, deps.catalog, cart.cart_id, clock=clock, window_ms=self.window_ms)
        self.answered: str | None = None  # the order this checkout answers
        self.drop_unanswered = False  # the cart's unanswered order was answered now, or no longer lives

    # -- the lock around the whole saga ------------------------------------------------------

    async def locked_run(self) -> CheckoutResult:
        token = uuid.uuid4().hex
        cart_id = self.cart.cart_id
        waited_until = time.monotonic() + LOCK_WAIT_SECONDS
        while not await self.scripts.checkout_lock(cart_id, token, self.window_ms):
            if time.monotonic() >= waited_until:
                raise CheckoutInProgress(
                    "Another checkout of this cart is running; try again in a moment", headers={"Retry-After": "1"}
                )
            await asyncio.sleep(LOCK_POLL_SECONDS)
        try:
            return await self.run()
        finally:
            self.carts.note_change(self.cart)  # a signed-in buyer's cart is saved again, behind
            remember = {LAST_ORDER_FIELD: f"{self.answered} {self.clock()}"} if self.answered else None
            forget = [PROMO_FIELD] if self.answered else []
            if self.answered or self.drop_unanswered:
                forget.append(UNANSWERED_FIELD)
            try:
                await self.scripts.checkout_unlock(
                    cart_id,
                    token,
                    remember=remember,
                    forget=forget,
                    meta_ttl_ms=self.carts.meta_ttl_ms,
                )
            except (RedisError, OSError) as exc:  # the lock times out by itself
                log.warning("checkout lock of cart %s not released: %r", cart_id, exc)

    # -- the saga ----------------------------------------------------------------------------

    async def run(self) -> CheckoutResult:
        self.meta = await self.scripts.cart_meta(self.cart.cart_id)
        unanswered = self.meta.get(UNANSWERED_FIELD.encode())
        if unanswered:
            # Our own note (a merge may bring one from the guest cart the user took over).
            # Dropped only once answered, or found not to live: a failed look-up keeps it.
            replay = await self.replay(uuid.UUID(unanswered.decode()), any_cart=True)
            self.drop_unanswered = True
            if replay is not None:
                return replay
        events = events_of(self.meta)
        begun_at = self.clock()
        replies = await self.parts.begin(events, begun_at) if events else {}
        begun = {e: r for e, r in replies.items() if r.result == "ok"}
        try:
            known = await self.known_order(begun)
            if known is not None:
                return known
            expired = [r for r in replies.values() if r.result == "expired"]
            if expired:
                raise refusal(expired[0])
            if any(r.result == "not-loaded" for r in replies.values()):
                raise RuntimeError(f"tiers of events {sorted(replies)} did not load into Redis")
            if not begun:
                return await self.replay_or_empty()
            order_id = await self.parts.under_fresh_id(begun, begun_at)
            return await self.write_and_apply(order_id, begun, begun_at)
        except asyncpg.DataError as exc:
            await self.parts.abort(begun, ABORT_GRACE_MS)
            log.warning("checkout of cart %s refused by PostgreSQL as bad data: %r", self.cart.cart_id, exc)
            raise ValidationFailed("A value of the checkout is not one the data store accepts") from exc
        except _STORE_ERRORS as exc:
            await self.parts.abort(begun, ABORT_GRACE_MS)
            log.warning(
                "checkout of cart %s failed in PostgreSQL; parts of orders that certainly did not commit "
                "back to open: %r",
                self.cart.cart_id,
                exc,
            )
            raise Unavailable(
                "The order could not be written; your seats are still held, try again", headers={"Retry-After": "1"}
            ) from exc
        except Exception:
            await self.parts.abort(begun, ABORT_GRACE_MS)
            raise

    async def known_order(self, begun: dict[str, BeginReply]) -> CheckoutResult | None:
        """An order this checkout must answer rather than write: the Idempotency-Key's, or
        an earlier try's that committed. Earlier ids found absent become reopenable;
        CheckoutPending when one cannot be resolved now (its parts stay in checkout)."""
        if self.key:
            found = await store.order_id_by_idempotency_key(self.pool, self.cart.cart_id, self.key)
            if found is not None:
                return await self.answer_existing(found, begun)
        earlier = sorted({r.order_id for r in begun.values()} - {self.parts.fresh_id})
        outcomes = {o: await self.settlement.outcome(o) for o in earlier}
        self.parts.absent(o for o, outcome in outcomes.items() if outcome is Outcome.ABSENT)
        committed = [o for o, outcome in outcomes.items() if outcome is Outcome.COMMITTED]
        if committed:
            return await self.answer_existing(uuid.UUID(committed[0]), begun)
        if Outcome.UNKNOWN in outcomes.values():
            raise CheckoutPending(
                "An earlier try of this checkout may have gone through; its seats stay held while "
                "that is found out. Retry the same checkout in a moment",
                headers={"Retry-After": "2"},
            )
        return None

    async def write_and_apply(self, order_id: str, begun: dict[str, BeginReply], begun_at: int) -> CheckoutResult:
        items = cart_items(begun)
        currencies = {item.currency for item in items}
        if len(currencies) != 1:
            raise CurrencyMismatch(
                "The cart holds tickets in more than one currency; remove some", currencies=sorted(currencies)
            )
        quote, customer_key = await self.quote(items)

        def draft() -> NewOrder:
            return draft_order(
                order_id=order_id,
                cart_id=self.cart.cart_id,
                user_id=self.cart.user_id,
                email=self.email,
                name=self.name,
                items=items,
                quote=quote,
                idempotency_key=self.key,
                payment_ttl_seconds=self.settings.payment_ttl_seconds,
                guest_token=self.guest_token(order_id),
            )

        try:
            order, inserted = await self.writer.write(
                draft,
                quote=quote,
                customer_key=customer_key,
                clock=self.clock,
                start_by_ms=begun_at + commit_fence_ms(self.db_timeout),
                watch=self.parts,
            )
        except ExistingOrder as existing:
            return await self.answer_existing(existing.order_id, begun)
        except TierGuardFailed as refused:
            raise await self.sold_out_in_postgres(refused) from None
        except CommitUnanswered as exc:
            return await self.resolve_ambiguous(order_id, begun, exc)
        await self.parts.apply(order_id, begun, inserted.sold)
        self.answered = order_id
        return CheckoutResult(
            order_view(as_record(order, inserted), self.guest_token(order_id), self.bank), created=True
        )

    async def quote(self, items: list[CartItem]) -> tuple[Any, str | None]:
        code = meta_text(self.meta, PROMO_FIELD)
        if self.promos is None or not code:
            return None, None
        customer_key = self.promos.customer_key(self.cart.user_id, self.email)
        return await self.promos.quote(code, items, customer_key), customer_key

    # -- answers other than a new order --------------------------------------------------------

    async def resolve_ambiguous(
        self, order_id: str, begun: dict[str, BeginReply], exc: CommitUnanswered
    ) -> CheckoutResult:
        """The COMMIT's answer was lost: find out from PostgreSQL how it ended."""
        outcome = await self.settlement.outcome(order_id)
        log.warning(
            "checkout of cart %s: the commit of order %s had no answer (%s); it %s",
            self.cart.cart_id,
            order_id,
            exc,
            outcome.value,
        )
        if outcome is Outcome.COMMITTED:
            result = await self.answer_existing(uuid.UUID(order_id), begun)
            return result._replace(created=True)
        if outcome is Outcome.ABSENT:
            self.parts.absent([order_id])
            await self.parts.abort(begun, ABORT_GRACE_MS)
            raise Unavailable(
                "The order could not be written; your seats are still held, try again", headers={"Retry-After": "1"}
            )
        raise CheckoutPending(
            "The order may have been written, and the data store cannot say yet; your seats stay held "
            "for it. Retry the same checkout in a moment to get the order",
            headers={"Retry-After": "2"},
        )

    async def answer_existing(self, order_id: uuid.UUID, begun: dict[str, BeginReply]) -> CheckoutResult:
        """A committed order of this cart (a lost answer, a retry, an Idempotency-Key):
        apply the parts that are in it, reopen the parts certainly in no order, answer it."""
        record = await store.fetch_order(self.pool, order_id)
        if record is None or record.cart_id != self.cart.cart_id:
            raise RuntimeError(f"order {order_id} was found but is not this cart's")
        oid = str(order_id)
        ours = [e for e, r in begun.items() if r.order_id == oid]
        if ours:
            await self.settlement.apply_committed(self.cart.cart_id, oid, ours)
        await self.parts.abort({e: r for e, r in begun.items() if r.order_id != oid}, ABORT_GRACE_MS)
        self.answered = oid
        return CheckoutResult(order_view(record, self.replayed_token(record), self.bank), created=False)

    async def replay(self, order_id: uuid.UUID, *, any_cart: bool = False) -> CheckoutResult | None:
        """The order again, if it is this cart's (or ``any_cart``) and still lives; else None."""
        record = await store.fetch_order(self.pool, order_id)
        if record is None or record.status not in ("pending_payment", "paid"):
            return None
        if record.cart_id != self.cart.cart_id and not any_cart:
            return None
        self.answered = str(order_id)
        return CheckoutResult(order_view(record, self.replayed_token(record), self.bank), created=False)

    async def replay_or_empty(self) -> CheckoutResult:
        """No parts: the cart's last live order (a retry of a checkout whose answer was
        lost), else CartEmpty."""
        order_id = await store.last_live_order(self.pool, self.cart.cart_id)
        result = await self.replay(order_id) if order_id else None
        if result is None:
            raise CartEmpty("The cart is empty; add tickets before checking out")
        return result

    async def sold_out_in_postgres(self, refused: TierGuardFailed) -> SoldOut:
        """Redis granted holds PostgreSQL cannot sell: Redis's `sold` was behind. Never
        expected; install PostgreSQL's counts so Redis stops granting them."""
        rows = await fetch_tiers(self.pool, [uuid.UUID(t) for t in refused.tier_ids])
        log.error(
            "OVERSELL PREVENTED: cart %s holds seats PostgreSQL no longer has (tiers %s); Redis sold was "
            "behind, installing PostgreSQL's counts",
            self.cart.cart_id,
            refused.tier_ids,
        )
        for event_id in sorted({str(r.event_id) for r in rows}):
            await self.scripts.install_sold(
                event_id=event_id,
                pairs=[(str(r.id), r.quantity_sold, r.sold_version) for r in rows if str(r.event_id) == event_id],
            )
        available = min((r.quantity_total - r.quantity_sold for r in rows), default=0)
        return SoldOut(f"Only {available} seats are left", available=available, tiers=refused.tier_ids)

    # -- the guest's access token ----------------------------------------------------------------

    def guest_token(self, order_id: str) -> str | None:
        if self.cart.user_id:
            return None
        return codes.order_access_token(self.settings.cart_token_secrets[0], order_id)

    def replayed_token(self, record: OrderRecord) -> str | None:
        """A guest order's token again (none after a key rotation: the order keeps only the
        token's hash). Also for a user who merged in the guest cart that made it."""
        if record.user_id is not None or record.access_token_hash is None:
            return None
        token = codes.order_access_token(self.settings.cart_token_secrets[0], str(record.id))
        return token if codes.access_token_matches(token, record.access_token_hash) else None
