-- The checkout's one statement refuses itself when a tier has too few seats left
-- (service/orders/sql.py INSERT_ORDER): it calls this with the tiers its guarded UPDATE did
-- not change, and an error ends the statement, so nothing of the order is written. That
-- lets the statement commit on its own (no BEGIN and COMMIT round trips around it), so a
-- hot tier's row lock is held only while PostgreSQL runs it and flushes its commit.
-- The tiers come back in the error's DETAIL, comma-separated (store.insert_order).
CREATE FUNCTION refuse_unsold_tiers(unsold uuid[]) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(unsold) > 0 THEN
        RAISE EXCEPTION 'tier_guard_failed' USING DETAIL = array_to_string(unsold, ','), HINT = 'tier-guard';
    END IF;
    RETURN true;
END
$$;
