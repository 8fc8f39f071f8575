"""One typed method per Lua script in ``lua/`` (the machinery is in ``gateway.py``).

Each method names the script's keys (from ``service/keys.py``) and arguments in the order
its header documents, and decodes its reply into the Struct of ``replies.py``. Nothing else
in the code calls EVALSHA or builds a key name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from service.keys import Keys
from service.redis.client import RedisClient

if TYPE_CHECKING:
    from service.redis.autopipeline import AutoPipelined

# The `type: ignore[misc]` on awaited commands: redis-py types its asyncio command methods
# as returning ``Awaitable[T] | T`` (one mixin for both clients), which mypy will not await.
from service.redis.gateway import Command, LuaGateway, Script
from service.redis.replies import (
    AbortReply,
    ApplyReply,
    BeginReply,
    ClearReply,
    CommittedPart,
    CountReply,
    DueCheckout,
    InstallReply,
    InventoryReply,
    MergeReply,
    RateLimitReply,
    ReconcileReply,
    RecountReply,
    RemoveReply,
    ReserveReply,
    RetireReply,
    StoredPart,
    SweepReply,
    TierLoadReply,
    UnlockReply,
    ViewReply,
)


def _flat(triples: Sequence[tuple[str, int, int]]) -> list[Any]:
    """(tier, number, number) triples as the flat ARGV the sold scripts read."""
    return [value for triple in triples for value in triple]


def _decode_each(event_ids: Sequence[str], raws: Sequence[Any], reply: type[Any]) -> dict[str, Any]:
    return {e: msgspec.json.decode(raw, type=reply) for e, raw in zip(event_ids, raws, strict=True)}


class TierPlace(msgspec.Struct, frozen=True):
    """Where a tier lives: its event and currency, which never change."""

    event_id: str
    currency: str


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


class Scripts(LuaGateway):
    def __init__(self, redis: RedisClient | AutoPipelined, keys: Keys) -> None:
        super().__init__(redis)
        self.keys = keys

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
        meta_ttl_ms: int,
        currency: str = "",
        view_events: Sequence[str] = (),
    ) -> tuple[ReserveReply, dict[bytes, bytes], dict[str, ViewReply]]:
        """Run reserve.lua, with cart_touch.lua writing the cart's meta just before it, in
        the same pipeline (on a Cluster, in a round trip before it): two commands, one trip.

        The meta is written first, so its list of events is always a superset of the
        cart's parts; cart_touch answers it, so the caller sees the cart-wide facts
        (currency, promo, other events) without another round trip. ``currency`` is kept
        only if the meta names none yet. ``view_events``: the cart's parts of these other
        events are read (view.lua) in the same pipeline.
        """
        ev = self.keys.event(event_id)
        touch_args: list[Any] = [meta_ttl_ms, currency]
        for field, value in meta_fields.items():
            touch_args += [field, value]
        touch = Script("cart_touch", [self.keys.cart_meta(cart_id)], touch_args)
        reserve = Script(
            "reserve",
            [ev.inventory, ev.carts, ev.expiries],
            [cart_id, tier_id, quantity, mode, now_ms, ttl_ms, max_lines, sweep_limit, request_id],
        )
        views = self._views(cart_id, view_events, now_ms)
        if self.cluster:
            # The meta and the event's keys live on different masters, and a cluster
            # pipeline sends to each master at once, in no order: the meta goes first, in a
            # round trip of its own, so it names the event before the part exists (an error
            # there stops the change: never hold seats the meta does not name).
            results = await self.run([touch]) + await self.run([reserve, *views])
        else:
            results = await self.run([touch, reserve, *views])
        meta_pairs, raw = results[0], results[1]
        meta = dict(zip(meta_pairs[::2], meta_pairs[1::2], strict=True))
        return msgspec.json.decode(raw, type=ReserveReply), meta, _decode_each(view_events, results[2:], ViewReply)

    async def remove_line(self, *, event_id: str, cart_id: str, tier_id: str, now_ms: int) -> RemoveReply:
        ev = self.keys.event(event_id)
        return await self.run_one(
            Script("remove_line", [ev.inventory, ev.carts, ev.expiries], [cart_id, tier_id, now_ms]), RemoveReply
        )

    async def clear_part(self, *, event_id: str, cart_id: str) -> ClearReply:
        ev = self.keys.event(event_id)
        return await self.run_one(Script("clear_part", [ev.inventory, ev.carts, ev.expiries], [cart_id]), ClearReply)

    async def view(self, *, event_id: str, cart_id: str, now_ms: int) -> ViewReply:
        ev = self.keys.event(event_id)
        return await self.run_one(Script("view", [ev.inventory, ev.carts], [cart_id, now_ms]), ViewReply)

    def _views(self, cart_id: str, event_ids: Sequence[str], now_ms: int) -> list[Script]:
        views = []
        for event_id in event_ids:
            ev = self.keys.event(event_id)
            views.append(Script("view", [ev.inventory, ev.carts], [cart_id, now_ms]))
        return views

    async def views(self, *, cart_id: str, event_ids: Sequence[str], now_ms: int) -> dict[str, ViewReply]:
        """view.lua for several events in one pipeline (one round trip)."""
        if not event_ids:
            return {}
        return (await self.meta_and_views(cart_id=cart_id, event_ids=event_ids, now_ms=now_ms, meta=False))[1]

    async def meta_and_views(
        self, *, cart_id: str, event_ids: Sequence[str], now_ms: int, meta: bool = True
    ) -> tuple[dict[bytes, bytes], dict[str, ViewReply]]:
        """The cart's meta (HGETALL; skipped with ``meta=False``) and its parts of
        ``event_ids`` (view.lua), in one pipeline: one round trip."""
        calls: list[Script | Command] = [Command(("HGETALL", self.keys.cart_meta(cart_id)))] if meta else []
        results = await self.run([*calls, *self._views(cart_id, event_ids, now_ms)])
        fields: dict[bytes, bytes] = {}
        if meta:
            raw = results.pop(0)
            fields = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
        return fields, _decode_each(event_ids, results, ViewReply)

    async def merge_part(
        self, *, event_id: str, guest_cart_id: str, user_cart_id: str, now_ms: int, ttl_ms: int, max_lines: int
    ) -> MergeReply:
        """Move the guest's part of the event into the user's, capped per tier (merge_part.lua)."""
        ev = self.keys.event(event_id)
        return await self.run_one(
            Script(
                "merge_part",
                [ev.inventory, ev.carts, ev.expiries],
                [guest_cart_id, user_cart_id, now_ms, ttl_ms, max_lines],
            ),
            MergeReply,
        )

    # -- cart meta (plain commands on the cart's own slot) --------------------------------

    async def cart_meta(self, cart_id: str) -> dict[bytes, bytes]:
        fields: dict[bytes, bytes] = await self.redis.hgetall(self.keys.cart_meta(cart_id))  # type: ignore[misc]
        return fields

    async def set_cart_meta(self, cart_id: str, fields: dict[str, str], ttl_ms: int) -> None:
        key = self.keys.cart_meta(cart_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, ttl_ms)
        await pipe.execute()

    async def drop_cart_meta(self, cart_id: str, fields: list[str]) -> None:
        if fields:
            await self.redis.hdel(self.keys.cart_meta(cart_id), *fields)  # type: ignore[misc]

    async def delete_cart_meta(self, cart_id: str) -> None:
        await self.redis.delete(self.keys.cart_meta(cart_id))

    async def sweep(self, *, event_id: str, now_ms: int, limit: int) -> SweepReply:
        ev = self.keys.event(event_id)
        return await self.run_one(Script("sweep", [ev.inventory, ev.carts, ev.expiries], [now_ms, limit]), SweepReply)

    # -- tiers -----------------------------------------------------------------------------

    async def tier_load(self, *, event_id: str, tier: TierFields, now_ms: int) -> TierLoadReply:
        """Install a tier by the version rule, and note its event in the worker's index."""
        ev = self.keys.event(event_id)
        reply = await self.run_one(
            Script(
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
                    now_ms,
                ],
            ),
            TierLoadReply,
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.active_events(), {event_id: now_ms})
        # arg-type: redis-py types a field's value as str, though it takes bytes too.
        pipe.hset(
            self.keys.tier_places(),
            tier.tier_id,
            msgspec.json.encode(TierPlace(event_id=event_id, currency=tier.currency)),  # type: ignore[arg-type]
        )
        await pipe.execute()
        return reply

    async def active_events(self) -> list[str]:
        """Every event in the worker's index of loaded events, read in bounded pages, sorted."""
        found: set[str] = set()
        async for member, _score in self.redis.zscan_iter(self.keys.active_events(), count=1000):
            found.add(member.decode() if isinstance(member, bytes) else member)
        return sorted(found)

    async def tier_place(self, tier_id: str) -> TierPlace | None:
        """Where a tier lives, as its last load wrote it (``tier_load``); None if unknown here."""
        raw = await self.redis.hget(self.keys.tier_places(), tier_id)  # type: ignore[misc]
        return None if raw is None else msgspec.json.decode(raw, type=TierPlace)

    async def forget_tier_places(self, tier_ids: list[str]) -> None:
        """Drop tiers from the tier -> event map (a retired event's: workers/active_events.py)."""
        await self.redis.hdel(self.keys.tier_places(), *tier_ids)  # type: ignore[misc]

    async def install_sold(self, *, event_id: str, pairs: list[tuple[str, int, int]]) -> InstallReply:
        """Install (tier, sold, sold_version) triples read from PostgreSQL (install_sold.lua)."""
        if not pairs:
            return InstallReply(result="ok", installed=0)
        ev = self.keys.event(event_id)
        return await self.run_one(Script("install_sold", [ev.inventory], _flat(pairs)), InstallReply)

    async def count_sold(self, *, event_id: str, changes: list[tuple[str, int, int]]) -> CountReply:
        """Count committed (tier, sold_version, delta) changes, each once (count_sold.lua)."""
        if not changes:
            return CountReply(result="ok", counted=0)
        ev = self.keys.event(event_id)
        return await self.run_one(Script("count_sold", [ev.inventory], _flat(changes)), CountReply)

    async def reconcile(
        self,
        *,
        event_id: str,
        pairs: list[tuple[str, int, int]],
        max_parts: int,
        applied: Sequence[CommittedPart] = (),
    ) -> ReconcileReply:
        """Apply the parts of committed orders (``applied``), recompute the event's held
        counters from its parts (when it has at most ``max_parts``) and install (tier, sold,
        sold_version) triples read from PostgreSQL before the parts were listed (reconcile.lua)."""
        ev = self.keys.event(event_id)
        return await self.run_one(
            Script(
                "reconcile",
                [ev.inventory, ev.carts, ev.expiries, ev.checkouts],
                [max_parts, msgspec.json.encode(list(applied)), *_flat(pairs)],
            ),
            ReconcileReply,
        )

    async def recount_held(self, *, event_id: str, recount_id: str, cursor: str, count: int) -> RecountReply:
        """One step of the chunked recount of the event's held counters (recount_held.lua):
        ``cursor`` "0" begins one under ``recount_id`` (random, never reused), then pass
        the cursor each reply gives until it answers "done"."""
        ev = self.keys.event(event_id)
        return await self.run_one(
            Script("recount_held", [ev.inventory, ev.carts], [recount_id, cursor, count]), RecountReply
        )

    async def retire_event(self, *, event_id: str, now_ms: int, grace_ms: int) -> RetireReply:
        """Delete the event's Redis state if it has no part and every tier's sale is over,
        in one step (retire_event.lua); the caller then takes it out of the index."""
        ev = self.keys.event(event_id)
        return await self.run_one(
            Script("retire_event", [ev.inventory, ev.carts, ev.expiries, ev.checkouts], [now_ms, grace_ms]), RetireReply
        )

    async def inventory(self, *, event_id: str, tier_ids: list[str]) -> InventoryReply:
        ev = self.keys.event(event_id)
        return await self.run_one(Script("inventory", [ev.inventory], list(tier_ids)), InventoryReply)

    # -- rate limits -----------------------------------------------------------------------

    async def rate_limit(
        self, key: str, limit_per_minute: int, burst: int, now_ms: int, *, cost: int = 1, period_ms: int = 60_000
    ) -> RateLimitReply:
        """Spend ``cost`` from the GCRA bucket at ``key`` (from ``Keys.rate_limit``).

        ``limit_per_minute`` (with the default period) is the steady rate, ``burst`` how many
        may come at once; both at least 1 (callers treat a limit of 0 as "no limit" and skip
        the call). A refused call changes nothing. Not idempotent, but a repeated call can only
        make its subject wait longer, never let more through.
        """
        return await self.run_one(
            Script("rate_limit", [key], [limit_per_minute, period_ms, burst, now_ms, cost]), RateLimitReply
        )

    # -- checkout (the saga in service/orders/checkout.py) ---------------------------------

    async def checkout_begin(
        self, *, cart_id: str, event_ids: list[str], order_id: str, replace: str, now_ms: int, deadline_ms: int
    ) -> dict[str, BeginReply]:
        """Move the cart's part of each event into checkout under ``order_id`` (one round trip)."""
        calls = []
        for event_id in event_ids:
            ev = self.keys.event(event_id)
            calls.append(
                Script(
                    "checkout_begin",
                    [ev.inventory, ev.carts, ev.expiries, ev.checkouts],
                    [cart_id, order_id, replace, now_ms, deadline_ms],
                )
            )
        return _decode_each(event_ids, await self.run(calls), BeginReply)

    async def checkout_apply(
        self, *, cart_id: str, order_id: str, changes: dict[str, list[tuple[str, int, int]]]
    ) -> dict[str, ApplyReply]:
        """For each event of ``changes``: count the order's (tier, sold_version, delta)
        changes and release the cart's part of ``order_id``, in one script, so the seats
        move from ``held`` to ``sold`` at once (one round trip for all events)."""
        events = list(changes)
        calls = []
        for event_id in events:
            ev = self.keys.event(event_id)
            calls.append(
                Script(
                    "checkout_apply",
                    [ev.inventory, ev.carts, ev.expiries, ev.checkouts],
                    [cart_id, order_id, *_flat(changes[event_id])],
                )
            )
        return _decode_each(events, await self.run(calls), ApplyReply)

    async def checkout_abort(
        self,
        *,
        cart_id: str,
        order_id: str,
        event_ids: list[str],
        now_ms: int,
        grace_ms: int,
    ) -> dict[str, AbortReply]:
        """Move the cart's parts of ``order_id``, certainly not committed, back to open,
        holds kept, no longer naming the order (one round trip; see checkout_abort.lua)."""
        calls = []
        for event_id in event_ids:
            ev = self.keys.event(event_id)
            calls.append(
                Script("checkout_abort", [ev.carts, ev.expiries, ev.checkouts], [cart_id, order_id, now_ms, grace_ms])
            )
        return _decode_each(event_ids, await self.run(calls), AbortReply)

    async def checkout_lock(self, cart_id: str, token: str, ttl_ms: int) -> bool:
        """Take the cart's checkout lock (SET NX PX); False when another checkout holds it."""
        return bool(await self.redis.set(self.keys.cart_checkout_lock(cart_id), token, nx=True, px=ttl_ms))

    async def checkout_unlock(
        self,
        cart_id: str,
        token: str,
        *,
        remember: dict[str, str] | None = None,
        forget: list[str] | None = None,
        meta_ttl_ms: int = 0,
    ) -> UnlockReply:
        """Write what the checkout leaves in the cart's meta (``remember``, ``forget``), then
        release its lock if it still holds it: one round trip, the cart's own slot."""
        meta_key = self.keys.cart_meta(cart_id)
        calls: list[Script | Command] = []
        if remember:
            calls.append(Command(("HSET", meta_key, *[v for pair in remember.items() for v in pair])))
            calls.append(Command(("PEXPIRE", meta_key, meta_ttl_ms)))
        if forget:
            calls.append(Command(("HDEL", meta_key, *forget)))
        calls.append(Script("checkout_unlock", [self.keys.cart_checkout_lock(cart_id)], [token]))
        return msgspec.json.decode((await self.run(calls))[-1], type=UnlockReply)

    async def due_checkouts(self, *, event_id: str, now_ms: int | None, limit: int) -> list[DueCheckout]:
        """Carts whose part of the event is in checkout past its deadline (the oldest
        first, at most ``limit``), with the part as stored (read-only). ``now_ms`` None:
        every part in checkout, due or not."""
        ev = self.keys.event(event_id)
        due = await self.redis.zrangebyscore(
            ev.checkouts, "-inf", "+inf" if now_ms is None else now_ms, start=0, num=limit, withscores=True
        )
        if not due:
            return []
        raws = await self.redis.hmget(ev.carts, [cart_id for cart_id, _ in due])  # type: ignore[misc]
        return [
            DueCheckout(
                cart_id=cart_id.decode(),
                deadline_ms=int(score),
                part=msgspec.json.decode(raw, type=StoredPart) if raw else None,
            )
            for (cart_id, score), raw in zip(due, raws, strict=True)
        ]
