"""Broadcast deliveries queued per channel on Redis Streams, shared by every worker.

With Redis set, the fan-out still writes one ``broadcast_deliveries`` row per resident (the
durable record, the report and the unique (broadcast, resident)), and after each range's commit
adds the new rows' ids to the streams of their channel, a batch of ids per entry:

    {prefix}{s<shard>}:dispatch:<channel>    XADD * ids "101,102,..."    (group "senders")

A channel has one stream per shard (``storage.redis_layout``; ``CITYBOT_REDIS_STREAM_SHARDS``),
so on a Redis Cluster the work spreads over the primaries; a batch goes to the shard its first
delivery id picks (the ids are consecutive, so the batches take the shards in turn). A batch
holds many residents and is sent in no particular order, so it need not follow any one
resident's shard. Every worker reads every shard.

Workers read entries with ``XREADGROUP`` (each entry goes to one worker), claim the rows it names
by id (``notifier.leased_rows``: only rows still ``queued`` are taken), send them paced and
``XACK`` (and ``XDEL``) the entry once the rows are settled. An entry a killed worker had read
stays pending; once it has been idle for the claim lease another worker takes it over with
``XAUTOCLAIM``. The rows' states fence it: the re-delivered entry's rows that were ``claimed``
are queued again by the lease's recovery and sent once; rows that were ``sending`` are
``unknown`` and never sent again, and ``sent`` ones are not ``queued``, so nothing goes twice.

The stream is only a faster way to hand out work: what it loses (an entry added after a crash
between the commit and the ``XADD``, or Redis's own data) is still ``queued`` in the database,
where a worker with an empty stream claims it the way it does without Redis. Each stream's key
carries its shard's hash tag, so one call touches one Redis Cluster slot.

Example::

    streams = DeliveryStreams(redis, layout=RedisLayout(secret, shards=4), claim_idle_seconds=120)
    await streams.enqueue("sms", [[101, 102], [103]])
    entry = await streams.take(["sms", "telegram"])   # an entry of ids, or None
    ...                                                # claim, send, settle its rows
    await streams.done(entry)
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from storage.redis_layout import UNKEYED, RedisLayout

__all__ = ["DeliveryStreams", "StreamEntry"]

GROUP = "senders"

# How often (seconds) a worker looks for entries whose worker died, per stream.
_AUTOCLAIM_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class StreamEntry:
    stream: str
    entry_id: str
    ids: tuple[int, ...]


class DeliveryStreams:
    """The per-channel streams of broadcast delivery ids, read by the ``senders`` group."""

    def __init__(
        self,
        redis: Redis,
        *,
        layout: RedisLayout = UNKEYED,
        claim_idle_seconds: float = 120.0,
        consumer: str | None = None,
    ) -> None:
        self.redis = redis
        self.layout = layout
        self.claim_idle_ms = max(1, round(claim_idle_seconds * 1000))
        # One name per process: its pending entries are what XAUTOCLAIM takes if it dies.
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._grouped: set[str] = set()
        self._autoclaimed_at: dict[str, float] = {}
        self._turn = 0

    def stream(self, channel: str, shard: int = 0) -> str:
        return self.layout.dispatch_stream(channel, shard)

    async def enqueue(self, channel: str, batches: Sequence[Sequence[int]]) -> None:
        """Add one entry per batch of delivery ids to ``channel``'s streams (one round trip)."""
        batches = [batch for batch in batches if batch]
        if not batches:
            return
        streams = [self.stream(channel, batch[0] % self.layout.shards) for batch in batches]
        for stream in dict.fromkeys(streams):
            await self._group(stream)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, batch in zip(streams, batches, strict=True):
                pipe.xadd(stream, {"ids": ",".join(str(i) for i in batch)})
            await pipe.execute()

    async def take(self, channels: Sequence[str]) -> StreamEntry | None:
        """The next entry for this worker: a dead worker's first, then a new one; the
        channels take turns so that one channel's backlog does not hold up another's."""
        if not channels:
            return None
        streams = [s for channel in channels for s in self.layout.dispatch_streams(channel)]
        self._turn = (self._turn + 1) % len(streams)
        for stream in [*streams[self._turn :], *streams[: self._turn]]:
            await self._group(stream)
            entry = await self._take_over(stream) or await self._read_new(stream)
            if entry is not None:
                return entry
        return None

    async def done(self, entry: StreamEntry) -> None:
        """The entry's rows are settled: acknowledge it and drop it from the stream."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(entry.stream, GROUP, entry.entry_id)
            pipe.xdel(entry.stream, entry.entry_id)
            await pipe.execute()

    async def backlog(self, channel: str) -> int:
        """Entries not yet acknowledged on ``channel``'s streams (tests, operators)."""
        return sum([int(await self.redis.xlen(s)) for s in self.layout.dispatch_streams(channel)])

    async def _group(self, stream: str) -> None:
        if stream in self._grouped:
            return
        try:
            await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(stream)

    async def _take_over(self, stream: str) -> StreamEntry | None:
        now = time.monotonic()
        if now - self._autoclaimed_at.get(stream, -_AUTOCLAIM_EVERY) < _AUTOCLAIM_EVERY:
            return None
        answer = await self.redis.xautoclaim(
            stream, GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=1
        )
        entries = answer[1] if len(answer) > 1 else []
        for entry_id, fields in entries:
            if fields:  # an entry deleted meanwhile comes back without fields
                # Looked for again at the next take, not a second later: a dead worker leaves
                # an entry for each batch it had in flight.
                return _entry(stream, entry_id, fields)
            await self.redis.xack(stream, GROUP, entry_id)
        self._autoclaimed_at[stream] = now
        return None

    async def _read_new(self, stream: str) -> StreamEntry | None:
        answer: Any = await self.redis.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=1)
        for _name, entries in answer or []:
            for entry_id, fields in entries:
                return _entry(stream, entry_id, fields)
        return None


def _entry(stream: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamEntry:
    raw = fields.get(b"ids", b"").decode()
    name = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return StreamEntry(stream, name, tuple(int(i) for i in raw.split(",") if i))
