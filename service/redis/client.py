"""The process's Redis client: standalone or Cluster, with bounded timeouts.

The client never retries a command on timeout by itself: a timeout does not say whether
a script ran, and only the caller knows whether its call is safe to send twice.
"""

from __future__ import annotations

import socket
from typing import Any

import hiredis
from redis.asyncio import Connection, Redis, RedisCluster
from redis.asyncio.cluster import ClusterPipeline
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    SlotNotCoveredError,
)
from redis.retry import Retry

from service.settings import Settings

# What a cluster client may send again after reloading the cluster's layout: refusals that
# prove the command did not run (the cluster is down, the slot has no owner) and a lost
# connection, which is how a failed-over or moved master shows. redis-py also retries
# TimeoutError, three times by default; we do not (see the module's docstring).
CLUSTER_RETRY_ON = (ConnectionError, ClusterDownError, SlotNotCoveredError)


class _ClusterPipeline(ClusterPipeline):
    # redis-py types the attribute as the exact tuple of its own default.
    ERRORS_ALLOW_RETRY = CLUSTER_RETRY_ON  # type: ignore[assignment]


class ClusterClient(RedisCluster):
    """redis-py's RedisCluster, without its retries after a timeout, whose PING (the
    readiness probe) asks the masters only."""

    ERRORS_ALLOW_RETRY = CLUSTER_RETRY_ON  # type: ignore[assignment]  # (as above)

    async def ping(self, **kwargs: Any) -> bool:
        # redis-py pings every node, replicas too; the service uses masters only, so a
        # replica that is down must not make every API process unready at once.
        kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
        pong: bool = await super().ping(**kwargs)
        return pong

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction or shard_hint:
            raise RedisClusterException("a cluster pipeline is never transactional")
        # abstract: redis-py's CommandsProtocol declares a connection_pool, which no cluster class has.
        return _ClusterPipeline(self)  # type: ignore[abstract]


RedisClient = Redis | RedisCluster

# TCP keepalive on standalone connections: the API's calls share one long-lived connection
# (service/redis/autopipeline.py), which no idle check guards as redis-py's pool does. A
# probe after 15 idle seconds keeps a NAT's or load balancer's idle timer from dropping it
# unseen, and a peer gone for good is noticed within about 30 s (Linux names; elsewhere
# the system's defaults apply).
KEEPALIVE = {
    option: value
    for option, value in (
        (getattr(socket, "TCP_KEEPIDLE", None), 15),
        (getattr(socket, "TCP_KEEPINTVL", None), 5),
        (getattr(socket, "TCP_KEEPCNT", None), 3),
    )
    if option is not None
}


class HiredisPackingConnection(Connection):
    """redis-py's asyncio connection packs commands in pure Python (tens of microseconds
    for a script call with a dozen arguments); hiredis packs them in C. Replies were
    already parsed by hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD" is two words
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


def create_redis(settings: Settings) -> RedisClient:
    timeout = settings.redis_timeout_seconds
    common: dict[str, Any] = dict(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
        health_check_interval=30,
    )
    if settings.redis_cluster:
        # REDIS_URL names any one master; the client learns the others from it. Its
        # max_connections is per node. (RedisCluster takes no retry_on_timeout: its own
        # retries are set by ClusterClient.)
        cluster: ClusterClient = ClusterClient.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **common
        )
        return cluster
    standalone: Redis = Redis.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        retry_on_timeout=False,
        connection_class=HiredisPackingConnection,
        socket_keepalive=True,
        socket_keepalive_options=KEEPALIVE,
        **common,
    )
    return standalone
