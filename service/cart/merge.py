"""Cart merge: a user who signs in takes over the guest cart they filled before.

One script per event moves the guest's part into the user's (lines add up, capped per tier;
held seats stay exact). Never merges a part in checkout; on a currency clash or too many
events it refuses before changing anything.
"""

from __future__ import annotations

import msgspec

from service.cart.dto import CartView
from service.cart.service import EVENT_FIELD, CartRef, CartService, events_of, now_ms
from service.errors import CurrencyMismatch, LimitExceeded
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
    return {line.c for part in parts.values() for line in part.lines.values()}


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
        guest_meta = await self.scripts.cart_meta(guest_cart_id)
        user_meta = await self.scripts.cart_meta(user.cart_id)
        guest_events = events_of(guest_meta)
        guest_parts = await self.scripts.views(cart_id=guest_cart_id, event_ids=guest_events, now_ms=now)
        user_parts = await self.scripts.views(cart_id=user.cart_id, event_ids=events_of(user_meta), now_ms=now)
        self._check(guest_parts, user_parts)

        # The user's meta names the events before their parts exist (as on reserve); every
        # event the guest's meta names, as a part may fill while we look (readers drop empty ones).
        guest_currency = _currencies(guest_parts)
        fields = {f"{EVENT_FIELD}{e}": "1" for e in guest_events}
        if user.user_id:
            fields["owner"] = user.user_id
        if guest_currency and not _currencies(user_parts):
            fields["cur"] = next(iter(guest_currency))
        promo = guest_meta.get(b"promo")
        if promo and not user_meta.get(b"promo"):
            fields["promo"] = promo.decode()  # checked again at checkout, for this user
        if guest_events:
            await self.scripts.set_cart_meta(user.cart_id, fields, self.carts.meta_ttl_ms)

        capped: list[CappedItem] = []
        not_merged: list[UnmergedPart] = []
        for event_id in guest_events:
            reply = await self.scripts.merge_part(
                event_id=event_id, guest_cart_id=guest_cart_id, user_cart_id=user.cart_id, now_ms=now,
                ttl_ms=self.carts.ttl_ms, max_lines=self.settings.max_lines_per_cart,
            )
            if reply.r != "ok":
                not_merged.append(UnmergedPart(event_id=event_id, reason=reply.r))
                continue
            capped += [CappedItem(tier_id=c.t, requested=c.requested, kept=c.kept) for c in reply.capped]

        if not_merged:
            kept = {p.event_id for p in not_merged}
            await self.scripts.drop_cart_meta(guest_cart_id, [f"{EVENT_FIELD}{e}" for e in guest_events if e not in kept])
        elif guest_meta:
            await self.scripts.delete_cart_meta(guest_cart_id)

        view = await self.carts.view(user)
        merged = MergedCartView(**msgspec.structs.asdict(view), capped=capped, not_merged=not_merged)
        return merged, not not_merged

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
