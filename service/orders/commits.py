"""How a write of orders can end, as the checkout must know it (writer.py, group_commit.py).

- it returns: committed, and answered;
- PostgreSQL refused the write itself (``refused_by_postgres``): certainly not committed;
- CommitUnanswered: the COMMIT was sent and no answer said how it ended; the order's outcome
  is looked up (outcome.py).
"""

from __future__ import annotations

from typing import Protocol

import asyncpg

from service.orders import store

__all__ = ["CommitUnanswered", "CommitWatch", "refused_by_postgres"]


class CommitUnanswered(Exception):
    """The COMMIT was sent and no answer said how it ended."""


class CommitWatch(Protocol):
    """Who must know when an order may have committed (the checkout's parts, parts.py)."""

    def committing(self, order_id: str) -> None:
        """The order's COMMIT is about to be sent: from now on it may be committed."""

    def refused(self, order_id: str) -> None:
        """The order's write never committed after all (PostgreSQL refused it, or it was
        never sent)."""


# SQLSTATE classes that can come after a commit took place: connection exceptions,
# operator intervention (shutdown, termination, a cancel), system and internal errors.
_UNKNOWN_OUTCOME_CLASSES = frozenset({"08", "57", "58", "XX"})


def refused_by_postgres(exc: BaseException) -> bool:
    """PostgreSQL answered the order's statement with an error of the statement itself (a
    guard, a unique code, bad data): the statement and its transaction did not commit."""
    if isinstance(exc, store.TierGuardFailed):
        return True
    return isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "XX")[:2] not in _UNKNOWN_OUTCOME_CLASSES
