-- What an order's commit changed, so whoever finds it committed later (a retried checkout,
-- the worker's recovery, the reconciler) can count exactly that change in Redis.
-- sold_version: the tier's sold_version that this item's seats produced (each change of
-- quantity_sold bumps it by one; see lua/include/sold.lua). NULL for items written before.
ALTER TABLE order_items ADD COLUMN sold_version bigint;

-- Orders with nothing to pay (a 100 % promo) are paid at checkout: no payment code, no due
-- time, never expired.
ALTER TABLE orders ALTER COLUMN payment_code DROP NOT NULL;
ALTER TABLE orders ALTER COLUMN payment_due_at DROP NOT NULL;
ALTER TABLE orders ADD CONSTRAINT payment_unless_free CHECK (
    (payment_code IS NOT NULL AND payment_due_at IS NOT NULL) OR (total = 0 AND status <> 'pending_payment'));

-- A cart's orders, newest first: the checkout answers a cart's last live order again when
-- its buyer lost the answer (checkout.md, Replays).
CREATE INDEX orders_cart_created ON orders (cart_id, created_at DESC);
