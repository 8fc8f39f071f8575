"""The process's Redis client: standalone or Cluster, with bounded timeouts.

The client never retries a command on timeout by itself: a timeout does not say whether
a script ran, and only the caller knows whether its call is safe to send twice.
"""

from __future__ import annotations

from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.settings import Settings

RedisClient = Redis | RedisCluster


def create_redis(settings: Settings) -> RedisClient:
    timeout = settings.redis_timeout_seconds
    common = dict(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
        health_check_interval=30,
    )
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **common
        )
    return Redis.from_url(settings.redis_url, max_connections=settings.redis_max_connections, **common)
