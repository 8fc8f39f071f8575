"""Typed replies of the Lua scripts (each script answers one JSON object)."""

from __future__ import annotations

import msgspec


class PartLine(msgspec.Struct, frozen=True):
    q: int  # quantity
    n: str  # tier name
    p: int  # unit price, minor units
    c: str  # currency
    m: int  # max per order


class ReserveReply(msgspec.Struct, frozen=True):
    r: str
    q: int = 0
    prev: int = 0
    x: int = 0
    available: int = 0
    lines: dict[str, PartLine] = {}
    limit: int = 0
    what: str = ""


class RemoveReply(msgspec.Struct, frozen=True):
    r: str
    removed: int = 0
    lines: dict[str, PartLine] = {}


class ClearReply(msgspec.Struct, frozen=True):
    r: str
    released: int = 0


class ViewReply(msgspec.Struct, frozen=True):
    r: str
    s: str = ""  # "", "open" or "checkout"
    x: int = 0
    o: str = ""
    lines: dict[str, PartLine] = {}


class CappedLine(msgspec.Struct, frozen=True):
    t: str  # tier id
    requested: int  # the user's line plus the guest's
    kept: int  # what the merged line holds


class MergeReply(msgspec.Struct, frozen=True):
    r: str  # "ok", "guest-checkout" or "user-checkout"
    moved: int = 0
    released: int = 0
    x: int = 0
    capped: list[CappedLine] = []
    lines: dict[str, PartLine] = {}


class SweepReply(msgspec.Struct, frozen=True):
    r: str
    released: int = 0
    due: int = 0
    parts: int = -1  # parts of the event left (open or in checkout); 0: it may be finished


class RetireReply(msgspec.Struct, frozen=True):
    r: str  # "retired", "gone", "parts", "selling" or "recent" (retire_event.lua)
    tiers: int = 0


class RecountedTier(msgspec.Struct, frozen=True):
    held_before: int
    held: int


class RecountReply(msgspec.Struct, frozen=True):
    r: str  # "more", "done", "superseded" or "not-loaded" (recount_held.lua)
    cursor: str = "0"  # more: the cursor of the next call
    seen: int = 0  # parts read by this call
    tiers: dict[str, RecountedTier] = {}  # done: each tier's held before and as set


class TierLoadReply(msgspec.Struct, frozen=True):
    r: str
    total: int = 0
    sold: int = 0
    held: int = 0
    v: int = 0
    sold_v: int = 0


class InstallReply(msgspec.Struct, frozen=True):
    r: str
    installed: int = 0


class TierCounters(msgspec.Struct, frozen=True, rename={"end_ms": "end", "start_ms": "start"}):
    total: int
    sold: int
    held: int
    active: bool
    start_ms: int = 0
    end_ms: int = 0

    @property
    def available(self) -> int:
        return max(0, self.total - self.sold - self.held)


class InventoryReply(msgspec.Struct, frozen=True):
    r: str
    tiers: dict[str, TierCounters] = {}


class ReconciledTier(msgspec.Struct, frozen=True):
    held_before: int
    held: int
    sold_before: int
    sold_v_before: int  # -1: the tier had no sold version
    sold: int
    sold_v: int
    checkout: int  # seats of the tier in parts that name an order (a commit may be in flight); -1: not counted
    v: int  # the definition version Redis has


class ReconcileReply(msgspec.Struct, frozen=True):
    r: str
    counted: bool = True  # False: the event had too many parts to recount held this time
    parts: int = 0
    applied: int = 0  # parts of committed orders applied by this call
    tiers: dict[str, ReconciledTier] = {}
    missing: list[str] = []


class RateLimitReply(msgspec.Struct, frozen=True):
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_ms: int
    r: str = "ok"


class BeginReply(msgspec.Struct, frozen=True):
    r: str  # "ok", "empty", "expired" or "not-loaded"
    o: str = ""  # the order id the part names now
    ox: int = 0  # the part's hold expiry before the checkout (ms)
    lines: dict[str, PartLine] = {}
    tiers: list[str] = []  # not-loaded: tiers to load from PostgreSQL


class ApplyReply(msgspec.Struct, frozen=True):
    r: str  # "ok" or "gone"
    seats: int = 0  # the part's hold released
    counted: int = 0  # changes of sold counted now (0: counted before)


class CountReply(msgspec.Struct, frozen=True):
    r: str
    counted: int = 0


class CommittedPart(msgspec.Struct, frozen=True):
    """A part of a committed order for reconcile.lua to apply: cart, order, and the order's
    (tier, sold_version, delta) changes in the event."""

    c: str
    o: str
    s: list[tuple[str, int, int]]


class AbortReply(msgspec.Struct, frozen=True):
    r: str  # "ok", "open", "gone" or "other-order"
    x: int = 0


class UnlockReply(msgspec.Struct, frozen=True):
    r: str  # "ok" or "not-held"


class StoredPart(msgspec.Struct, frozen=True):
    """A part as the `carts` hash stores it (see lua/include/parts.lua), read as is."""

    s: str
    o: str = ""
    x: int = 0
    l: dict[str, int] = {}  # noqa: E741 (the stored field's name)


class DueCheckout(msgspec.Struct, frozen=True):
    """A cart whose part has passed its checkout deadline; part is None when it is gone."""

    cart_id: str
    deadline_ms: int
    part: StoredPart | None
