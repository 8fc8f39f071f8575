"""0005_promo_currency.sql on a database holding codes made before it: fixed codes get a
currency (their scope's, else VND), percent codes none, and the CHECK holds from then on."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from service.db import migrate
from service.db.migrate import apply_migrations, ensure_database

CURRENCY_MIGRATION = "0005_promo_currency"


async def test_fixed_codes_made_before_get_their_scopes_currency_or_vnd(scratch_database, monkeypatch):
    url = await scratch_database("promo_currency")
    await ensure_database(url)
    every = migrate.migration_files()
    assert CURRENCY_MIGRATION in [path.stem for path in every]
    monkeypatch.setattr(migrate, "migration_files", lambda: [p for p in every if p.stem < CURRENCY_MIGRATION])
    await apply_migrations(url)

    usd_event, mixed_event, empty_event = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    eur_tier = uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        tiers = [
            (uuid.uuid4(), usd_event, "USD"),
            (uuid.uuid4(), usd_event, "USD"),
            (eur_tier, uuid.uuid4(), "EUR"),
            (uuid.uuid4(), mixed_event, "VND"),
            (uuid.uuid4(), mixed_event, "USD"),
        ]
        await conn.executemany(
            "INSERT INTO ticket_tiers (id, event_id, name, price, currency, quantity_total, max_per_order)"
            " VALUES ($1, $2, 'T', 1, $3, 1, 1)",
            tiers,
        )
        codes = [
            ("PLAIN", "fixed", None, None),
            ("USDEVENT", "fixed", usd_event, None),
            ("EURTIER", "fixed", None, [eur_tier]),
            ("EURTIERUSDEVENT", "fixed", usd_event, [eur_tier]),
            ("MIXED", "fixed", mixed_event, None),
            ("EMPTY", "fixed", empty_event, None),
            ("SHARE", "percent", usd_event, None),
        ]
        await conn.executemany(
            "INSERT INTO promo_codes (code, kind, value, event_id, tier_ids) VALUES ($1, $2, 10, $3, $4)", codes
        )

        monkeypatch.undo()
        assert await apply_migrations(url) == [p.stem for p in every if p.stem >= CURRENCY_MIGRATION]

        currencies = dict(await conn.fetch("SELECT code, currency FROM promo_codes"))
        assert currencies == {
            "PLAIN": "VND",
            "USDEVENT": "USD",
            "EURTIER": "EUR",
            "EURTIERUSDEVENT": "VND",  # a scope no tier is in
            "MIXED": "VND",
            "EMPTY": "VND",
            "SHARE": None,
        }

        for change in (
            "UPDATE promo_codes SET currency = NULL WHERE code = 'PLAIN'",
            "UPDATE promo_codes SET currency = 'VND' WHERE code = 'SHARE'",
            "UPDATE promo_codes SET currency = 'vnd' WHERE code = 'PLAIN'",
            "INSERT INTO promo_codes (code, kind, value) VALUES ('NEW', 'fixed', 1)",
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(change)
    finally:
        await conn.close()
