"""Cart merge: a user who signs in takes over the guest cart they filled before.

One script per event moves the guest's part into the user's (lines add up, capped per tier;
held seats stay exact). Never merges a part in checkout: a part left there by a checkout
whose outcome nobody heard is settled first (its order applied, or the part reopened), and
an order so found committed for the guest cart is handed to the user's cart as unanswered,
so the user's next checkout answers it rather than making a second order. On a currency
clash or too many events it refuses before changing anything.
"""

from __future__ import annotations

import msgspec

from service.auth import CartRef
from service.cart.dto import CartView
from service.cart.meta import (
    CURRENCY_FIELD,
    EVENT_FIELD,
    OWNER_FIELD,
    PROMO_FIELD,
    UNANSWERED_FIELD,
    events_of,
    meta_text,
)
from service.cart.service import CartService
from service.clock import now_ms
from service.errors import (
    CheckoutInProgress,
    CheckoutPending,
    CurrencyMismatch,
    LimitExceeded,
)
from service.redis.replies import ViewReply
from service.redis.scripts import Scripts
from service.settings import Settings


class CappedItem(msgspec.Struct):
    tier_id: str
    requested: int  # the user's line plus the guest's
    kept: int  # what the user's line holds now; the rest went back on sale


class UnmergedPart(msgspec.Struct):
    event_id: str
    reason: str  # "guest-checkout" or "user-checkout": that part is being checked out


class MergedCartView(CartView):
    capped: list[CappedItem]
    not_merged: list[UnmergedPart]


def _currencies(parts: dict[str, ViewReply]) -> set[str]:
    return {line.currency for part in parts.values() for line in part.lines.values()}


def _live_events(parts: dict[str, ViewReply]) -> set[str]:
    return {event_id for event_id, part in parts.items() if part.lines}


class CartMerge:
    def __init__(self, settings: Settings, scripts: Scripts, carts: CartService) -> None:
        self.settings = settings
        self.scripts = scripts
        self.carts = carts

    async def merge(self, user: CartRef, guest_cart_id: str) -> tuple[MergedCartView, bool]:
        """Merge the guest cart into the user's: (the user's cart now, whether the guest
        cart is gone entirely; it is not while one of its parts is in checkout)."""
        now = now_ms()
        guest_meta, guest_parts = await self._read(guest_cart_id, now)
        user_meta, user_parts = await self._read(user.cart_id, now)
        settled = [
            await self._settle(guest_cart_id, guest_parts, now),
            await self._settle(user.cart_id, user_parts, now),
        ]
        if any(settled):
            guest_meta, guest_parts = await self._read(guest_cart_id, now)
            user_meta, user_parts = await self._read(user.cart_id, now)
        guest_events = events_of(guest_meta)
        self._check(guest_parts, user_parts)

        # The user's meta names the events before their parts exist (as on reserve); every
        # event the guest's meta names, as a part may fill while we look (readers drop empty ones).
        guest_currency = _currencies(guest_parts)
        fields = {f"{EVENT_FIELD}{e}": "1" for e in guest_events}
        if user.user_id:
            fields[OWNER_FIELD] = user.user_id
        if guest_currency and not _currencies(user_parts):
            fields[CURRENCY_FIELD] = next(iter(guest_currency))
        promo = meta_text(guest_meta, PROMO_FIELD)
        if promo and not meta_text(user_meta, PROMO_FIELD):
            fields[PROMO_FIELD] = promo  # checked again at checkout, for this user
        unanswered = guest_meta.get(UNANSWERED_FIELD.encode())
        if unanswered and not user_meta.get(UNANSWERED_FIELD.encode()):
            fields[UNANSWERED_FIELD] = unanswered.decode()
        if guest_events or unanswered:
            await self.scripts.set_cart_meta(user.cart_id, fields, self.carts.meta_ttl_ms)

        capped: list[CappedItem] = []
        not_merged: list[UnmergedPart] = []
        for event_id in guest_events:
            reply = await self.scripts.merge_part(
                event_id=event_id,
                guest_cart_id=guest_cart_id,
                user_cart_id=user.cart_id,
                now_ms=now,
                ttl_ms=self.carts.ttl_ms,
                max_lines=self.settings.max_lines_per_cart,
            )
            if reply.result != "ok":
                not_merged.append(UnmergedPart(event_id=event_id, reason=reply.result))
                continue
            capped += [CappedItem(tier_id=c.tier_id, requested=c.requested, kept=c.kept) for c in reply.capped]

        if not_merged:
            kept = {p.event_id for p in not_merged}
            await self.scripts.drop_cart_meta(
                guest_cart_id, [f"{EVENT_FIELD}{e}" for e in guest_events if e not in kept]
            )
        elif guest_meta:
            await self.scripts.delete_cart_meta(guest_cart_id)

        self.carts.note_change(user)
        view = await self.carts.view(user)
        merged = MergedCartView(**msgspec.structs.asdict(view), capped=capped, not_merged=not_merged)
        return merged, not not_merged

    async def _read(self, cart_id: str, now: int) -> tuple[dict[bytes, bytes], dict[str, ViewReply]]:
        meta = await self.scripts.cart_meta(cart_id)
        return meta, await self.scripts.views(cart_id=cart_id, event_ids=events_of(meta), now_ms=now)

    async def _settle(self, cart_id: str, parts: dict[str, ViewReply], now: int) -> bool:
        """Settle the cart's parts left in checkout; False when there were none, or when
        a checkout runs now or the outcome is unknown (those parts are then not merged)."""
        if self.carts.settle_pending is None or all(p.state != "checkout" for p in parts.values()):
            return False
        try:
            await self.carts.settle_pending(cart_id, {e: (p.state, p.order_id) for e, p in parts.items()}, now)
        except (CheckoutInProgress, CheckoutPending):
            return False
        return True

    def _check(self, guest_parts: dict[str, ViewReply], user_parts: dict[str, ViewReply]) -> None:
        """Refusals found before anything changes."""
        guest_currency, user_currency = _currencies(guest_parts), _currencies(user_parts)
        if guest_currency and user_currency and guest_currency != user_currency:
            raise CurrencyMismatch(
                f"The guest cart holds tickets in {', '.join(sorted(guest_currency))}; "
                f"your cart holds tickets in {', '.join(sorted(user_currency))}",
                cart_currency=sorted(user_currency)[0],
                guest_currency=sorted(guest_currency)[0],
            )
        limit = self.settings.max_events_per_cart
        if len(_live_events(guest_parts) | _live_events(user_parts)) > limit:
            raise LimitExceeded(f"A cart holds tickets of at most {limit} events", limit=limit, what="events")
