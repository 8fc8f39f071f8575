"""Restoring a signed-in user's cart that Redis lost, from its copy in PostgreSQL.

Every saved line whose hold would still be alive is held again as a fresh hold, through
the cart's own change (reserve.lua: a restore can never oversell): all of it where the
seats are free, what is left where fewer are, nothing where the sale closed. Lines the
cart holds already (the change that found the loss) are left as they are. The answer
lists every saved line with what is held now and why not more.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import asyncpg

from service.cart.dto import CartRestore, RestoredLine
from service.cart.meta import PROMO_FIELD, SAVED_FIELD, meta_text
from service.clock import now_ms
from service.errors import DomainError, SoldOut

if TYPE_CHECKING:
    from service.auth import CartRef
    from service.cart.service import CartService

log = logging.getLogger("ticket_cart.cart")

_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def restore_saved_cart(carts: CartService, cart: CartRef) -> CartRestore | None:
    """Hold the user's saved lines again; None when there was nothing to restore.

    The meta is marked first, so a concurrent request does not restore twice and the
    changes below do not come back here; PostgreSQL unreachable: the mark is taken back,
    and a later request tries again.
    """
    assert cart.user_id is not None and carts.saved is not None
    await carts.scripts.set_cart_meta(cart.cart_id, {SAVED_FIELD: "1"}, carts.meta_ttl_ms)
    try:
        saved = await carts.saved.load(cart.user_id)
    except _STORE_ERRORS as exc:
        log.warning("saved cart of user %s not readable; restore later: %r", cart.user_id, exc)
        await carts.scripts.drop_cart_meta(cart.cart_id, [SAVED_FIELD])
        return None
    now = now_ms()
    wanted = {tier: q for part in (saved.parts.values() if saved else ()) if part.x > now for tier, q in part.l.items()}
    if not wanted:
        return None
    present = {item.tier_id for item in (await carts.view(cart)).items}
    lines = []
    for tier_id, quantity in sorted(wanted.items()):
        if tier_id in present:
            continue
        lines.append(await _hold_again(carts, cart, tier_id, quantity))
    if (
        saved is not None
        and saved.promo_code
        and not meta_text(await carts.scripts.cart_meta(cart.cart_id), PROMO_FIELD)
    ):
        await carts.scripts.set_cart_meta(cart.cart_id, {PROMO_FIELD: saved.promo_code}, carts.meta_ttl_ms)
    log.info(
        "restored the cart of user %s: %s", cart.user_id, [(line.tier_id, line.wanted, line.held) for line in lines]
    )
    return CartRestore(lines=lines)


async def _hold_again(carts: CartService, cart: CartRef, tier_id: str, quantity: int) -> RestoredLine:
    try:
        await carts.set_line(cart, tier_id, quantity)
        return RestoredLine(tier_id=tier_id, wanted=quantity, held=quantity)
    except SoldOut as exc:
        left = int(exc.extra.get("available", 0))
        if left > 0:
            try:
                await carts.set_line(cart, tier_id, left)
                return RestoredLine(tier_id=tier_id, wanted=quantity, held=left, reason=SoldOut.code)
            except DomainError as again:
                return RestoredLine(tier_id=tier_id, wanted=quantity, held=0, reason=again.code)
        return RestoredLine(tier_id=tier_id, wanted=quantity, held=0, reason=exc.code)
    except DomainError as exc:
        return RestoredLine(tier_id=tier_id, wanted=quantity, held=0, reason=exc.code)
