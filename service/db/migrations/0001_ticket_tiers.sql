-- Ticket tiers: the catalogue and the one true count of seats sold.
-- quantity_sold only changes through guarded UPDATEs that bump sold_version in the same
-- statement; Redis installs (quantity_sold, sold_version) only when the version is newer.
CREATE TABLE ticket_tiers (
    id              uuid PRIMARY KEY,
    event_id        uuid        NOT NULL,
    name            text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price           bigint      NOT NULL CHECK (price >= 0),
    currency        char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    quantity_total  integer     NOT NULL CHECK (quantity_total >= 0),
    quantity_sold   integer     NOT NULL DEFAULT 0,
    max_per_order   integer     NOT NULL CHECK (max_per_order >= 1),
    sales_start     timestamptz,
    sales_end       timestamptz,
    active          boolean     NOT NULL DEFAULT true,
    -- bumped by every admin change of the definition (name, price, total, window, ...)
    version         bigint      NOT NULL DEFAULT 1,
    -- bumped by every change of quantity_sold, in the same UPDATE
    sold_version    bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT quantity_sold_within_total
        CHECK (0 <= quantity_sold AND quantity_sold <= quantity_total),
    CONSTRAINT sales_window_ordered
        CHECK (sales_start IS NULL OR sales_end IS NULL OR sales_start < sales_end)
);

CREATE INDEX ticket_tiers_event_id ON ticket_tiers (event_id);
