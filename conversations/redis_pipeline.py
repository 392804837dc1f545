"""Lua scripts of many turns sent to Redis together: one pipeline per round trip.

Under load hundreds of turns are in flight, and each calls a script to get in and one to get out
(``conversations.redis_turns``). Sent one by one, every call pays redis-py's per-command work
(a pooled connection, retries, observability hooks) and a ``send`` system call, and needs a
connection of its own while it waits. ``ScriptPipeline`` queues the calls instead; one sender
writes everything queued as one redis-py pipeline (``Redis.pipeline(transaction=False)``, an
``EVALSHA`` each, not a transaction), and hands each caller its own reply. While a pipeline is
on the wire the next one fills, so batches grow with the load by themselves and a lone call goes
out at once: under light load a call waits no longer than before, under heavy load the
per-call cost falls.

Each call is still its own script, run atomically by Redis; calls of one batch are independent
(one failing does not fail the others: ``execute(raise_on_error=False)``). A connection error is
retried as the client's retry policy says (redis-py's, the same as for any command), and when
that gives up it fails every call of that batch, as it would have failed each of them alone. A
caller that gave up (cancelled) before its call was sent is left out of the batch. Scripts are
loaded once; a Redis that lost them (restart, ``SCRIPT FLUSH``) gets them again and the calls it
refused are sent once more.

Example::

    pipeline = ScriptPipeline(redis)
    release = pipeline.script("return redis.call('DEL', KEYS[1])")
    await pipeline.run(release, keys=["lock:a"], args=[])
    await pipeline.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from storage.redis import replica_wait_of

__all__ = ["ScriptPipeline"]

Arg = str | int | float | bytes


@dataclass(slots=True)
class _Call:
    sha: str
    keys: Sequence[str]
    args: Sequence[Arg]
    future: asyncio.Future[Any] = field(repr=False)


class ScriptPipeline:
    """Runs registered Lua scripts for many callers, batched into pipelines."""

    def __init__(self, redis: Redis, *, batch: int = 512) -> None:
        self._redis = redis
        self._batch = batch
        self._sources: dict[str, str] = {}
        self._loaded = False
        self._queue: deque[_Call] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # pipelines sent (how well calls were batched: see the tests)

    def script(self, source: str) -> str:
        """Register a script; returns the handle (its SHA1) to pass to ``run``."""
        sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._sources[sha] = source
        self._loaded = False
        return sha

    async def run(self, sha: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run script ``sha`` with ``keys`` and ``args``; its reply, or the error Redis gave."""
        if self._closed:
            raise RedisConnectionError("the script pipeline is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(sha, keys, args, future))
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_forever(), name="redis-script-pipeline")
        return await future

    async def close(self) -> None:
        """Stop the sender; calls still queued fail with a connection error."""
        self._closed = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        while self._queue:
            call = self._queue.popleft()
            if not call.future.done():
                call.future.set_exception(RedisConnectionError("the script pipeline is closed"))

    async def _send_forever(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            calls = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            calls = [call for call in calls if not call.future.done()]
            if not calls:
                continue
            try:
                replies = await self._send(calls)
            except asyncio.CancelledError:
                _fail(calls, RedisConnectionError("the script pipeline is closed"))
                raise
            except Exception as exc:
                _fail(calls, exc)
                continue
            for call, reply in zip(calls, replies, strict=True):
                if call.future.done():
                    continue
                if isinstance(reply, Exception):
                    call.future.set_exception(reply)
                else:
                    call.future.set_result(reply)

    async def _send(self, calls: list[_Call]) -> list[Any]:
        if not self._loaded:
            await self._load()
        replies = await self._pipeline(calls)
        refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if refused:
            await self._load()
            again = await self._pipeline([calls[i] for i in refused])
            for i, reply in zip(refused, again, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        self.batches += 1
        pipeline = self._redis.pipeline(transaction=False)
        for call in calls:
            pipeline.evalsha(call.sha, len(call.keys), *call.keys, *call.args)
        # Behind Sentinel the batch's writes are on a replica before any caller goes on
        # (``storage.redis``: a failover must not lose a committed turn).
        wait = replica_wait_of(self._redis)
        waited = wait is not None and wait.add_to(pipeline)
        # Each call's error in its place (a ResponseError, NoScriptError among them).
        replies: list[Any] = await pipeline.execute(raise_on_error=False)
        if waited and wait is not None:
            wait.saw(replies.pop())
        return replies

    async def _load(self) -> None:
        for source in list(self._sources.values()):
            await self._redis.script_load(source)
        self._loaded = True


def _fail(calls: list[_Call], error: BaseException) -> None:
    for call in calls:
        if not call.future.done():
            call.future.set_exception(error)
