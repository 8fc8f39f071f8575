"""The one way to Redis for the Lua scripts: loading them, sending calls, NOSCRIPT.

Every script in ``lua/`` is read once (``--!include`` lines expanded) and loaded on first
use. ``run`` sends a list of calls in one pipeline (one round trip): ``Script`` calls go as
EVALSHA, ``Command`` calls (plain commands that belong to the same step, e.g. the meta's
HGETALL beside the views) as they are. A script the server does not know (a restart, a
flush, a failover) is loaded again and only the calls that failed with NOSCRIPT are sent
again, so a script that ran is never run twice. Any other error is raised after the whole
pipeline has answered. On Redis Cluster, SCRIPT LOAD reaches every master and pipelines
route each call by its first key (raw EVALSHA through ``execute_command``: redis-py's
cluster pipeline refuses its ``evalsha`` method).

Nothing else in the code calls EVALSHA; typed methods per script are in ``scripts.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import msgspec
from redis.asyncio import RedisCluster
from redis.exceptions import NoScriptError

from service.redis.client import RedisClient

if TYPE_CHECKING:
    from service.redis.autopipeline import AutoPipelined

LUA_DIR = Path(__file__).resolve().parent.parent.parent / "lua"
_INCLUDE = re.compile(r"^--!include\s+(\S+)\s*$", re.MULTILINE)

R = TypeVar("R")


def read_script(name: str) -> str:
    """The source of ``lua/<name>.lua`` with its ``--!include`` lines expanded."""
    source = (LUA_DIR / f"{name}.lua").read_text()
    return _INCLUDE.sub(lambda m: (LUA_DIR / "include" / m.group(1)).read_text(), source)


class Script(NamedTuple):
    """One EVALSHA of ``lua/<name>.lua``."""

    name: str
    keys: Sequence[str]
    args: Sequence[Any] = ()


class Command(NamedTuple):
    """A plain command sent in the same pipeline, e.g. ``Command(("HGETALL", key))``."""

    args: tuple[Any, ...]


Call = Script | Command


# redis-py's asyncio command methods are typed as returning ``Awaitable[T] | T`` (one mixin
# serves the sync and the asyncio client), which mypy refuses to await: the awaits below
# that say `type: ignore[misc]` are those.


class LuaGateway:
    def __init__(self, redis: RedisClient | AutoPipelined) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._source = {path.stem: read_script(path.stem) for path in sorted(LUA_DIR.glob("*.lua"))}
        self._sha: dict[str, str] = {}

    @property
    def names(self) -> list[str]:
        return list(self._source)

    @property
    def loaded(self) -> bool:
        """Every script was loaded once by this process (a server that lost them since gets
        them again on the next call's NOSCRIPT)."""
        return self._sha.keys() >= self._source.keys()

    async def load(self) -> None:
        for name, source in self._source.items():
            sha = await self.redis.script_load(source)
            self._sha[name] = sha.decode() if isinstance(sha, bytes) else sha

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        """Send ``calls`` in one round trip; their raw replies, in order."""
        # Once load() has run, every script is known: the per-call look only before that.
        if len(self._sha) < len(self._source) and any(
            isinstance(call, Script) and call.name not in self._sha for call in calls
        ):
            await self.load()
        if len(calls) == 1 and isinstance(calls[0], Script):
            return [await self._one(calls[0])]  # the common case, without a pipeline object
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            for i in pending:
                self._queue(pipe, calls[i])
            for i, result in zip(pending, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
            pending = [i for i in pending if isinstance(results[i], NoScriptError)]
            if not pending or attempt == 2:
                break
            await self.load()
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def run_one(self, script: Script, reply: type[R]) -> R:
        """One script call, its JSON reply decoded as ``reply``."""
        return msgspec.json.decode((await self.run([script]))[0], type=reply)

    async def _one(self, call: Script) -> Any:
        try:
            return await self.redis.evalsha(self._sha[call.name], len(call.keys), *call.keys, *call.args)  # type: ignore[misc]
        except NoScriptError:
            await self.load()
            return await self.redis.evalsha(self._sha[call.name], len(call.keys), *call.keys, *call.args)  # type: ignore[misc]

    def _queue(self, pipe: Any, call: Call) -> None:
        if isinstance(call, Command):
            pipe.execute_command(*call.args)
        else:
            pipe.execute_command("EVALSHA", self._sha[call.name], len(call.keys), *call.keys, *call.args)
