"""The admin's view of stored payments."""

from __future__ import annotations

import uuid

import asyncpg

from service.errors import NotFound
from service.payments import store
from service.payments.dto import PaymentPage, PaymentRecord

MAX_PAGE = 100


class PaymentReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(
        self, *, status: str | None, order_id: uuid.UUID | None, cursor: str | None, limit: int
    ) -> PaymentPage:
        """Newest first; ``cursor`` is a page's next_cursor (anything else: ValidationFailed)."""
        limit = max(1, min(limit, MAX_PAGE))
        return await store.list_payments(self.pool, status=status, order_id=order_id, cursor=cursor, limit=limit)

    async def get(self, payment_id: uuid.UUID) -> PaymentRecord:
        record = await store.fetch_payment(self.pool, payment_id)
        if record is None:
            raise NotFound(f"No payment {payment_id}")
        return record
