"""Typed replies of the Lua scripts: one JSON object each, one vocabulary.

The wire keeps the scripts' short keys (``r``, ``x``, ``o``...: cjson output the hot path
pays for); ``rename`` gives the Python side readable names. ``result`` is a ``Literal`` of
exactly the codes the script's header lists (tests/lua/test_key_slots.py checks the two
agree), so a code nobody handles fails at the decode, not three calls later. What a refusal
code means to the buyer is decided in one table: ``service/redis/refusals.py``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ReserveResult = Literal[
    "ok", "not-loaded", "sold-out", "limit-exceeded", "sale-not-open", "sale-closed", "inactive", "checkout-in-progress"
]
ChangeResult = Literal["ok", "checkout-in-progress"]
MergeResult = Literal["ok", "guest-checkout", "user-checkout"]
BeginResult = Literal["ok", "empty", "expired", "not-loaded"]
ApplyResult = Literal["ok", "gone"]
AbortResult = Literal["ok", "open", "gone", "other-order"]
UnlockResult = Literal["ok", "not-held"]
RecountResult = Literal["more", "done", "superseded", "not-loaded"]
RetireResult = Literal["retired", "gone", "parts", "selling", "recent"]
Ok = Literal["ok"]


class PartLine(
    msgspec.Struct,
    frozen=True,
    rename={"quantity": "q", "name": "n", "price": "p", "currency": "c", "max_per_order": "m"},
):
    """A line of a part, with its tier's catalogue fields (parts.lua's part_lines)."""

    quantity: int
    name: str
    price: int  # unit price, minor units
    currency: str
    max_per_order: int


class ReserveReply(
    msgspec.Struct, frozen=True, rename={"result": "r", "quantity": "q", "previous": "prev", "expiry_ms": "x"}
):
    result: ReserveResult
    quantity: int = 0  # the line's quantity now
    previous: int = 0  # before this call
    expiry_ms: int = 0  # the part's expiry; 0 when it is gone
    available: int = 0
    lines: dict[str, PartLine] = {}
    limit: int = 0  # limit-exceeded: the limit
    what: str = ""  # limit-exceeded: "per-order" or "lines"


class RemoveReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: ChangeResult
    removed: int = 0
    lines: dict[str, PartLine] = {}


class ClearReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: ChangeResult
    released: int = 0


class ViewReply(msgspec.Struct, frozen=True, rename={"result": "r", "state": "s", "expiry_ms": "x", "order_id": "o"}):
    result: Ok
    state: str = ""  # "", "open" or "checkout"
    expiry_ms: int = 0
    order_id: str = ""  # the order a part in checkout names
    lines: dict[str, PartLine] = {}


class CappedLine(msgspec.Struct, frozen=True, rename={"tier_id": "t"}):
    tier_id: str
    requested: int  # the user's line plus the guest's
    kept: int  # what the merged line holds


class MergeReply(msgspec.Struct, frozen=True, rename={"result": "r", "expiry_ms": "x"}):
    result: MergeResult
    moved: int = 0
    released: int = 0
    expiry_ms: int = 0
    capped: list[CappedLine] = []
    lines: dict[str, PartLine] = {}


class SweepReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: Ok
    released: int = 0
    due: int = 0
    parts: int = -1  # parts of the event left (open or in checkout); 0: it may be finished


class RetireReply(msgspec.Struct, frozen=True, rename={"result": "r", "tier_ids": "ids"}):
    result: RetireResult
    tiers: int = 0
    tier_ids: list[str] = msgspec.field(default_factory=list)  # "retired": the tiers the event had


class RecountedTier(msgspec.Struct, frozen=True):
    held_before: int
    held: int


class RecountReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: RecountResult
    cursor: str = "0"  # more: the cursor of the next call
    seen: int = 0  # parts read by this call
    tiers: dict[str, RecountedTier] = {}  # done: each tier's held before and as set


class TierLoadReply(msgspec.Struct, frozen=True, rename={"result": "r", "version": "v", "sold_version": "sold_v"}):
    result: Ok
    total: int = 0
    sold: int = 0
    held: int = 0
    version: int = 0
    sold_version: int = 0


class InstallReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: Ok
    installed: int = 0


class CountReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: Ok
    counted: int = 0


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


class InventoryReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: Ok
    tiers: dict[str, TierCounters] = {}


class ReconciledTier(
    msgspec.Struct,
    frozen=True,
    rename={"sold_version_before": "sold_v_before", "sold_version": "sold_v", "version": "v"},
):
    held_before: int
    held: int
    sold_before: int
    sold_version_before: int  # -1: the tier had no sold version
    sold: int
    sold_version: int
    checkout: int  # seats of the tier in parts that name an order (a commit may be in flight); -1: not counted
    version: int  # the definition version Redis has


class ReconcileReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: Ok
    counted: bool = True  # False: the event had too many parts to recount held this time
    parts: int = 0
    applied: int = 0  # parts of committed orders applied by this call
    tiers: dict[str, ReconciledTier] = {}
    missing: list[str] = []


class RateLimitReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_ms: int
    result: Ok = "ok"


class BeginReply(msgspec.Struct, frozen=True, rename={"result": "r", "order_id": "o", "hold_expiry_ms": "ox"}):
    result: BeginResult
    order_id: str = ""  # the order id the part names now
    hold_expiry_ms: int = 0  # the part's hold expiry before the checkout
    lines: dict[str, PartLine] = {}
    tiers: list[str] = []  # not-loaded: tiers to load from PostgreSQL


class ApplyReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: ApplyResult
    seats: int = 0  # the part's hold released
    counted: int = 0  # changes of sold counted now (0: counted before)


class AbortReply(msgspec.Struct, frozen=True, rename={"result": "r", "expiry_ms": "x"}):
    result: AbortResult
    expiry_ms: int = 0


class UnlockReply(msgspec.Struct, frozen=True, rename={"result": "r"}):
    result: UnlockResult


class CommittedPart(msgspec.Struct, frozen=True, rename={"cart_id": "c", "order_id": "o", "changes": "s"}):
    """A part of a committed order for reconcile.lua to apply: cart, order, and the order's
    (tier, sold_version, delta) changes in the event."""

    cart_id: str
    order_id: str
    changes: list[tuple[str, int, int]]


class StoredPart(msgspec.Struct, frozen=True, rename={"state": "s", "order_id": "o", "expiry_ms": "x", "lines": "l"}):
    """A part as the `carts` hash stores it (see lua/include/parts.lua), read as is."""

    state: str
    order_id: str = ""
    expiry_ms: int = 0
    lines: dict[str, int] = {}


class DueCheckout(msgspec.Struct, frozen=True):
    """A cart whose part has passed its checkout deadline; part is None when it is gone."""

    cart_id: str
    deadline_ms: int
    part: StoredPart | None


# The reply of each script (cart_touch answers HGETALL's array, not JSON).
REPLIES: dict[str, type[msgspec.Struct]] = {
    "reserve": ReserveReply,
    "remove_line": RemoveReply,
    "clear_part": ClearReply,
    "view": ViewReply,
    "merge_part": MergeReply,
    "sweep": SweepReply,
    "retire_event": RetireReply,
    "recount_held": RecountReply,
    "tier_load": TierLoadReply,
    "install_sold": InstallReply,
    "count_sold": CountReply,
    "inventory": InventoryReply,
    "reconcile": ReconcileReply,
    "rate_limit": RateLimitReply,
    "checkout_begin": BeginReply,
    "checkout_apply": ApplyReply,
    "checkout_abort": AbortReply,
    "checkout_unlock": UnlockReply,
}
