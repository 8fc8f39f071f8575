-- A signed-in user's cart, written behind Redis (service/cart/saved.py), so a Redis loss
-- does not lose it: the next use holds the saved lines again where seats are free.
-- parts: {"<event id>": {"x": <hold expiry, ms>, "l": {"<tier id>": <quantity>}}}, open parts only.
-- saved_ms: when the API read the cart from Redis (its clock); an older write never
-- replaces a newer one, and the checkout empties the row in its own transaction.
CREATE TABLE user_carts (
    user_id     text        PRIMARY KEY,
    parts       jsonb       NOT NULL DEFAULT '{}',
    promo_code  text,
    saved_ms    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
