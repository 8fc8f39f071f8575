"""A model-based test of the reservation engine: hypothesis drives the Lua scripts on real
Redis (through ``Scripts``, with an explicit clock so holds expire) against a plain Python
model of one event, and after every step checks docs/design.md's invariants:

- held = the sum of the parts' lines, per tier (and the expiry sets match the parts);
- sold + held <= total, unless an admin lowered the total below what was already out;
- a confirmed hold stays exactly as confirmed until it expires, is removed by its owner,
  or is checked out (every part in Redis equals the model's);
- sold in Redis follows PostgreSQL's changes by the chain rule of lua/include/sold.lua
  (the model counts them the same way), whatever flushes and reloads came between;
- no seat is counted twice: sold + held in Redis equals PostgreSQL's sold plus the seats of
  parts whose order did not commit (never less: that would grant a sold seat), unless a
  late loader installed a count while a committed checkout was not applied yet.

Steps: add, set, remove, clear, a retried add, sweep, reconcile, admin total changes,
a Redis flush (this test's keys only; tiers reload from "PostgreSQL" as the API does),
checkout begin / commit / apply (in any order across carts) / abort, and time passing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from service.keys import Keys
from service.redis.replies import CommittedPart
from service.redis.scripts import Scripts, TierFields
from tests.conftest import TEST_KEY_PREFIX

PREFIX = TEST_KEY_PREFIX + "model:"
EVENT = "ev-model"
TIERS = ("t1", "t2", "t3")
CARTS = ("c1", "c2")
TTL_MS = 10_000
MAX_LINES = 2
MAX_PER_ORDER = 4
SWEEP_LIMIT = 20  # more than there are carts: a reserve releases every expired part first
DEADLINE_MS = 5_000
GRACE_MS = 3_000
START_MS = 1_800_000_000_000


@dataclass
class PgTier:
    """A ticket_tiers row: the truth Redis copies."""

    total: int
    version: int = 1
    sold: int = 0
    sold_version: int = 0


@dataclass
class Part:
    state: str  # "open" or "checkout"
    expiry_ms: int  # open: hold expiry; checkout: deadline
    lines: dict[str, int] = field(default_factory=dict)
    order_id: str = ""  # the order id it names
    hold_expiry_ms: int = 0  # hold expiry before the checkout
    request_id: str = ""  # request id of the last applied reserve
    committed: list[tuple[str, int, int]] | None = None  # its order's (tier, version, delta), once committed


@dataclass
class RedisSold:
    """What Redis has counted of a tier's sold (lua/include/sold.lua): a pair installed from
    PostgreSQL, and the changes above it counted one by one."""

    sold: int
    version: int
    counted: dict[int, int] = field(default_factory=dict)  # version -> delta, above `version`

    def have(self) -> int:
        """The version up to which every change is counted (sold_v)."""
        version = self.version
        while version + 1 in self.counted:
            version += 1
        return version

    def value(self) -> int:
        return self.sold + sum(self.counted.values())

    def count(self, version: int, delta: int) -> None:
        if version > self.have() and version not in self.counted:
            self.counted[version] = delta

    def install(self, sold: int, version: int, repair: bool = False) -> None:
        have = self.have()
        if version < have or (version == have and not repair):
            return
        self.sold, self.version = sold, version
        self.counted = {v: d for v, d in self.counted.items() if v > version}


class ReservationModel(RuleBasedStateMachine):
    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()  # the rules are sync: each runs its script calls here
        self.redis = Redis.from_url(redis_url)
        self.scripts = Scripts(self.redis, Keys(PREFIX))
        self.keys = self.scripts.keys.event(EVENT)
        self.forget_everything()
        self.now = START_MS
        self.pg = {tier: PgTier(total=6) for tier in TIERS}
        self.history: dict[str, list[PgTier]] = {tier: [dataclasses.replace(self.pg[tier])] for tier in TIERS}
        self.loaded: dict[str, int] = {}  # tier -> the `total` Redis has (copied at load)
        self.sold: dict[str, RedisSold] = {}  # tier -> what Redis has counted
        self.racy: set[str] = set()  # a count installed while a committed part was unapplied
        self.parts: dict[str, Part] = {}
        self.lowered: set[str] = set()  # tiers whose total an admin lowered below what was out
        self.last_reserve: tuple | None = None
        for tier in TIERS:
            self.load(tier)

    def teardown(self) -> None:
        self.forget_everything()
        self.run(self.redis.aclose())
        self.loop.close()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def forget_everything(self) -> None:
        """Delete every key this test writes (named, not scanned for: the server may hold
        many other keys)."""
        ev = self.keys
        self.run(
            self.redis.delete(ev.inventory, ev.carts, ev.expiries, ev.checkouts, self.scripts.keys.active_events())
        )

    # -- the model's own arithmetic ------------------------------------------------------------

    def held(self, tier: str) -> int:
        return sum(part.lines.get(tier, 0) for part in self.parts.values())

    def available(self, tier: str) -> int:
        return max(0, self.loaded[tier] - self.sold[tier].value() - self.held(tier))

    def unapplied(self, tier: str) -> int:
        """Seats of the tier in parts whose order committed but which are not applied yet."""
        return sum(d for p in self.parts.values() for t, _, d in p.committed or () if t == tier)

    def release_expired(self) -> None:
        for cart in [c for c, p in self.parts.items() if p.state == "open" and p.expiry_ms <= self.now]:
            del self.parts[cart]

    def load(self, tier: str) -> None:
        """What TierCatalog.load does: install the PostgreSQL row by the version rule."""
        row = self.pg[tier]
        self.install_row(tier, row)
        self.loaded[tier] = row.total
        if tier in self.sold:
            self.install_sold(tier, row.sold, row.sold_version)
        else:
            self.sold[tier] = RedisSold(row.sold, row.sold_version)

    def install_sold(self, tier: str, sold: int, version: int, repair: bool = False) -> None:
        """An absolute pair from PostgreSQL; it counts an unapplied committed part's seats
        twice (sold and held) when it is newer than that part's change."""
        counted = self.sold[tier]
        before = (counted.sold, counted.version)
        counted.install(sold, version, repair)
        unapplied = [v for p in self.parts.values() for t, v, _ in p.committed or () if t == tier]
        if (counted.sold, counted.version) != before and any(v <= version for v in unapplied):
            self.racy.add(tier)

    def install_row(self, tier: str, row: PgTier) -> None:
        self.run(
            self.scripts.tier_load(
                event_id=EVENT,
                now_ms=self.now,
                tier=TierFields(
                    tier_id=tier,
                    version=row.version,
                    total=row.total,
                    max_per_order=MAX_PER_ORDER,
                    price=1000,
                    currency="VND",
                    name=tier,
                    sales_start_ms=0,
                    sales_end_ms=0,
                    active=True,
                    sold=row.sold,
                    sold_version=row.sold_version,
                ),
            )
        )

    def remember(self, tier: str) -> None:
        """Keep the row as it is now: a late writer may install it after newer ones."""
        self.history[tier].append(dataclasses.replace(self.pg[tier]))

    # -- cart changes ------------------------------------------------------------------------------

    def expected_reserve(self, cart: str, tier: str, quantity: int, mode: str, request_id: str):
        """(result, quantity now) as reserve.lua must answer; applies it to the model."""
        self.release_expired()
        part = self.parts.get(cart)
        if part is not None and part.state == "checkout":
            return "checkout-in-progress", None
        if part is not None and part.request_id == request_id:
            return "ok", part.lines.get(tier, 0)
        current = part.lines.get(tier, 0) if part else 0
        wanted = current + quantity if mode == "add" else quantity
        delta = wanted - current
        if delta > 0:
            if wanted > MAX_PER_ORDER:
                return "limit-exceeded", None
            if current == 0 and part is not None and len(part.lines) >= MAX_LINES:
                return "limit-exceeded", None
            if delta > self.available(tier):
                return "sold-out", None
        part = part or Part(state="open", expiry_ms=0, order_id=part.order_id if part else "")
        if wanted > 0:
            part.lines[tier] = wanted
        else:
            part.lines.pop(tier, None)
        if not part.lines:
            self.parts.pop(cart, None)
            return "ok", 0
        part.expiry_ms, part.request_id = self.now + TTL_MS, request_id
        self.parts[cart] = part
        return "ok", wanted

    def reserve(self, cart: str, tier: str, quantity: int, mode: str, request_id: str) -> None:
        def call():
            reply, *_ = self.run(
                self.scripts.reserve(
                    event_id=EVENT,
                    cart_id=cart,
                    tier_id=tier,
                    quantity=quantity,
                    mode=mode,
                    now_ms=self.now,
                    ttl_ms=TTL_MS,
                    max_lines=MAX_LINES,
                    sweep_limit=SWEEP_LIMIT,
                    request_id=request_id,
                    meta_fields={},
                    meta_ttl_ms=TTL_MS,
                )
            )
            return reply

        if tier not in self.loaded:  # after a flush: "not-loaded", then load and retry, as CartService does
            self.release_expired()
            assert call().result == "not-loaded"
            self.load(tier)
        expected = self.expected_reserve(cart, tier, quantity, mode, request_id)
        reply = call()
        assert reply.result == expected[0], (reply, expected)
        if reply.result == "ok":
            assert reply.quantity == expected[1], (reply, expected)
        self.last_reserve = (cart, tier, quantity, mode, request_id)

    @initialize(
        holds=st.lists(
            st.tuples(st.sampled_from(CARTS), st.sampled_from(TIERS), st.integers(1, 3)), min_size=1, max_size=4
        )
    )
    def some_carts_hold_seats(self, holds):
        for cart, tier, quantity in holds:
            self.reserve(cart, tier, quantity, "add", uuid.uuid4().hex)

    # Hypothesis tries rules with fewer arguments first: the common steps take one, the
    # destructive ones (clear, flush) more.
    @rule(
        call=st.tuples(
            st.sampled_from(CARTS),
            st.sampled_from(TIERS),
            st.integers(0, 5),
            st.sampled_from(["add", "set"]),
            st.sampled_from([0, 0, 1_000, TTL_MS - 1, TTL_MS]),
        )
    )
    def change(self, call):
        """A buyer's add or set, some time after the last step (a change moves the expiry)."""
        cart, tier, quantity, mode, after_ms = call
        self.now += after_ms
        self.reserve(cart, tier, quantity, mode, uuid.uuid4().hex)

    @precondition(lambda self: self.last_reserve is not None)
    @rule(times=st.integers(1, 2))
    def retry_the_last_change(self, times):
        """The same call again (a client or proxy retry): changes nothing if nothing came between."""
        for _ in range(times):
            self.reserve(*self.last_reserve)

    @rule(cart=st.sampled_from(CARTS), tier=st.sampled_from(TIERS))
    def remove(self, cart, tier):
        part = self.parts.get(cart)
        reply = self.run(self.scripts.remove_line(event_id=EVENT, cart_id=cart, tier_id=tier, now_ms=self.now))
        if part is None:
            assert (reply.result, reply.removed) == ("ok", 0)
        elif part.state == "checkout":
            assert reply.result == "checkout-in-progress"
        elif part.expiry_ms <= self.now:
            assert (reply.result, reply.removed) == ("ok", 0)
            del self.parts[cart]
        else:
            assert (reply.result, reply.removed) == ("ok", part.lines.get(tier, 0))
            if tier in part.lines:
                del part.lines[tier]
                part.request_id = ""
            if not part.lines:
                del self.parts[cart]

    @rule(cart=st.sampled_from(CARTS), twice=st.booleans())
    def clear(self, cart, twice):
        part = self.parts.get(cart)
        for attempt in range(2 if twice else 1):  # the second changes nothing
            reply = self.run(self.scripts.clear_part(event_id=EVENT, cart_id=cart))
            if part is not None and part.state == "checkout":
                assert reply.result == "checkout-in-progress"
                continue
            released = sum(part.lines.values()) if part and attempt == 0 else 0
            assert (reply.result, reply.released) == ("ok", released)
            self.parts.pop(cart, None)

    # -- time, the worker, the admin, and Redis losing everything ---------------------------------

    @rule(ms=st.sampled_from([1, 1_000, 4_000, TTL_MS - 1, TTL_MS, TTL_MS + 1, 3 * TTL_MS]))
    def time_passes(self, ms):
        self.now += ms

    @rule(limit=st.sampled_from([1, 2, SWEEP_LIMIT]), later_ms=st.sampled_from([0, TTL_MS]))
    def sweep(self, limit, later_ms):
        """The worker's bounded sweep: the `limit` earliest expired parts go (by expiry, then id)."""
        self.now += later_ms
        expired = sorted(
            (p.expiry_ms, c) for c, p in self.parts.items() if p.state == "open" and p.expiry_ms <= self.now
        )
        reply = self.run(self.scripts.sweep(event_id=EVENT, now_ms=self.now, limit=limit))
        assert (reply.released, reply.due) == (min(limit, len(expired)), max(0, len(expired) - limit))
        for _, cart in expired[:limit]:
            del self.parts[cart]

    @rule(max_parts=st.sampled_from([1, 1000]), stale=st.booleans())
    def reconcile(self, max_parts, stale):
        """The worker's reconcile: PostgreSQL's pairs as read now, or before the last change
        (a read taken before a commit: never lowers sold), then the parts in checkout whose
        order committed, applied in the same script."""
        rows = {
            t: (self.history[t][-2] if stale and len(self.history[t]) > 1 else row)
            for t, row in self.pg.items()
            if t in self.loaded
        }
        pairs = [(t, row.sold, row.sold_version) for t, row in rows.items()]
        committed = {c: p for c, p in self.parts.items() if p.committed is not None}
        applied = [
            CommittedPart(cart_id=c, order_id=p.order_id, changes=p.committed) for c, p in sorted(committed.items())
        ]
        reply = self.run(self.scripts.reconcile(event_id=EVENT, pairs=pairs, max_parts=max_parts, applied=applied))
        assert reply.applied == len(applied)
        for cart, part in committed.items():
            self.count_changes(part.committed)
            del self.parts[cart]
        for tier, sold, version in pairs:
            self.sold[tier].install(sold, version, repair=True)
        assert reply.counted == (len(self.parts) <= max_parts)
        for tier in self.loaded:
            # The scripts kept held exact: the recount, when it runs, finds nothing to correct.
            assert reply.tiers[tier].held_before == reply.tiers[tier].held == self.held(tier), reply

    def count_changes(self, changes) -> None:
        for tier, version, delta in changes:
            if tier in self.sold:
                self.sold[tier].count(version, delta)

    @rule(tier=st.sampled_from(TIERS), total=st.integers(0, 12))
    def admin_sets_total(self, tier, total):
        row = self.pg[tier]
        total = max(total, row.sold)  # PostgreSQL's CHECK: never below quantity_sold
        row.total, row.version = total, row.version + 1
        self.remember(tier)
        if tier in self.loaded:
            self.load(tier)
            if self.sold[tier].value() + self.held(tier) > total:
                self.lowered.add(tier)

    @rule(how=st.sampled_from(["flush", "restart"]), reload=st.booleans(), down_ms=st.sampled_from([0, 2_000]))
    def redis_loses_everything(self, how, reload, down_ms):
        """A flush or a restart without persistence: carts go; tiers reload on first use, or
        at once (the reconciler, an admin sync)."""
        self.now += down_ms
        self.forget_everything()
        self.parts.clear()
        self.loaded.clear()
        self.sold.clear()
        self.last_reserve = None
        if reload:
            for tier in TIERS:
                self.load(tier)

    # -- checkout: begin, then commit in "PostgreSQL" and apply, or abort -----------------------------

    def pick(self, state: str, index: int) -> str | None:
        """One of the carts whose part is in ``state`` (by index: no draw depends on the state)."""
        carts = sorted(c for c, p in self.parts.items() if p.state == state)
        return carts[index % len(carts)] if carts else None

    @rule(choice=st.tuples(st.sampled_from(CARTS), st.booleans(), st.integers(0, 2)))
    def checkout_begin(self, choice):
        """Mostly a cart with an open part; sometimes any cart (empty, expired)."""
        cart, open_one, index = choice
        cart = (self.pick("open", index) if open_one else None) or cart
        part = self.parts.get(cart)
        proposed = str(uuid.uuid4())
        reply = self.run(
            self.scripts.checkout_begin(
                cart_id=cart,
                event_ids=[EVENT],
                order_id=proposed,
                replace="",
                now_ms=self.now,
                deadline_ms=self.now + DEADLINE_MS,
            )
        )[EVENT]
        if part is None:
            assert reply.result == "empty"
        elif part.state == "open" and part.expiry_ms <= self.now:
            assert reply.result == "expired"
            del self.parts[cart]
        else:
            assert reply.result == "ok" and {t: line.quantity for t, line in reply.lines.items()} == part.lines
            if part.state == "open":
                part.hold_expiry_ms, part.expiry_ms = part.expiry_ms, self.now + DEADLINE_MS
            else:
                part.expiry_ms = max(part.expiry_ms, self.now + DEADLINE_MS)
            part.state, part.order_id = "checkout", part.order_id or proposed
            assert reply.order_id == part.order_id

    def pick_checkout(self, index: int, committed: bool) -> str | None:
        carts = sorted(
            c for c, p in self.parts.items() if p.state == "checkout" and (p.committed is not None) == committed
        )
        return carts[index % len(carts)] if carts else None

    @precondition(lambda self: any(p.state == "checkout" and p.committed is None for p in self.parts.values()))
    @rule(index=st.integers(0, 2))
    def checkout_commits(self, index):
        """The transaction: a guarded quantity_sold update per tier, each bumping sold_version."""
        cart = self.pick_checkout(index, committed=False)
        part = self.parts[cart]
        if any(self.pg[t].sold + q > self.pg[t].total for t, q in part.lines.items()):
            return  # refused in PostgreSQL (an admin lowered the total): checkout_abort follows
        part.committed = []
        for tier, quantity in sorted(part.lines.items()):
            row = self.pg[tier]
            row.sold, row.sold_version = row.sold + quantity, row.sold_version + 1
            part.committed.append((tier, row.sold_version, quantity))
            self.remember(tier)

    @precondition(lambda self: any(p.committed is not None for p in self.parts.values()))
    @rule(index=st.integers(0, 2), twice=st.booleans())
    def checkout_applies(self, index, twice):
        """The apply of one committed part, in any order among them (a later checkout may
        apply first); a second apply counts nothing again."""
        cart = self.pick_checkout(index, committed=True)
        part = self.parts[cart]
        for attempt in range(2 if twice else 1):
            reply = self.run(
                self.scripts.checkout_apply(cart_id=cart, order_id=part.order_id, changes={EVENT: part.committed})
            )
            assert reply[EVENT].result == ("ok" if attempt == 0 else "gone")
        del self.parts[cart]
        self.count_changes(part.committed)

    @precondition(lambda self: any(p.state == "checkout" and p.committed is None for p in self.parts.values()))
    @rule(index=st.integers(0, 2))
    def checkout_aborts(self, index):
        """Its order certainly did not commit: back to open, holds kept, naming no order."""
        cart = self.pick_checkout(index, committed=False)
        part = self.parts[cart]
        reply = self.run(
            self.scripts.checkout_abort(
                cart_id=cart, order_id=part.order_id, event_ids=[EVENT], now_ms=self.now, grace_ms=GRACE_MS
            )
        )
        assert reply[EVENT].result == "ok"
        part.state, part.expiry_ms = "open", max(part.hold_expiry_ms, self.now + GRACE_MS)
        part.hold_expiry_ms, part.order_id = 0, ""

    @precondition(lambda self: bool(self.parts))
    @rule(index=st.integers(0, 2))
    def stale_apply_is_ignored(self, index):
        """A late apply naming an order the part does not name (recovery racing a retry):
        answers "gone" and changes nothing."""
        cart = sorted(self.parts)[index % len(self.parts)]
        reply = self.run(self.scripts.checkout_apply(cart_id=cart, order_id=str(uuid.uuid4()), changes={EVENT: []}))
        assert reply[EVENT].result == "gone"

    @rule(writer=st.tuples(st.sampled_from(TIERS), st.integers(1, 3), st.sampled_from(["tier_load", "install_sold"])))
    def late_writer(self, writer):
        """A loader or installer that read PostgreSQL before newer changes and writes now:
        the version rule ignores it (while Redis has the tier; see docs/security.md for a
        flush in between)."""
        tier, age, how = writer
        history = self.history[tier]
        if tier not in self.loaded or len(history) < 2:
            return
        old = history[-1 - min(age, len(history) - 1)]
        if how == "tier_load":
            self.install_row(tier, old)
        else:
            self.run(self.scripts.install_sold(event_id=EVENT, pairs=[(tier, old.sold, old.sold_version)]))
        self.install_sold(tier, old.sold, old.sold_version)

    # -- what must hold after every step ------------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self):
        pipe = self.redis.pipeline(transaction=True)  # one consistent snapshot, one round trip
        pipe.hgetall(self.keys.inventory)
        pipe.hgetall(self.keys.carts)
        pipe.zrange(self.keys.expiries, 0, -1, withscores=True)
        pipe.zrange(self.keys.checkouts, 0, -1, withscores=True)
        inventory, stored, expiries, checkouts = self.run(pipe.execute())
        expiries, checkouts = dict(expiries), dict(checkouts)

        parts = {cart.decode(): json.loads(raw) for cart, raw in stored.items()}
        assert set(parts) == set(self.parts), (parts, self.parts)
        for cart, part in self.parts.items():
            got = parts[cart]
            # A confirmed hold stays exactly as confirmed until expiry, removal or checkout.
            assert (got["s"], got.get("l") or {}, int(got["x"]), got.get("o") or "") == (
                part.state,
                part.lines,
                part.expiry_ms,
                part.order_id,
            ), (cart, got, part)
            zset = expiries if part.state == "open" else checkouts
            assert zset.get(cart.encode()) == part.expiry_ms
        assert len(expiries) + len(checkouts) == len(self.parts)

        for tier, total in self.loaded.items():

            def counter(name: str) -> int:  # called in this iteration only
                return int(inventory[f"{tier}:{name}".encode()])  # noqa: B023

            held, sold = counter("held"), counter("sold")
            assert held == self.held(tier), (tier, held, self.parts)
            assert sold == self.sold[tier].value() and counter("total") == total, (tier, sold, self.sold[tier])
            assert int(inventory.get(f"{tier}:sold_v".encode(), -1)) == self.sold[tier].have()
            # No seat counted twice, none granted that PostgreSQL sold.
            uncommitted = sum(
                q for p in self.parts.values() if p.committed is None for t, q in p.lines.items() if t == tier
            )
            truth = self.pg[tier].sold + uncommitted
            if not self.unapplied(tier):
                self.racy.discard(tier)
            assert sold + held >= truth, (tier, sold, held, truth)
            assert sold + held == truth or tier in self.racy, (tier, sold, held, truth, self.parts)
            if sold + held <= total:
                self.lowered.discard(tier)
            assert sold + held <= total or tier in self.lowered, (tier, sold, held, total)
        for tier in TIERS:
            assert self.pg[tier].sold <= self.pg[tier].total  # never oversold where it counts


def test_the_reservation_engine_keeps_its_invariants(servers):
    run_state_machine_as_test(
        lambda: ReservationModel(servers.redis_url),
        settings=settings(
            max_examples=80,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
