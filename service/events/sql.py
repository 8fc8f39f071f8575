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

# -- the worker: fan-out and deliveries (delivery.py) --------------------------------------------

# Events not yet fanned out, in seq order, each to the active endpoints subscribed to its
# kind; concurrent workers take different events (SKIP LOCKED). The kinds of the events
# fanned out are returned, so the worker counts each event once.
FAN_OUT = """
WITH picked AS (
    SELECT id, kind, order_id, seq FROM order_events
    WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
), made AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id, order_id, event_seq)
    SELECT p.id, e.id, p.order_id, p.seq
    FROM picked p JOIN webhook_endpoints e ON e.active AND p.kind = ANY (e.event_kinds)
    ON CONFLICT (event_id, endpoint_id) DO NOTHING
), marked AS (
    UPDATE order_events SET fanned_out_at = now() WHERE id IN (SELECT id FROM picked)
)
SELECT kind FROM picked
"""

# Due deliveries, claimed: each is leased for $2 seconds (next_attempt_at moves past the
# send's timeout) and its attempt counted, in one statement, so a concurrent worker can
# neither take it (row lock, SKIP LOCKED) nor, once committed, find it due. A delivery is
# held back while an earlier event of its order is pending to its endpoint, or not yet
# fanned out: an order's events reach an endpoint in order. A worker that dies mid-send
# leaves its claim to expire, and the delivery is sent again (at least once).
CLAIM_DUE = """
WITH due AS (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.status = 'pending' AND d.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries earlier
          WHERE earlier.status = 'pending' AND earlier.endpoint_id = d.endpoint_id
            AND earlier.order_id = d.order_id AND earlier.event_seq < d.event_seq)
      AND NOT EXISTS (
          SELECT 1 FROM order_events unsent
          WHERE unsent.order_id = d.order_id AND unsent.seq < d.event_seq AND unsent.fanned_out_at IS NULL)
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + make_interval(secs => $2)
FROM due, webhook_endpoints e, order_events ev
WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id
RETURNING d.id, d.attempts, e.id AS endpoint_id, e.url, e.active, e.secret,
    CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
    ev.id AS event_id, ev.kind, ev.payload::text AS payload, ev.created_at
"""

# An attempt's outcome, written only by the claim that made it (attempts unchanged) and
# while the delivery is still pending (a replay or a 410 meanwhile wins).
DELIVERED = """
UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(), last_status_code = $3, last_error = NULL
WHERE id = $1 AND attempts = $2 AND status = 'pending'
"""
# Not sent: its endpoint was deactivated after the delivery was made.
ABANDONED = """
UPDATE webhook_deliveries SET status = 'failed', last_error = $3
WHERE id = $1 AND attempts = $2 AND status = 'pending'
"""
# Again after $3 seconds, or failed when that is past pending_since + $6 seconds.
RETRY_OR_FAIL = """
UPDATE webhook_deliveries
SET status = CASE WHEN now() + make_interval(secs => $3) > pending_since + make_interval(secs => $6)
                  THEN 'failed' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => $3), last_status_code = $4, last_error = $5
WHERE id = $1 AND attempts = $2 AND status = 'pending'
RETURNING status
"""
# 410 Gone: the receiver asks for nothing more. The delivery and every other pending one
# of the endpoint are gone, and the endpoint is deactivated.
GONE = """
WITH this AS (
    UPDATE webhook_deliveries SET status = 'gone', last_status_code = 410, last_error = 'endpoint answered 410 Gone'
    WHERE id = $1 AND attempts = $2 AND status = 'pending'
    RETURNING endpoint_id
), endpoint AS (
    UPDATE webhook_endpoints SET active = false, deactivated_at = now(), updated_at = now()
    WHERE id = (SELECT endpoint_id FROM this) AND active
), others AS (
    UPDATE webhook_deliveries SET status = 'gone', last_error = 'endpoint answered 410 Gone to another delivery'
    WHERE endpoint_id = (SELECT endpoint_id FROM this) AND status = 'pending' AND id <> $1
)
SELECT count(*) FROM this
"""

OLDEST_PENDING_SECONDS = """
SELECT coalesce(extract(epoch FROM now() - min(pending_since)), 0)::float8
FROM webhook_deliveries WHERE status = 'pending'
"""

# -- the admin API (endpoints.py) ------------------------------------------------------------------

_ENDPOINT = (
    "id, url, event_kinds, active, description, created_at,"
    " CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at,"
    " deactivated_at"
)
INSERT_ENDPOINT = f"""
INSERT INTO webhook_endpoints (id, url, event_kinds, secret, description) VALUES ($1, $2, $3, $4, $5)
RETURNING {_ENDPOINT}
"""
LIST_ENDPOINTS = f"SELECT {_ENDPOINT} FROM webhook_endpoints ORDER BY created_at, id"
# The current secret becomes the previous one, signing beside the new one for $3 seconds.
ROTATE_SECRET = f"""
UPDATE webhook_endpoints
SET previous_secret = secret, previous_secret_expires_at = now() + make_interval(secs => $3), secret = $2,
    updated_at = now()
WHERE id = $1
RETURNING {_ENDPOINT}
"""
# Idempotent; its pending deliveries will not be sent.
DEACTIVATE = f"""
WITH endpoint AS (
    UPDATE webhook_endpoints
    SET active = false, deactivated_at = coalesce(deactivated_at, now()), updated_at = now()
    WHERE id = $1
    RETURNING {_ENDPOINT}
), dropped AS (
    UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deactivated'
    WHERE endpoint_id = $1 AND status = 'pending'
)
SELECT * FROM endpoint
"""

_DELIVERY = """
d.id, d.event_id, ev.kind, d.order_id, d.endpoint_id, d.status, d.attempts,
CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at,
d.last_status_code, d.last_error, d.last_attempt_at, d.delivered_at, d.created_at
"""
# Newest first; the cursor is the last row's (created_at, id). Served by the listing indexes.
LIST_DELIVERIES = f"""
SELECT {_DELIVERY}
FROM webhook_deliveries d JOIN order_events ev ON ev.id = d.event_id
WHERE ($1::text IS NULL OR d.status = $1) AND ($2::uuid IS NULL OR d.endpoint_id = $2)
  AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4::uuid))
ORDER BY d.created_at DESC, d.id DESC
LIMIT $5
"""
# Sent again as soon as the worker runs, retried as a new delivery would be; refused (no
# row) while its endpoint is inactive. attempts keeps counting.
REPLAY = f"""
WITH replayed AS (
    UPDATE webhook_deliveries d
    SET status = 'pending', next_attempt_at = now(), pending_since = now(), delivered_at = NULL
    FROM webhook_endpoints e
    WHERE d.id = $1 AND e.id = d.endpoint_id AND e.active
    RETURNING d.*
)
SELECT {_DELIVERY} FROM replayed d JOIN order_events ev ON ev.id = d.event_id
"""
DELIVERY_ENDPOINT_ACTIVE = """
SELECT e.active FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1
"""
