"""A SePay delivery, from its body to its outcome, in one PostgreSQL transaction.

Stored raw first, unique on SePay's id (a duplicate changes nothing), then matched in the
same transaction: the order its payment code names is locked, and a transfer of exactly
its total pays it through ``OrderLifecycle.pay``, the transition ``mark-paid`` runs, so the
payment's record and the order's change commit together or not at all. Anything else is
kept for review with a reason (docs/payments.md, "Outcomes"), and emits
``payment.needs_review`` in the same transaction. Redis learns of seats a late payment
took again only after the commit, as after mark-paid.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec

from service.errors import Conflict, SeatsGone
from service.events.outbox import PAYMENT_NEEDS_REVIEW, record_event
from service.inventory.sold import SoldChange, count_sold_changes
from service.orders.lifecycle import OrderLifecycle
from service.payments import matching, store
from service.payments.auth import SePayAuth
from service.payments.matching import Decision
from service.payments.payload import Delivery, SePayTransaction, read_delivery, transaction_time
from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.payments")

CURRENCY = "VND"  # what a Vietnamese bank transfer moves
# Request headers kept with a delivery (never Authorization, which carries the API key).
KEPT_HEADERS = ("content-type", "user-agent", "x-sepay-timestamp", "x-sepay-signature", "x-forwarded-for")


class Outcome(msgspec.Struct, frozen=True):
    payment_id: uuid.UUID | None  # None: a duplicate (the stored one stands)
    status: str  # paid, needs_review, ignored, or duplicate
    reason: str | None = None
    order_id: uuid.UUID | None = None


class PaymentIntake:
    def __init__(
        self,
        pool: asyncpg.Pool,
        scripts: Scripts,
        lifecycle: OrderLifecycle,
        auth: SePayAuth,
        *,
        account_number: str | None,
        grace_seconds: int,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.auth = auth  # checked by the HTTP edge before receive
        self.pool = pool
        self.scripts = scripts
        self.lifecycle = lifecycle
        self.account_number = account_number
        self.grace_seconds = grace_seconds
        self.timeout_seconds = timeout_seconds  # waiting for a pooled connection, as for a statement

    async def receive(self, raw: bytes, headers: Mapping[str, str]) -> Outcome:
        """Store and decide one authenticated delivery. Raises only for a fault of ours
        (PostgreSQL unreachable, a timeout): then nothing was written and SePay retries."""
        delivery = read_delivery(raw)
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        changes: list[SoldChange] = []
        async with self.pool.acquire(timeout=self.timeout_seconds) as conn, conn.transaction():
            stored = await store.insert_delivery(conn, delivery, kept)
            if stored is None:
                return Outcome(None, "duplicate")
            payment_id, received_at = stored
            outcome, changes = await self._decide(conn, payment_id, received_at, delivery)
        await count_sold_changes(self.scripts, changes)
        log.info(
            "SePay transaction %s: %s%s%s",
            delivery.sepay_id,
            outcome.status,
            f" ({outcome.reason})" if outcome.reason else "",
            f", order {outcome.order_id}" if outcome.order_id else "",
        )
        return outcome

    async def _decide(
        self, conn: asyncpg.Connection, payment_id: uuid.UUID, received_at: dt.datetime, delivery: Delivery
    ) -> tuple[Outcome, list[SoldChange]]:
        t = delivery.transaction
        if t is None:
            problem: dict[str, Any] = {"problem": delivery.problem}
            await store.record_decision(conn, payment_id, "needs_review", "unreadable", None, None, problem)
            return Outcome(payment_id, "needs_review", "unreadable"), []
        match = await self._match(conn, t, received_at)
        changes: list[SoldChange] = []
        decision, order, detail = match.decision, match.order, match.detail
        if decision is None and order is not None:  # the exact amount of a payable order: pay it
            try:
                async with conn.transaction():  # a savepoint: a refused payment leaves the order as it was
                    _, changes = await self.lifecycle.pay(conn, order.id)
                decision = Decision("paid", "late" if match.late else None)
                detail |= {"order_status": order.status, "revived": order.status == "expired"}
            except SeatsGone as gone:
                decision = Decision("needs_review", "late-seats-gone" if match.late else "seats-gone")
                detail |= {"order_status": order.status, "tiers": gone.extra.get("tiers", [])}
            except Conflict:
                decision = Decision("needs_review", "order-cancelled")
        assert decision is not None
        order_id = order.id if order is not None else None
        await store.record_decision(conn, payment_id, decision.status, decision.reason, order_id, match.code, detail)
        if decision.status == "needs_review":
            await record_event(
                conn,
                PAYMENT_NEEDS_REVIEW,
                order_id,
                {
                    "payment_id": str(payment_id),
                    "reason": decision.reason,
                    "amount": t.transfer_amount,
                    "currency": CURRENCY,
                    "transaction_id": str(t.id),
                },
            )
        return Outcome(payment_id, decision.status, decision.reason, order_id), changes

    async def _match(self, conn: asyncpg.Connection, t: SePayTransaction, received_at: dt.datetime) -> _Match:
        """The order the transfer names (locked) and, unless it is to be paid, the decision."""
        if t.transfer_type.strip().lower() != "in":
            return _Match(Decision("ignored", "outgoing"))
        codes = matching.payment_codes(t.code, t.content)
        if not codes:
            if matching.is_test_ping(t.content) or matching.is_test_ping(t.description):
                return _Match(Decision("ignored", "test-ping"))
            return _Match(Decision("needs_review", "no-code"))
        orders = await store.lock_orders(conn, codes)
        if not orders:
            return _Match(Decision("needs_review", "unknown-code"), code=codes[0], detail={"codes": codes})
        if len(orders) > 1:
            found = [o.payment_code for o in orders]
            return _Match(Decision("needs_review", "several-codes"), code=found[0], detail={"codes": found})
        (order,) = orders
        transferred_at = transaction_time(t) or received_at
        late = matching.is_late(transferred_at, order.payment_due_at, self.grace_seconds)
        detail: dict[str, Any] = {
            "order_total": order.total,
            "order_currency": order.currency,
            "due_at": order.payment_due_at.isoformat() if order.payment_due_at else None,
            "transferred_at": transferred_at.isoformat(),
        }
        match = _Match(None, order, order.payment_code, detail, late)
        if not matching.same_account(self.account_number, t.account_number, t.sub_account):
            return match.decided("wrong-account")
        if order.currency != CURRENCY:
            return match.decided("wrong-currency")
        if order.status == "cancelled":
            return match.decided("order-cancelled")
        if order.status == "paid":
            return match.decided("already-paid")
        if t.transfer_amount < order.total:
            return match.decided("short")
        if t.transfer_amount > order.total:
            return match.decided("over")
        return match  # pending_payment or expired, the exact amount: to be paid


class _Match(msgspec.Struct):
    decision: Decision | None  # None: pay the order
    order: store.OrderToPay | None = None
    code: str | None = None
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    late: bool = False

    def decided(self, reason: str) -> _Match:
        return _Match(Decision("needs_review", reason), self.order, self.code, self.detail, self.late)
