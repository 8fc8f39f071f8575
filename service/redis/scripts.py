"""Loads every Lua script in ``lua/`` once and exposes one typed async function per script.

Nothing else in the code calls EVALSHA or builds a key name. Each script replies with a
JSON object (cjson), decoded here into a msgspec Struct, so callers get typed values.
A script missing from the server's cache (restart, flush, failover) is loaded again and
the call repeated once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from redis.exceptions import NoScriptError, ResponseError

from service.keys import Keys
from service.redis.client import RedisClient
from service.redis.replies import (
    ClearReply,
    InstallReply,
    InventoryReply,
    MergeReply,
    RateLimitReply,
    ReconcileReply,
    RemoveReply,
    ReserveReply,
    SweepReply,
    TierLoadReply,
    ViewReply,
)

LUA_DIR = Path(__file__).resolve().parent.parent.parent / "lua"
_INCLUDE = re.compile(r"^--!include\s+(\S+)\s*$", re.MULTILINE)

R = TypeVar("R")


def read_script(name: str) -> str:
    """The source of ``lua/<name>.lua`` with its ``--!include`` lines expanded."""
    source = (LUA_DIR / f"{name}.lua").read_text()
    return _INCLUDE.sub(lambda m: (LUA_DIR / "include" / m.group(1)).read_text(), source)


def _flat(triples: list[tuple[str, int, int]]) -> list[Any]:
    """(tier, sold, sold_version) triples as the flat ARGV the sold scripts read."""
    return [value for triple in triples for value in triple]


class TierFields(msgspec.Struct, frozen=True):
    """What tier_load installs: one ticket_tiers row as Redis keeps it."""

    tier_id: str
    version: int
    total: int
    max_per_order: int
    price: int
    currency: str
    name: str
    sales_start_ms: int
    sales_end_ms: int
    active: bool
    sold: int
    sold_version: int


class Scripts:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._source: dict[str, str] = {}
        self._sha: dict[str, str] = {}
        for path in sorted(LUA_DIR.glob("*.lua")):
            self._source[path.stem] = read_script(path.stem)

    @property
    def names(self) -> list[str]:
        return list(self._source)

    async def load(self) -> None:
        for name, source in self._source.items():
            sha = await self.redis.script_load(source)
            self._sha[name] = sha.decode() if isinstance(sha, bytes) else sha

    async def _eval(self, name: str, keys: list[str], args: list[Any], reply: type[R]) -> R:
        if name not in self._sha:
            await self.load()
        try:
            raw = await self.redis.evalsha(self._sha[name], len(keys), *keys, *args)
        except NoScriptError:
            await self.load()
            raw = await self.redis.evalsha(self._sha[name], len(keys), *keys, *args)
        return msgspec.json.decode(raw, type=reply)

    # -- cart parts ------------------------------------------------------------------------

    async def reserve(
        self,
        *,
        event_id: str,
        cart_id: str,
        tier_id: str,
        quantity: int,
        mode: str,
        now_ms: int,
        ttl_ms: int,
        max_lines: int,
        sweep_limit: int,
        request_id: str,
        meta_fields: dict[str, str],
        meta_defaults: dict[str, str],
        meta_ttl_ms: int,
    ) -> tuple[ReserveReply, dict[bytes, bytes]]:
        """Run reserve.lua, with the cart's meta written before it in the same pipeline.

        The meta is written first, so its list of events is always a superset of the
        cart's parts; it is read back after the script, so the caller sees the cart-wide
        facts (currency, promo, other events) without another round trip.
        """
        ev = self.keys.event(event_id)
        meta_key = self.keys.cart_meta(cart_id)
        args = [cart_id, tier_id, quantity, mode, now_ms, ttl_ms, max_lines, sweep_limit, request_id]
        if "reserve" not in self._sha:
            await self.load()
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            if meta_fields:
                pipe.hset(meta_key, mapping=meta_fields)
            for field, value in meta_defaults.items():
                pipe.hsetnx(meta_key, field, value)
            pipe.pexpire(meta_key, meta_ttl_ms)
            pipe.evalsha(self._sha["reserve"], 3, ev.inventory, ev.carts, ev.expiries, *args)
            pipe.hgetall(meta_key)
            results = await pipe.execute(raise_on_error=False)
            raw, meta = results[-2], results[-1]
            if isinstance(raw, NoScriptError) and attempt == 1:
                await self.load()
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return msgspec.json.decode(raw, type=ReserveReply), meta
        raise ResponseError("reserve: script could not be loaded")  # pragma: no cover

    async def remove_line(self, *, event_id: str, cart_id: str, tier_id: str, now_ms: int) -> RemoveReply:
        ev = self.keys.event(event_id)
        return await self._eval(
            "remove_line", [ev.inventory, ev.carts, ev.expiries], [cart_id, tier_id, now_ms], RemoveReply
        )

    async def clear_part(self, *, event_id: str, cart_id: str) -> ClearReply:
        ev = self.keys.event(event_id)
        return await self._eval("clear_part", [ev.inventory, ev.carts, ev.expiries], [cart_id], ClearReply)

    async def view(self, *, event_id: str, cart_id: str, now_ms: int) -> ViewReply:
        ev = self.keys.event(event_id)
        return await self._eval("view", [ev.inventory, ev.carts], [cart_id, now_ms], ViewReply)

    async def views(self, *, cart_id: str, event_ids: list[str], now_ms: int) -> dict[str, ViewReply]:
        """view.lua for several events in one pipeline (one round trip)."""
        if not event_ids:
            return {}
        if "view" not in self._sha:
            await self.load()
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for event_id in event_ids:
                ev = self.keys.event(event_id)
                pipe.evalsha(self._sha["view"], 2, ev.inventory, ev.carts, cart_id, now_ms)
            results = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                await self.load()
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return {e: msgspec.json.decode(raw, type=ViewReply) for e, raw in zip(event_ids, results)}
        raise ResponseError("view: script could not be loaded")  # pragma: no cover

    async def merge_part(
        self, *, event_id: str, guest_cart_id: str, user_cart_id: str, now_ms: int, ttl_ms: int, max_lines: int
    ) -> MergeReply:
        """Move the guest's part of the event into the user's, capped per tier (merge_part.lua)."""
        ev = self.keys.event(event_id)
        return await self._eval(
            "merge_part",
            [ev.inventory, ev.carts, ev.expiries],
            [guest_cart_id, user_cart_id, now_ms, ttl_ms, max_lines],
            MergeReply,
        )

    # -- cart meta (plain commands on the cart's own slot) --------------------------------

    async def cart_meta(self, cart_id: str) -> dict[bytes, bytes]:
        return await self.redis.hgetall(self.keys.cart_meta(cart_id))

    async def set_cart_meta(self, cart_id: str, fields: dict[str, str], ttl_ms: int) -> None:
        key = self.keys.cart_meta(cart_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, ttl_ms)
        await pipe.execute()

    async def drop_cart_meta(self, cart_id: str, fields: list[str]) -> None:
        if fields:
            await self.redis.hdel(self.keys.cart_meta(cart_id), *fields)

    async def delete_cart_meta(self, cart_id: str) -> None:
        await self.redis.delete(self.keys.cart_meta(cart_id))

    async def sweep(self, *, event_id: str, now_ms: int, limit: int) -> SweepReply:
        ev = self.keys.event(event_id)
        return await self._eval("sweep", [ev.inventory, ev.carts, ev.expiries], [now_ms, limit], SweepReply)

    # -- tiers -----------------------------------------------------------------------------

    async def tier_load(self, *, event_id: str, tier: TierFields, now_ms: int) -> TierLoadReply:
        """Install a tier by the version rule, and note its event in the worker's index."""
        ev = self.keys.event(event_id)
        reply = await self._eval(
            "tier_load",
            [ev.inventory],
            [
                tier.tier_id,
                tier.version,
                tier.total,
                tier.max_per_order,
                tier.price,
                tier.currency,
                tier.name,
                tier.sales_start_ms,
                tier.sales_end_ms,
                "1" if tier.active else "0",
                tier.sold,
                tier.sold_version,
            ],
            TierLoadReply,
        )
        await self.redis.zadd(self.keys.active_events(), {event_id: now_ms})
        return reply

    async def install_sold(self, *, event_id: str, pairs: list[tuple[str, int, int]]) -> InstallReply:
        """Install (tier, sold, sold_version) triples learnt from PostgreSQL."""
        if not pairs:
            return InstallReply(r="ok", installed=0)
        ev = self.keys.event(event_id)
        return await self._eval("install_sold", [ev.inventory], _flat(pairs), InstallReply)

    async def reconcile(self, *, event_id: str, pairs: list[tuple[str, int, int]]) -> ReconcileReply:
        """Recompute the event's held counters from its parts and install (tier, sold,
        sold_version) triples read from PostgreSQL before this call (reconcile.lua)."""
        ev = self.keys.event(event_id)
        return await self._eval("reconcile", [ev.inventory, ev.carts], _flat(pairs), ReconcileReply)

    async def inventory(self, *, event_id: str, tier_ids: list[str]) -> InventoryReply:
        ev = self.keys.event(event_id)
        return await self._eval("inventory", [ev.inventory], list(tier_ids), InventoryReply)

    # -- rate limits -----------------------------------------------------------------------

    async def rate_limit(self, key: str, limit_per_minute: int, burst: int, now_ms: int, *,
                         cost: int = 1, period_ms: int = 60_000) -> RateLimitReply:
        """Spend ``cost`` from the GCRA bucket at ``key`` (from ``Keys.rate_limit``).

        ``limit_per_minute`` (with the default period) is the steady rate, ``burst`` how many
        may come at once; both at least 1 (callers treat a limit of 0 as "no limit" and skip
        the call). A refused call changes nothing. Not idempotent, but a repeated call can only
        make its subject wait longer, never let more through.
        """
        return await self._eval(
            "rate_limit", [key], [limit_per_minute, period_ms, burst, now_ms, cost], RateLimitReply
        )
