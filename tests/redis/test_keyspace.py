"""Cleaning up under a prefix removes only that prefix's keys, glob characters and all."""

from __future__ import annotations

from devtools.keyspace import unlink_prefix
from tests.conftest import TEST_KEY_PREFIX

K = TEST_KEY_PREFIX + "keyspace:"


async def test_unlink_prefix_removes_only_keys_under_the_prefix(redis):
    await redis.mset({K + "a*b": 1, K + "a*c": 2, K + "ab": 3})
    assert await unlink_prefix(redis, K + "a*") == 2
    assert await redis.get(K + "ab") == b"3"
    await redis.delete(K + "ab")
