-- A fixed promo code's value is an amount of money, so it names its currency; a percent
-- code has none. A fixed code only applies to carts in its currency (reason `currency`).
ALTER TABLE promo_codes ADD COLUMN currency char(3) CHECK (currency ~ '^[A-Z]{3}$');

-- Fixed codes made before this column: until now the docs said to scope a fixed code to an
-- event to tie it to that event's currency, so a scoped code takes the one currency of the
-- tiers in its scope. Any other (unscoped, or a scope with no tiers or several currencies)
-- takes VND, the currency the service has been run in (the demo event, the load tool).
-- Check them after migrating: SELECT code, value, currency FROM promo_codes WHERE kind = 'fixed'.
UPDATE promo_codes p
SET currency = coalesce(
    (SELECT min(t.currency)
     FROM ticket_tiers t
     WHERE (p.event_id IS NOT NULL OR p.tier_ids IS NOT NULL)
       AND (p.event_id IS NULL OR t.event_id = p.event_id)
       AND (p.tier_ids IS NULL OR t.id = ANY (p.tier_ids))
     HAVING count(DISTINCT t.currency) = 1),
    'VND')
WHERE p.kind = 'fixed';

-- The previous release's code writes no currency: while it still serves (a rollout), it can
-- replace a code of the same kind but not create a fixed one (docs/promo-codes.md).
ALTER TABLE promo_codes ADD CONSTRAINT currency_of_fixed_codes_only
    CHECK ((kind = 'fixed') = (currency IS NOT NULL));
