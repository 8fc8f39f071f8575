-- Promo codes and their use. `used` and per-customer `uses` only change inside the
-- checkout transaction (guarded), and go back down when an order is cancelled or expires.
CREATE TABLE promo_codes (
    code                   text PRIMARY KEY CHECK (code = upper(btrim(code)) AND length(code) BETWEEN 1 AND 64),
    kind                   text    NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value                  bigint  NOT NULL CHECK (value >= 1),
    event_id               uuid,
    tier_ids               uuid[],
    starts_at              timestamptz,
    ends_at                timestamptz,
    min_subtotal           bigint  NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    max_uses               integer CHECK (max_uses >= 1),
    max_uses_per_customer  integer CHECK (max_uses_per_customer >= 1),
    used                   integer NOT NULL DEFAULT 0,
    active                 boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT percent_at_most_100 CHECK (kind <> 'percent' OR value <= 100),
    CONSTRAINT used_within_limit CHECK (0 <= used AND (max_uses IS NULL OR used <= max_uses)),
    CONSTRAINT promo_window_ordered CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);

-- One row per (code, customer): guarded increment serialises concurrent checkouts.
CREATE TABLE promo_customer_uses (
    code          text    NOT NULL REFERENCES promo_codes (code),
    customer_key  text    NOT NULL,      -- 'user:<id>' or 'email:<sha256 of normalised email>'
    uses          integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    PRIMARY KEY (code, customer_key)
);

-- Which order used which code; released when the order is cancelled or expires.
CREATE TABLE promo_redemptions (
    order_id      uuid PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    code          text        NOT NULL REFERENCES promo_codes (code),
    customer_key  text        NOT NULL,
    discount      bigint      NOT NULL CHECK (discount >= 0),
    released_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
