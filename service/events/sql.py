"""Every SQL statement of the events area, named, in one place (the outbox, the fan-out,
the deliveries, the endpoints). All parameterised."""

# The order's state as an event carries it (payloads.OrderSnapshot), from a row aliased
# ``o`` of orders (or the checkout's RETURNING): times in UTC with microseconds, so the
# bytes do not depend on the session's TimeZone.
_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
ORDER_SNAPSHOT = (
    "jsonb_build_object('id', o.id, 'number', o.number, 'status', o.status, 'currency', o.currency,"
    " 'subtotal', o.subtotal, 'discount', o.discount, 'total', o.total, 'promo_code', o.promo_code,"
    f" 'payment_due_at', {_UTC.format('o.payment_due_at')}, 'created_at', {_UTC.format('o.created_at')},"
    f" 'paid_at', {_UTC.format('o.paid_at')}, 'cancelled_at', {_UTC.format('o.cancelled_at')},"
    f" 'expired_at', {_UTC.format('o.expired_at')})"
)

# One event, its ``order`` read in the caller's transaction (null when no order has the id).
RECORD_EVENT = f"""
INSERT INTO order_events (kind, order_id, payload)
SELECT $1, $2, $3::jsonb || jsonb_build_object('order', (SELECT {ORDER_SNAPSHOT} FROM orders o WHERE o.id = $2))
RETURNING id
"""
