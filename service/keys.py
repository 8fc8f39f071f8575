"""Every Redis key name is built here, and only here.

All keys one script touches share one hash tag, so every script is atomic on a standalone
server and runs unchanged on Redis Cluster: the event's keys carry ``{e:<event_id>}``, a
cart's own keys carry ``{c:<cart_id>}``.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_KEYS_KEPT = 10_000  # events whose key names a process keeps built


@dataclass(frozen=True, slots=True)
class EventKeys:
    inventory: str  # hash: per tier T, T:total, T:sold, T:sold_v, T:held, ... (see lua/)
    carts: str  # hash: cart id -> the cart's part in this event (JSON)
    expiries: str  # sorted set: cart id scored by the part's expiry (ms), open parts only
    checkouts: str  # sorted set: cart id scored by its checkout deadline (ms), parts in checkout


class Keys:
    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain hash-tag braces")
        self.prefix = prefix
        # Built once per event (a frozen dataclass costs about 1 us to make, and every cart
        # change names its event's keys, and those of each other event it reads); a bounded
        # memo, emptied when full.
        self._events: dict[str, EventKeys] = {}

    def event(self, event_id: str) -> EventKeys:
        keys = self._events.get(event_id)
        if keys is None:
            if len(self._events) >= EVENT_KEYS_KEPT:
                self._events.clear()
            tag = f"{self.prefix}{{e:{event_id}}}"
            keys = EventKeys(inventory=f"{tag}:inv", carts=f"{tag}:carts", expiries=f"{tag}:exp", checkouts=f"{tag}:co")
            self._events[event_id] = keys
        return keys

    def cart_meta(self, cart_id: str) -> str:
        """Hash of cart-wide facts: events with a part, currency, promo code, owner."""
        return f"{self.prefix}{{c:{cart_id}}}:meta"

    def cart_checkout_lock(self, cart_id: str) -> str:
        return f"{self.prefix}{{c:{cart_id}}}:checkout"

    def tier_places(self) -> str:
        """Hash: tier id -> its event and currency (JSON), written by every tier load, so
        that a process started while PostgreSQL is down finds where a known tier lives."""
        return f"{self.prefix}tier-places"

    def active_events(self) -> str:
        """Sorted set of events with live parts (scored by last activity, ms): the
        worker's index of where to sweep, instead of scanning the keyspace."""
        return f"{self.prefix}active-events"

    def sweep_start(self) -> str:
        """String: the event the next sweep starts at (where the last one ran out of time)."""
        return f"{self.prefix}sweep-start"

    def rate_limit(self, scope: str, subject: str) -> str:
        return f"{self.prefix}{{rl:{scope}:{subject}}}"
