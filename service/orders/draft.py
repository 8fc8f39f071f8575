"""An order drafted from the lines a checkout took from its cart parts, before PostgreSQL
has it: amounts, a ticket per seat, fresh codes. Pure: no I/O, nothing read twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from service.cart.dto import CartItem
from service.cart.view import cart_item
from service.orders import codes
from service.orders.dto import OrderItem, Ticket
from service.orders.store import (
    Inserted,
    NewItem,
    NewOrder,
    NewTicket,
    OrderFields,
    OrderRecord,
)
from service.redis.replies import BeginReply


def cart_items(begun: dict[str, BeginReply]) -> list[CartItem]:
    """The lines of the parts in checkout, by event and tier, priced as Redis has them."""
    return [
        cart_item(event_id, tier_id, line)
        for event_id, reply in sorted(begun.items())
        for tier_id, line in sorted(reply.lines.items())
    ]


def draft_order(
    *,
    order_id: str,
    cart_id: str,
    user_id: str | None,
    email: str,
    name: str | None,
    items: list[CartItem],
    quote: Any,
    idempotency_key: str | None,
    payment_ttl_seconds: int,
    guest_token: str | None,
) -> NewOrder:
    """The order to write. ``quote`` is the promo's (code, discount, line_discounts) or None;
    every call draws new codes, so a clash on one is answered by drafting again."""
    line_discounts = quote.line_discounts if quote is not None else {}
    subtotal = sum(item.line_total for item in items)
    discount = max(0, min(quote.discount if quote is not None else 0, subtotal))
    return NewOrder(
        id=uuid.UUID(order_id),
        number=codes.new_order_number(),
        cart_id=cart_id,
        user_id=user_id,
        email=email,
        name=name,
        currency=items[0].currency,
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        promo_code=quote.code if quote is not None else None,
        payment_code=codes.new_payment_code() if subtotal - discount > 0 else None,
        payment_ttl_seconds=payment_ttl_seconds,
        access_token_hash=codes.access_token_hash(guest_token) if guest_token else None,
        idempotency_key=idempotency_key,
        event_ids=sorted({uuid.UUID(item.event_id) for item in items}),
        items=[
            NewItem(
                tier_id=uuid.UUID(item.tier_id),
                event_id=uuid.UUID(item.event_id),
                name=item.name,
                unit_price=item.unit_price,
                quantity=item.quantity,
                line_total=item.line_total,
                discount=line_discounts.get(item.tier_id, 0),
            )
            for item in sorted(items, key=lambda i: i.tier_id)
        ],
        tickets=[
            NewTicket(
                id=uuid.uuid4(),
                tier_id=uuid.UUID(item.tier_id),
                event_id=uuid.UUID(item.event_id),
                code=codes.new_ticket_code(),
            )
            for item in items
            for _ in range(item.quantity)
        ],
    )


def as_record(order: NewOrder, inserted: Inserted) -> OrderRecord:
    """The order as store.fetch_order reads it back, from what the checkout wrote: so the
    first answer and every replay of it are the same."""
    items = sorted(order.items, key=lambda i: (str(i.event_id), str(i.tier_id)))
    tickets = sorted(order.tickets, key=lambda t: (str(t.tier_id), str(t.id)))
    return OrderRecord(
        **{field: getattr(order, field) for field in OrderFields.__struct_fields__},
        status=inserted.status,
        payment_due_at=inserted.payment_due_at,
        created_at=inserted.created_at,
        items=[
            OrderItem(
                tier_id=str(i.tier_id),
                event_id=str(i.event_id),
                name=i.name,
                quantity=i.quantity,
                unit_price=i.unit_price,
                line_total=i.line_total,
                discount=i.discount,
            )
            for i in items
        ],
        tickets=[
            Ticket(id=str(t.id), tier_id=str(t.tier_id), event_id=str(t.event_id), code=t.code, status="valid")
            for t in tickets
        ],
    )
