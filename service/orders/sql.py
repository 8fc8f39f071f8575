"""Every SQL statement of the orders area, named, in one place (the checkout's write, the
reads, the lifecycle's moves). All parameterised; the Python that runs them is in
``store.py`` and ``lifecycle.py``."""

from service.events.sql import ORDER_SNAPSHOT

# -- the checkout and the reads (store.py) -----------------------------------------------------

# Tier rows are locked in id order (as lifecycle.py's SHIFT_SOLD does), so two checkouts,
# or a checkout and a cancel, can never deadlock. A tier whose guard fails makes the
# statement fail (`guard`: refuse_unsold_tiers, migration 0009, names the tiers), so the
# statement may commit on its own: nothing of a refused order is ever written. The order
# row is written only once O's advisory lock is held (`writing`), and the lock is kept to
# the end of the transaction: outcome.order_outcome waits on it, so its look-up of O is
# final. Each item records the sold_version its seats produced (lua/include/sold.lua).
# An order with nothing to pay is paid at once: no payment code, no due time. A signed-in
# buyer's saved cart (service/cart/saved.py) is emptied as of this checkout, so a copy read
# before it can never bring the bought seats back after a Redis loss. The order's events
# (order.created, and order.paid when it is paid at once) go to the outbox in the same
# statement, so they commit with the order or not at all, at no extra round trip.
INSERT_ORDER = f"""
WITH new_order AS (
    INSERT INTO orders (id, number, cart_id, user_id, email, name, currency, subtotal, discount, total,
                        promo_code, payment_code, payment_due_at, access_token_hash, idempotency_key, event_ids,
                        status, paid_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
           CASE WHEN $10::bigint > 0 THEN now() + make_interval(secs => $13) END,
           $14, $15, $16::uuid[],
           CASE WHEN $10::bigint > 0 THEN 'pending_payment' ELSE 'paid' END,
           CASE WHEN $10::bigint > 0 THEN NULL ELSE now() END
    FROM (SELECT pg_advisory_xact_lock($28)) AS writing
    RETURNING id, number, status, currency, subtotal, discount, total, promo_code, payment_due_at, created_at,
              paid_at, cancelled_at, expired_at
), events AS (
    INSERT INTO order_events (kind, order_id, payload)
    SELECT e.kind, o.id, jsonb_build_object('order', {ORDER_SNAPSHOT})
    FROM new_order o, (VALUES (1, 'order.created'), (2, 'order.paid')) AS e (n, kind)
    WHERE e.n = 1 OR o.status = 'paid'
    ORDER BY e.n
), locked AS (
    SELECT id FROM ticket_tiers WHERE id = ANY($17::uuid[]) ORDER BY id FOR NO KEY UPDATE
), sold AS (
    UPDATE ticket_tiers t
    SET quantity_sold = t.quantity_sold + i.quantity, sold_version = t.sold_version + 1, updated_at = now()
    FROM unnest($17::uuid[], $21::int[]) AS i (tier_id, quantity) JOIN locked l ON l.id = i.tier_id
    WHERE t.id = i.tier_id AND t.quantity_sold + i.quantity <= t.quantity_total
    RETURNING t.id, t.event_id, t.quantity_sold, t.sold_version
), items AS (
    INSERT INTO order_items (order_id, tier_id, event_id, name, unit_price, quantity, line_total, discount,
                             sold_version)
    SELECT $1, i.tier_id, i.event_id, i.name, i.unit_price, i.quantity,
           i.line_total, i.discount, s.sold_version
    FROM unnest($17::uuid[], $18::uuid[], $19::text[], $20::bigint[], $21::int[], $22::bigint[], $23::bigint[])
         AS i (tier_id, event_id, name, unit_price, quantity, line_total, discount)
    JOIN sold s ON s.id = i.tier_id
), tickets AS (
    INSERT INTO tickets (id, order_id, tier_id, event_id, code)
    SELECT t.id, $1, t.tier_id, t.event_id, t.code
    FROM unnest($24::uuid[], $25::uuid[], $26::uuid[], $27::text[]) AS t (id, tier_id, event_id, code)
), saved_cart AS (
    UPDATE user_carts SET parts = '{{}}', promo_code = NULL, saved_ms = $29, updated_at = now()
    WHERE user_id = $4 AND saved_ms < $29
), guard AS (
    SELECT refuse_unsold_tiers(ARRAY(SELECT unnest($17::uuid[]) EXCEPT SELECT id FROM sold)) AS ok
)
SELECT o.id AS order_id, o.created_at, o.payment_due_at, o.status,
       s.id AS tier_id, s.event_id, s.quantity_sold, s.sold_version
FROM new_order o CROSS JOIN guard g LEFT JOIN sold s ON true
WHERE g.ok
"""

# The same statement sent outside a transaction, where it commits on its own (writer.py),
# or with the same statement of other orders before the one Sync that commits them all
# (group_commit.py, store.insert_orders). Its first line says so to whoever reads the
# server's statements (pg_stat_statements, logs, tests/pg_fault_proxy.py, which treats the
# Sync after it as a COMMIT).
COMMITS_ON_ITS_OWN = "-- commits on its own"
INSERT_ORDER_ALONE = f"{COMMITS_ON_ITS_OWN}\n{INSERT_ORDER}"

_ORDER_COLUMNS = (
    "o.id, o.number, o.cart_id, o.user_id, o.status, o.email, o.name, o.currency, o.subtotal, o.discount,"
    " o.total, o.promo_code, o.payment_code, o.payment_due_at, o.access_token_hash, o.created_at"
)

FETCH_ORDER = f"""
SELECT {_ORDER_COLUMNS},
    (SELECT coalesce(json_agg(json_build_object(
                'tier_id', i.tier_id, 'event_id', i.event_id, 'name', i.name, 'quantity', i.quantity,
                'unit_price', i.unit_price, 'line_total', i.line_total, 'discount', i.discount)
            ORDER BY i.event_id, i.tier_id), '[]'::json)
     FROM order_items i WHERE i.order_id = o.id) AS items,
    (SELECT coalesce(json_agg(json_build_object(
                'id', t.id, 'tier_id', t.tier_id, 'event_id', t.event_id, 'code', t.code, 'status', t.status)
            ORDER BY t.tier_id, t.id), '[]'::json)
     FROM tickets t WHERE t.order_id = o.id) AS tickets
FROM orders o WHERE o.id = $1
"""

ORDER_BY_IDEMPOTENCY_KEY = "SELECT id FROM orders WHERE cart_id = $1 AND idempotency_key = $2"

EXISTING_ORDERS = "SELECT id FROM orders WHERE id = ANY($1::uuid[])"

# What each order's commit changed (its items' seats and the versions they produced).
ORDER_CHANGES = """
SELECT i.order_id, i.event_id, i.tier_id, i.quantity, i.sold_version
FROM order_items i WHERE i.order_id = ANY($1::uuid[])
ORDER BY i.order_id, i.event_id, i.tier_id
"""

# The cart's newest order that still lives (neither expired nor cancelled).
LAST_LIVE_ORDER = """
SELECT id FROM orders WHERE cart_id = $1 AND status IN ('pending_payment', 'paid')
ORDER BY created_at DESC LIMIT 1
"""

# Newest first; the cursor is the last row's (created_at, id), so pages never overlap or
# skip when orders are added meanwhile. Served by orders_user_created.
USER_ORDERS = """
SELECT o.id, o.number, o.status, o.currency, o.total, o.payment_due_at, o.created_at,
       (SELECT coalesce(sum(i.quantity), 0) FROM order_items i WHERE i.order_id = o.id) AS item_count
FROM orders o
WHERE o.user_id = $1 AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2, $3::uuid))
ORDER BY o.created_at DESC, o.id DESC
LIMIT $4
"""

# -- an order's life after checkout (lifecycle.py) ------------------------------------------------

_STATE = "id, number, status, currency, total, promo_code, payment_due_at, paid_at, cancelled_at, expired_at"

LOCK_ORDER = f"SELECT {_STATE} FROM orders WHERE id = $1 FOR UPDATE"

MARK_PAID = f"UPDATE orders SET status = 'paid', paid_at = now(), updated_at = now() WHERE id = $1 RETURNING {_STATE}"
MARK_CANCELLED = (
    f"UPDATE orders SET status = 'cancelled', cancelled_at = now(), updated_at = now() WHERE id = $1 RETURNING {_STATE}"
)

# Due orders in (payment_due_at, id) order after a key, so one run of the expiry visits
# each due order once, even those it has to skip.
DUE_PAGE = """
SELECT id, payment_due_at FROM orders
WHERE status = 'pending_payment' AND payment_due_at <= $1
  AND ($2::timestamptz IS NULL OR (payment_due_at, id) > ($2, $3::uuid))
ORDER BY payment_due_at, id
LIMIT $4
"""
# One due order, if no other worker holds it; the row lock re-checks the status, so an
# order paid or cancelled meanwhile is not picked.
LOCK_DUE = """
SELECT id, promo_code FROM orders
WHERE id = $1 AND status = 'pending_payment' AND payment_due_at <= $2
FOR UPDATE SKIP LOCKED
"""
MARK_EXPIRED = "UPDATE orders SET status = 'expired', expired_at = now(), updated_at = now() WHERE id = $1"

VOID_TICKETS = """
UPDATE tickets SET status = 'void', voided_at = now()
WHERE order_id = ANY($1::uuid[]) AND status = 'valid'
RETURNING tier_id
"""
REVIVE_TICKETS = """
UPDATE tickets SET status = 'valid', voided_at = NULL
WHERE order_id = $1 AND status = 'void'
RETURNING tier_id
"""

# One guarded statement for every tier: quantity_sold moves by `delta` only where it stays
# within 0..quantity_total, bumping sold_version. Tier rows are locked in id order, so two
# of these (or a checkout that does the same) can never deadlock. A tier whose guard fails
# comes back with a NULL event_id and `unsold` (total - sold) as it was.
SHIFT_SOLD = """
WITH shift AS (
    SELECT * FROM unnest($1::uuid[], $2::int[]) AS s (tier_id, delta)
), locked AS (
    SELECT id FROM ticket_tiers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
), changed AS (
    UPDATE ticket_tiers t
    SET quantity_sold = t.quantity_sold + s.delta, sold_version = t.sold_version + 1, updated_at = now()
    FROM shift s JOIN locked l ON l.id = s.tier_id
    WHERE t.id = s.tier_id AND t.quantity_sold + s.delta BETWEEN 0 AND t.quantity_total
    RETURNING t.id, t.event_id, t.quantity_sold, t.sold_version
)
SELECT s.tier_id, s.delta, c.event_id, c.quantity_sold, c.sold_version,
       t.quantity_total - t.quantity_sold AS unsold
FROM shift s
LEFT JOIN changed c ON c.id = s.tier_id
LEFT JOIN ticket_tiers t ON t.id = s.tier_id
"""
