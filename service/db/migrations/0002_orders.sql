-- Orders, their lines, and one ticket row per seat.
CREATE TABLE orders (
    id                uuid PRIMARY KEY,           -- chosen by checkout_begin, kept in the cart parts
    number            text        NOT NULL UNIQUE, -- human-readable, e.g. TC-7KQ4-MX9W
    cart_id           text        NOT NULL,
    user_id           text,                        -- signed-in owner; NULL for guests
    email             text        NOT NULL,
    name              text,
    status            text        NOT NULL DEFAULT 'pending_payment'
        CHECK (status IN ('pending_payment', 'paid', 'cancelled', 'expired')),
    currency          char(3)     NOT NULL,
    subtotal          bigint      NOT NULL CHECK (subtotal >= 0),
    discount          bigint      NOT NULL DEFAULT 0 CHECK (discount >= 0 AND discount <= subtotal),
    total             bigint      NOT NULL CHECK (total >= 0),
    promo_code        text,
    payment_code      text        NOT NULL UNIQUE,
    payment_due_at    timestamptz NOT NULL,
    access_token_hash bytea,                       -- sha256 of the guest's order token
    idempotency_key   text,
    event_ids         uuid[]      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    paid_at           timestamptz,
    cancelled_at      timestamptz,
    expired_at        timestamptz,
    CONSTRAINT total_is_subtotal_less_discount CHECK (total = subtotal - discount)
);

CREATE INDEX orders_user_created ON orders (user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX orders_pending_due ON orders (payment_due_at) WHERE status = 'pending_payment';
CREATE UNIQUE INDEX orders_cart_idempotency ON orders (cart_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE order_items (
    order_id    uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    tier_id     uuid    NOT NULL REFERENCES ticket_tiers (id),
    event_id    uuid    NOT NULL,
    name        text    NOT NULL,
    unit_price  bigint  NOT NULL CHECK (unit_price >= 0),
    quantity    integer NOT NULL CHECK (quantity >= 1),
    line_total  bigint  NOT NULL CHECK (line_total >= 0),
    discount    bigint  NOT NULL DEFAULT 0 CHECK (discount >= 0),
    PRIMARY KEY (order_id, tier_id)
);

CREATE TABLE tickets (
    id          uuid PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    tier_id     uuid        NOT NULL REFERENCES ticket_tiers (id),
    event_id    uuid        NOT NULL,
    code        text        NOT NULL UNIQUE,       -- unguessable, printed on the ticket
    status      text        NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'void')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    voided_at   timestamptz
);

CREATE INDEX tickets_order ON tickets (order_id);
CREATE INDEX tickets_tier_valid ON tickets (tier_id) WHERE status = 'valid';
