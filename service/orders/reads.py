"""The read side of orders: one order for its owner (the signed-in user, or a guest holding the
order's access token), and a user's orders page by page.

Anyone else learns nothing, not even that the order exists: every refusal is NotFound.
"""

from __future__ import annotations

import uuid

import asyncpg

from service.cursors import decode_cursor, encode_cursor
from service.errors import NotFound
from service.orders import store
from service.orders.codes import access_token_matches
from service.orders.dto import OrderPage, OrderView
from service.orders.instructions import BankAccount, payment_instructions
from service.orders.store import OrderRecord

MAX_PAGE = 100


def order_view(record: OrderRecord, access_token: str | None = None, bank: BankAccount | None = None) -> OrderView:
    return OrderView(
        id=str(record.id),
        number=record.number,
        status=record.status,
        email=record.email,
        name=record.name,
        items=record.items,
        subtotal=record.subtotal,
        discount=record.discount,
        total=record.total,
        currency=record.currency,
        promo_code=record.promo_code,
        payment=payment_instructions(record.payment_code, record.total, record.payment_due_at, record.currency, bank)
        if record.payment_code is not None and record.payment_due_at is not None
        else None,
        tickets=record.tickets,
        created_at=record.created_at,
        access_token=access_token,
    )


class OrderReads:
    def __init__(self, pool: asyncpg.Pool, bank: BankAccount | None = None) -> None:
        self.pool = pool
        self.bank = bank  # where buyers transfer to (service.orders.instructions)

    async def get(self, order_id: str, *, user_id: str | None, access_token: str | None) -> OrderView:
        """The order, if the caller owns it; NotFound otherwise (malformed ids included)."""
        try:
            oid = uuid.UUID(order_id)
        except ValueError:
            raise NotFound("No such order") from None
        record = await store.fetch_order(self.pool, oid)
        if record is None:
            raise NotFound("No such order")
        owner = user_id is not None and record.user_id == user_id
        if not owner and not access_token_matches(access_token, record.access_token_hash):
            raise NotFound("No such order")
        return order_view(record, bank=self.bank)

    async def read(self, order_id: uuid.UUID) -> OrderView:
        """The order, unchecked (the admin API)."""
        record = await store.fetch_order(self.pool, order_id)
        if record is None:
            raise NotFound(f"No order {order_id}")
        return order_view(record, bank=self.bank)

    async def list_for_user(self, user_id: str, *, limit: int, cursor: str | None) -> OrderPage:
        """A page of the user's orders, newest first."""
        before = decode_cursor(cursor) if cursor else None
        limit = max(1, min(limit, MAX_PAGE))
        orders = await store.user_orders(self.pool, user_id, before, limit + 1)
        more = len(orders) > limit
        orders = orders[:limit]
        next_cursor = encode_cursor(orders[-1].created_at, orders[-1].id) if more else None
        return OrderPage(orders=orders, next_cursor=next_cursor)
