"""Every SQL statement of the payments area, named, in one place. All parameterised."""

# A delivery, stored before anything else; nothing when SePay's id is already stored (a
# retry or a replay): the caller answers it and changes nothing. A concurrent insert of the
# same id waits for the first one's transaction, then finds it.
INSERT_DELIVERY = """
INSERT INTO payments (sepay_id, raw_body, payload, headers, payment_code, amount, transfer_type,
                      account_number, reference_code, transaction_date)
VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8, $9, $10)
ON CONFLICT (sepay_id) DO NOTHING
RETURNING id, received_at
"""

# The orders a transfer's codes name, locked (in id order, so two deliveries never
# deadlock), so the decision and the order's change see the same state.
LOCK_ORDERS_BY_CODE = """
SELECT id, payment_code, status, currency, total, payment_due_at
FROM orders WHERE payment_code = ANY($1::text[])
ORDER BY id
FOR UPDATE
"""

DECIDE = """
UPDATE payments
SET status = $2, reason = $3, order_id = $4, payment_code = coalesce($5, payment_code), detail = $6::jsonb,
    decided_at = now()
WHERE id = $1
"""

_VIEW = """
p.id, p.sepay_id, p.status, p.reason, p.order_id, p.payment_code, p.amount, p.transfer_type,
p.account_number, p.reference_code, p.transaction_date, p.received_at, p.decided_at, p.detail
"""

# Newest first; the cursor is the last row's (received_at, id). Served by payments_listing,
# payments_status_listing and (one order's) payments_order.
LIST_PAYMENTS = f"""
SELECT {_VIEW} FROM payments p
WHERE ($1::text IS NULL OR p.status = $1)
  AND ($5::uuid IS NULL OR p.order_id = $5)
  AND ($2::timestamptz IS NULL OR (p.received_at, p.id) < ($2, $3::uuid))
ORDER BY p.received_at DESC, p.id DESC
LIMIT $4
"""

FETCH_PAYMENT = f"""
SELECT {_VIEW}, p.payload, p.raw_body, p.headers
FROM payments p WHERE p.id = $1
"""
