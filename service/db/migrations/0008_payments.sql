-- Payments in (issue #17, docs/payments.md): every authenticated SePay delivery, stored as
-- received before it is matched, and what matching decided, in the same transaction.
--
-- sepay_id: SePay's transaction id, the same on every retry and manual replay of a
-- delivery: unique, so a delivery is stored (and pays) once. NULL only for a body it could
-- not be read from (status needs_review, reason unreadable).
-- raw_body: the body exactly as received; payload: the same as jsonb, NULL when PostgreSQL
-- cannot hold it (not JSON, or a \u0000 inside). headers: the few request headers worth
-- keeping (never Authorization nor the signature's secret).
-- status: paid (this transfer paid order_id), needs_review (a person decides: reason says
-- why), ignored (not a payment to us: an outgoing transfer, SePay's test ping).
-- transaction_date: SePay's transactionDate, Vietnam time (UTC+7) in the payload.
-- detail: what the decision saw (the order's total and state, the tiers short of seats, ...).
CREATE TABLE payments (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    sepay_id         bigint      UNIQUE,
    raw_body         bytea       NOT NULL,
    payload          jsonb,
    headers          jsonb       NOT NULL DEFAULT '{}',
    status           text        NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'paid', 'needs_review', 'ignored')),
    reason           text,
    order_id         uuid        REFERENCES orders (id),
    payment_code     text,
    amount           bigint,
    transfer_type    text,
    account_number   text,
    reference_code   text,
    transaction_date timestamptz,
    detail           jsonb       NOT NULL DEFAULT '{}',
    received_at      timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz
);

-- The admin's list, newest first, by status or not; an order's payments.
CREATE INDEX payments_listing ON payments (received_at DESC, id DESC);
CREATE INDEX payments_status_listing ON payments (status, received_at DESC, id DESC);
CREATE INDEX payments_order ON payments (order_id) WHERE order_id IS NOT NULL;
