-- Order events out (issue #17, docs/events.md): an outbox written in the same transaction
-- as the change that causes each event, and the worker's deliveries of it to registered
-- webhook endpoints.

-- One row per event; id is the event's stable id (the webhook-id every delivery sends).
-- seq orders an order's events: they are written under the order's row lock (or in the
-- order's own insert), so a later event of an order always has a higher seq.
-- fanned_out_at: when the worker made this event's deliveries (NULL: not yet).
CREATE TABLE order_events (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    seq            bigserial   NOT NULL UNIQUE,
    kind           text        NOT NULL CHECK (kind IN (
        'order.created', 'order.paid', 'order.expired', 'order.cancelled', 'payment.needs_review')),
    order_id       uuid,                           -- NULL: a payment matching no order
    payload        jsonb       NOT NULL,           -- the event's data (docs/events.md)
    created_at     timestamptz NOT NULL DEFAULT now(),
    fanned_out_at  timestamptz
);

CREATE INDEX order_events_to_fan_out ON order_events (seq) WHERE fanned_out_at IS NULL;
CREATE INDEX order_events_order ON order_events (order_id, seq);

-- A receiver. Its secret signs (Standard Webhooks, whsec_<base64>); after a rotation the
-- previous one signs too until previous_secret_expires_at, so a receiver can switch over.
CREATE TABLE webhook_endpoints (
    id                          uuid        PRIMARY KEY,
    url                         text        NOT NULL,
    event_kinds                 text[]      NOT NULL CHECK (cardinality(event_kinds) > 0),
    secret                      text        NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    active                      boolean     NOT NULL DEFAULT true,
    description                 text,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deactivated_at              timestamptz
);

-- One event to one endpoint. order_id and event_seq are the event's, kept here so the
-- worker's due query can hold back a later event of an order while an earlier one to the
-- same endpoint is pending, without a join. pending_since: when it last became pending
-- (its fan-out or a replay); retries stop WEBHOOK_RETRY_FOR_SECONDS after it.
CREATE TABLE webhook_deliveries (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id         uuid        NOT NULL REFERENCES order_events (id),
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id),
    order_id         uuid,
    event_seq        bigint      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed', 'gone')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    pending_since    timestamptz NOT NULL DEFAULT now(),
    last_status_code integer,
    last_error       text,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);

-- The worker's due query: pending deliveries by when they are due ...
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- ... each held back while an earlier event of its order to its endpoint is pending.
CREATE INDEX webhook_deliveries_pending_order ON webhook_deliveries (endpoint_id, order_id, event_seq)
    WHERE status = 'pending';
-- The admin's list, newest first, by status or not.
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_status_listing ON webhook_deliveries (status, created_at DESC, id DESC);
