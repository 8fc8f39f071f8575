"""Which events a cart has parts in, as this process last saw: a guess that lets a cart
change or view read every part of the cart in the same round trip."""

from __future__ import annotations

import itertools


class EventHints:
    """The events each cart's meta named when this process last saw it.

    Only a guess, used to read the cart's other parts in the same round trip as a change
    or a view (docs/design.md: one round trip per cart change). A wrong guess is never wrong
    data: events the meta no longer names are ignored, and ones it names that were not
    guessed are read in a second trip. Bounded: past ``size`` carts the oldest tenth is
    forgotten.
    """

    def __init__(self, size: int = 50_000) -> None:
        self._events: dict[str, tuple[str, ...]] = {}
        self._size = size

    def get(self, cart_id: str) -> tuple[str, ...]:
        return self._events.get(cart_id, ())

    def remember(self, cart_id: str, events: list[str]) -> None:
        known = self._events
        if len(known) >= self._size and cart_id not in known:
            for old in list(itertools.islice(known, self._size // 10 or 1)):
                del known[old]
        known[cart_id] = tuple(events)
