"""Cleaning up under a prefix removes only that prefix's keys, glob characters and all."""

from __future__ import annotations

from devtools.keyspace import unlink_prefix
from tests.conftest import TEST_KEY_PREFIX

K = TEST_KEY_PREFIX + "keyspace:"


async def test_unlink_prefix_removes_only_keys_under_the_prefix(redis):
    for key, value in {K + "a*b": 1, K + "a*c": 2, K + "ab": 3}.items():  # on a cluster, in three slots
        await redis.set(key, value)
    assert await unlink_prefix(redis, K + "a*") == 2
    assert await redis.get(K + "ab") == b"3"
    await redis.delete(K + "ab")
