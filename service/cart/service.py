"""Cart operations: one reserve script per change (meta write pipelined with it), views.

Nothing here knows HTTP. Errors are domain errors. PostgreSQL is touched only to load a
tier Redis does not have yet.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from service.auth import CartRef
from service.cart.dto import CartView
from service.cart.hints import EventHints
from service.cart.meta import (
    CURRENCY_FIELD,
    EVENT_FIELD,
    HISTORY_FIELDS,
    OWNER_FIELD,
    PROMO_FIELD,
    SAVED_FIELD,
    events_of,
    meta_text,
)
from service.cart.pricing import DiscountRule, no_discount
from service.cart.restore import restore_saved_cart
from service.cart.saved import SavedCarts
from service.cart.view import cart_view
from service.clock import now_ms
from service.errors import (
    CurrencyMismatch,
    DomainError,
    LimitExceeded,
    SoldOut,
)
from service.inventory.catalog import TierCatalog
from service.metrics import CART_OPERATIONS, RESERVATIONS, SOLD_OUT_REFUSALS
from service.redis.refusals import checkout_in_progress, refusal
from service.redis.replies import ReserveReply, ViewReply
from service.redis.scripts import Scripts
from service.settings import Settings

SWEEP_ON_RESERVE = 20  # expired parts each reserve releases first (bounded work)


T = TypeVar("T")


@functools.cache
def _operation(op: str, result: str) -> Any:
    """The CART_OPERATIONS child of (op, result), looked up once (results are few codes)."""
    return CART_OPERATIONS.labels(op, result)


def counted(op: Callable[..., str]) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Count a cart operation in CART_OPERATIONS by its outcome: ok or the problem code."""

    def wrap(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(fn)
        async def run(self: Any, *args: Any, **kwargs: Any) -> T:
            name = op(*args, **kwargs)
            try:
                result = await fn(self, *args, **kwargs)
            except DomainError as exc:
                _operation(name, exc.code).inc()
                if isinstance(exc, SoldOut):
                    SOLD_OUT_REFUSALS.inc()
                raise
            _operation(name, "ok").inc()
            return result

        return run

    return wrap


# Settles a cart's parts left in checkout (service.orders.settlement.Settlement.settle_cart):
# (cart id, {event: (state, order id)}, now ms). Raises CheckoutInProgress or CheckoutPending.
SettlePending = Callable[[str, dict[str, tuple[str, str]], int], Awaitable[None]]


class CartService:
    def __init__(
        self,
        settings: Settings,
        scripts: Scripts,
        catalog: TierCatalog,
        discount: DiscountRule = no_discount,
        settle_pending: SettlePending | None = None,
        saved: SavedCarts | None = None,
    ):
        self.settings = settings
        self.scripts = scripts
        self.catalog = catalog
        self.discount = discount
        self.settle_pending = settle_pending
        self.saved = saved  # signed-in users' carts in PostgreSQL, written behind
        self.ttl_ms = settings.reservation_ttl_seconds * 1000
        # The meta outlives every part it names (parts live ttl, plus a checkout).
        self.meta_ttl_ms = (settings.reservation_ttl_seconds + 3600) * 1000
        self.hints = EventHints()

    # -- changes ---------------------------------------------------------------------------

    @counted(lambda cart, tier_id, quantity, mode, request_id: mode)
    async def change(self, cart: CartRef, tier_id: str, quantity: int, mode: str, request_id: str) -> CartView:
        """Add (mode "add") or set (mode "set") a line's quantity, holding the seats."""
        view, meta = await self._change(cart, tier_id, quantity, mode, request_id)
        if cart.user_id and self.saved is not None:
            self.saved.mark(cart.cart_id, cart.user_id)
            if SAVED_FIELD.encode() not in meta:  # the cart may have been lost with Redis
                return await self._restored(cart) or view
        return view

    async def set_line(self, cart: CartRef, tier_id: str, quantity: int) -> CartView:
        """Set a line's quantity (for a restore: not counted as a buyer's change)."""
        return (await self._change(cart, tier_id, quantity, "set", uuid.uuid4().hex))[0]

    async def _change(
        self, cart: CartRef, tier_id: str, quantity: int, mode: str, request_id: str
    ) -> tuple[CartView, dict[bytes, bytes]]:
        place = await self.catalog.place(tier_id)
        meta_fields = {f"{EVENT_FIELD}{place.event_id}": "1"}
        if cart.user_id:
            meta_fields[OWNER_FIELD] = cart.user_id
        others = [e for e in self.hints.get(cart.cart_id) if e != place.event_id]
        loaded = settled = False
        while True:
            reply, meta, seen = await self.scripts.reserve(
                event_id=place.event_id,
                cart_id=cart.cart_id,
                tier_id=tier_id,
                quantity=quantity,
                mode=mode,
                now_ms=now_ms(),
                ttl_ms=self.ttl_ms,
                max_lines=self.settings.max_lines_per_cart,
                sweep_limit=SWEEP_ON_RESERVE,
                request_id=request_id,
                meta_fields=meta_fields,
                currency=place.currency,
                meta_ttl_ms=self.meta_ttl_ms,
                view_events=others,
            )
            if reply.result == "not-loaded" and not loaded:
                loaded = True
                await self.catalog.load(tier_id)  # cold start or flushed Redis: reload, retry once
            elif reply.result == "checkout-in-progress" and not settled:
                settled = True
                await self.settle(cart)
            else:
                break
        if reply.result == "not-loaded":
            raise RuntimeError(f"tier {tier_id} did not load into Redis")
        if reply.result != "ok":
            raise refusal(reply)

        grew = reply.quantity > reply.previous
        if grew:
            RESERVATIONS.inc(reply.quantity - reply.previous)
        if grew and meta_text(meta, CURRENCY_FIELD) != place.currency:
            meta = await self._settle_currency(cart, tier_id, place.currency, place.event_id, reply)
        events = events_of(meta)
        if grew and reply.previous == 0 and len(events) > self.settings.max_events_per_cart:
            events = await self._settle_event_count(cart, tier_id, place.event_id, reply, events)
        self.hints.remember(cart.cart_id, events)

        seen[place.event_id] = ViewReply(
            result="ok", state="open" if reply.lines else "", expiry_ms=reply.expiry_ms, lines=reply.lines
        )
        return await self._view_from(await self._parts(cart, events, seen), meta), meta

    @counted(lambda cart, tier_id: "remove")
    async def remove(self, cart: CartRef, tier_id: str) -> CartView:
        place = await self.catalog.place(tier_id)
        for settled in (False, True):
            reply = await self.scripts.remove_line(
                event_id=place.event_id, cart_id=cart.cart_id, tier_id=tier_id, now_ms=now_ms()
            )
            if reply.result != "checkout-in-progress":
                break
            if settled:
                raise checkout_in_progress()
            await self.settle(cart)
        self.note_change(cart)
        return await self.view(cart)

    @counted(lambda cart: "clear")
    async def clear(self, cart: CartRef) -> CartView:
        meta = await self.scripts.cart_meta(cart.cart_id)
        settled = False
        for event_id in events_of(meta):
            reply = await self.scripts.clear_part(event_id=event_id, cart_id=cart.cart_id)
            if reply.result == "checkout-in-progress" and not settled:
                settled = True
                await self.settle(cart)
                reply = await self.scripts.clear_part(event_id=event_id, cart_id=cart.cart_id)
            if reply.result == "checkout-in-progress":
                raise checkout_in_progress()
        await self.scripts.drop_cart_meta(cart.cart_id, [k.decode() for k in meta if k not in HISTORY_FIELDS])
        if cart.user_id and self.saved is not None:  # emptied on purpose: nothing to restore later
            await self.scripts.set_cart_meta(cart.cart_id, {SAVED_FIELD: "1"}, self.meta_ttl_ms)
        self.note_change(cart)
        self.hints.remember(cart.cart_id, [])
        return await self._view_from({}, {})

    async def set_promo(self, cart: CartRef, code: str | None) -> CartView:
        """Name the cart's promo code (None drops it); the promo area has checked the code."""
        if code:
            await self.scripts.set_cart_meta(cart.cart_id, {PROMO_FIELD: code}, self.meta_ttl_ms)
        else:
            await self.scripts.drop_cart_meta(cart.cart_id, [PROMO_FIELD])
        self.note_change(cart)
        return await self.view(cart)

    def note_change(self, cart: CartRef) -> None:
        """Note a signed-in user's changed cart, to be saved behind (service/cart/saved.py)."""
        if cart.user_id and self.saved is not None:
            self.saved.mark(cart.cart_id, cart.user_id)

    async def _restored(self, cart: CartRef) -> CartView | None:
        """The cart after restoring what Redis lost of it, with the report; None if nothing was."""
        report = await restore_saved_cart(self, cart)
        if report is None:
            return None
        return msgspec.structs.replace(await self.view(cart), restored=report)

    async def settle(self, cart: CartRef) -> None:
        """A part of the cart is in checkout: settle it (its order applied, or the part
        reopened) before the cart changes. Only a checkout whose outcome nobody heard
        leaves one behind; a checkout running now answers CheckoutInProgress."""
        if self.settle_pending is None:
            raise checkout_in_progress()
        meta = await self.scripts.cart_meta(cart.cart_id)
        now = now_ms()
        parts = await self.scripts.views(cart_id=cart.cart_id, event_ids=events_of(meta), now_ms=now)
        await self.settle_pending(cart.cart_id, {e: (p.state, p.order_id) for e, p in parts.items()}, now)

    async def settled_view(self, cart: CartRef) -> CartView:
        """The cart, with any part left in checkout by an unanswered checkout settled first
        (for changes that re-price the cart: a promo code)."""
        view = await self.view(cart)
        if view.status != "checkout":
            return view
        await self.settle(cart)
        return await self.view(cart)

    # -- reads -----------------------------------------------------------------------------

    @counted(lambda cart: "view")
    async def show(self, cart: CartRef) -> CartView:
        """The cart, for its owner (counted; internal callers use ``view``)."""
        return await self.view(cart)

    async def view(self, cart: CartRef) -> CartView:
        """The meta and the parts the hints guess in one round trip; a second only for
        events the guess missed."""
        meta, seen = await self.scripts.meta_and_views(
            cart_id=cart.cart_id, event_ids=self.hints.get(cart.cart_id), now_ms=now_ms()
        )
        events = events_of(meta)
        self.hints.remember(cart.cart_id, events)
        if cart.user_id and self.saved is not None and SAVED_FIELD.encode() not in meta:
            restored = await self._restored(cart)  # the cart may have been lost with Redis
            if restored is not None:
                return restored
        return await self._view_from(await self._parts(cart, events, seen), meta)

    async def _parts(self, cart: CartRef, events: list[str], seen: dict[str, ViewReply]) -> dict[str, ViewReply]:
        """The cart's parts of ``events``: those already ``seen``, the rest read now."""
        parts = {event_id: seen[event_id] for event_id in events if event_id in seen}
        missing = [event_id for event_id in events if event_id not in parts]
        if missing:
            parts.update(await self.scripts.views(cart_id=cart.cart_id, event_ids=missing, now_ms=now_ms()))
        return parts

    async def _view_from(self, parts: dict[str, ViewReply], meta: dict[bytes, bytes]) -> CartView:
        return await cart_view(parts, meta, self.discount)

    # -- rare slow paths, found after the fact so the hot path stays one round trip --------

    async def _undo(self, cart: CartRef, tier_id: str, event_id: str, reply: ReserveReply) -> None:
        await self.scripts.reserve(
            event_id=event_id,
            cart_id=cart.cart_id,
            tier_id=tier_id,
            quantity=reply.previous,
            mode="set",
            now_ms=now_ms(),
            ttl_ms=self.ttl_ms,
            max_lines=self.settings.max_lines_per_cart,
            sweep_limit=0,
            request_id=str(uuid.uuid4()),
            meta_fields={},
            meta_ttl_ms=self.meta_ttl_ms,
        )

    async def _settle_currency(
        self, cart: CartRef, tier_id: str, currency: str, event_id: str, reply: ReserveReply
    ) -> dict[bytes, bytes]:
        """The meta names another currency: keep the hold only if no line still uses it."""
        meta = await self.scripts.cart_meta(cart.cart_id)
        parts = await self.scripts.views(cart_id=cart.cart_id, event_ids=events_of(meta), now_ms=now_ms())
        others = {line.currency for part in parts.values() for line in part.lines.values()} - {currency}
        if others:
            await self._undo(cart, tier_id, event_id, reply)
            raise CurrencyMismatch(
                f"The cart holds tickets in {', '.join(sorted(others))}; this tier is sold in {currency}",
                cart_currency=sorted(others)[0],
                tier_currency=currency,
            )
        await self.scripts.set_cart_meta(cart.cart_id, {CURRENCY_FIELD: currency}, self.meta_ttl_ms)
        meta[CURRENCY_FIELD.encode()] = currency.encode()
        return meta

    async def _settle_event_count(
        self, cart: CartRef, tier_id: str, event_id: str, reply: ReserveReply, events: list[str]
    ) -> list[str]:
        """Too many events named: drop the empty ones; refuse if still too many."""
        parts = await self.scripts.views(cart_id=cart.cart_id, event_ids=events, now_ms=now_ms())
        empty = [e for e, part in parts.items() if not part.lines and e != event_id]
        await self.scripts.drop_cart_meta(cart.cart_id, [f"{EVENT_FIELD}{e}" for e in empty])
        live = [e for e in events if e not in empty]
        limit = self.settings.max_events_per_cart
        if len(live) > limit:
            await self._undo(cart, tier_id, event_id, reply)
            raise LimitExceeded(f"A cart holds tickets of at most {limit} events", limit=limit, what="events")
        return live
