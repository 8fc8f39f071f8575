"""Fixtures of the Redis Cluster tests: the usual fixtures pointed at the run's local
3-master cluster (the root ``redis_cluster``, started once a session and only when a test
asks for it), whichever ``--redis`` the run has.

Here ``settings`` names the cluster (``REDIS_CLUSTER=1``, ``REDIS_URL`` = one master) and
the run's test database, with arq's queue on the run's standalone test Redis
(``ARQ_REDIS_URL``: arq cannot use a cluster); ``redis`` is a cluster client, so the root
``clean_state`` clears this run's keys on every master.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

from devtools.embedded import ResolvedServers
from devtools.embedded_cluster import EmbeddedCluster
from service.keys import Keys
from service.settings import Settings
from service.wiring import Services
from tests.api import api_client, running_services
from tests.conftest import TEST_KEY_PREFIX, cluster_env, settings_on


@pytest.fixture(scope="session")
def settings(redis_cluster: EmbeddedCluster, servers: ResolvedServers, database_url: str) -> Settings:
    """Settings on the cluster, with this run's key prefix, database and fixed secrets."""
    return settings_on(cluster_env(redis_cluster, servers), database_url)


@pytest_asyncio.fixture(loop_scope="session")
async def redis(redis_cluster: EmbeddedCluster) -> AsyncIterator[RedisCluster]:
    """A cluster client (bytes in and out), new for each test."""
    client = RedisCluster.from_url(redis_cluster.url, decode_responses=False)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings, clean_state):
    """The app in process, on the cluster, from nothing."""
    async with api_client(settings) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, db_pool, clean_state) -> AsyncIterator[Services]:
    """What the API and the worker build, on the cluster."""
    async with running_services(settings, db_pool) as built:
        yield built


@pytest_asyncio.fixture(loop_scope="session")
async def masters(redis_cluster: EmbeddedCluster) -> AsyncIterator[dict[int, Redis]]:
    """A plain client of each master, by port: to ask one node what it holds."""
    clients = {port: Redis(port=port) for port in redis_cluster.ports}
    yield clients
    for client in clients.values():
        await client.aclose()


def event_on(cluster: EmbeddedCluster, port: int, *, avoid: tuple[str, ...] = ()) -> str:
    """An event id whose keys (``{e:<id>}``) live on the master at ``port``."""
    import uuid

    keys = Keys(TEST_KEY_PREFIX)
    while True:
        event_id = str(uuid.uuid4())
        if event_id not in avoid and cluster.port_of_slot(slot_of(keys.event(event_id).inventory)) == port:
            return event_id


def slot_of(key: str) -> int:
    return key_slot(key.encode())
