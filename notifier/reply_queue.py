"""The reply queue (with Redis): where a turn's reply waits, durably, until a process sends it.

This module is the one owner of the queue's format; the turn writes through it and the senders
read through it:

- **Streams.** One Redis stream per channel and shard, ``<prefix>{s<shard>}:replies:<channel>``
  (``citybot:{s0}:replies:sms``; names and shards: ``storage.redis_layout``), read by every
  sending process in one consumer group (``GROUP``). A resident's replies all go to the stream of
  their conversation's shard, which shares the conversation's hash tag, so the turn's closing
  script writes state and reply in one Redis Cluster slot; every process reads every shard. The
  web chat has none: it answers in its HTTP response.
- **Entries.** Fields ``reply`` (the rendered messages and the trace of the message they
  answer, ``encode``/``decode``), ``seq`` and ``order`` (below). ``QueuedReply.from_fields``
  reads an entry back.
- **Committed with the turn.** ``commit_lua`` is the Lua the turn's closing script
  (``conversations.redis_turns``) runs, so a reply exists exactly when its turn does. The turn
  loop only sees it through the ``conversations.ports.ReplyQueueing`` port the composition root
  hands it.
- **Each resident's order, across processes.** Every process takes whatever entries come next,
  so two replies to one resident can be taken by two processes. The committing script numbers
  each reply in the resident's small order hash (``<prefix>{s<shard>}:order:<tag>``,
  field ``seq``) and writes the number and the hash's name on the entry. The hash's ``done``
  field is the highest number finished (sent, or finally failed), set by the process that
  finished it when it acknowledges the entry (``ReplyOrder.mark_done``). A process sends reply
  ``n`` once ``n - 1`` is done, or is already in its own chain for that resident
  (``ReplyOrder.follows``); otherwise it holds the entry and looks again shortly. A reply is
  never held for good: if ``done`` is gone (the hash expired with the conversation's state, or
  Redis lost it) the reply goes. An entry without a number (queued by an older version) goes at
  once.

Example::

    queue = ReplyQueue(RedisLayout(secret, shards=4))
    queue.streams("sms")              # ['citybot:{s0}:replies:sms', ... 'citybot:{s3}:replies:sms']
    entry = encode(channel.render(effects, "en", address))
    # ... committed by the turn's script (commit_lua) on queue.keys_for(channel, address)[0] ...
    reply = QueuedReply.from_fields(entry_id, fields)   # channel, messages, (order hash, seq)
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from channels.types import Button, OutboundMessage
from notifier.message_trace import MessageTrace
from storage.redis_layout import UNKEYED, RedisLayout

__all__ = [
    "GROUP",
    "QueuedReply",
    "ReplyOrder",
    "ReplyQueue",
    "UnreadableEntry",
    "decode",
    "encode",
]

# The consumer group every sending process reads the reply streams in.
GROUP = "citybot-replies"


class UnreadableEntry(ValueError):
    """An entry this version cannot read (damaged, or written by something else)."""


@dataclass(frozen=True, slots=True)
class ReplyQueue:
    """Names of the queue's keys in one Redis layout, and the Lua that queues a reply."""

    layout: RedisLayout = UNKEYED

    @property
    def prefix(self) -> str:
        return self.layout.prefix

    def stream(self, channel: str, shard: int = 0) -> str:
        """The stream of replies waiting on ``channel`` in ``shard``."""
        return self.layout.reply_stream(channel, shard)

    def streams(self, channel: str) -> list[str]:
        """Every shard's stream of ``channel`` (a sending process reads them all)."""
        return self.layout.reply_streams(channel)

    def order_key(self, channel: str, address: str) -> str:
        """The reply order hash of one conversation."""
        return self.layout.conversation(channel, address).order

    def keys_for(self, channel: str, address: str) -> tuple[str, str]:
        """The keys ``commit_lua`` writes for a reply to ``address`` on ``channel``: the stream
        of the conversation's shard and its order hash (one slot with the conversation)."""
        keys = self.layout.conversation(channel, address)
        return self.layout.reply_stream(channel, keys.shard), keys.order

    @staticmethod
    def commit_lua(*, stream: str, order: str, entry: str, ttl: str) -> str:
        """Lua that queues ``entry`` ('' for no reply) on ``stream``, numbered in ``order``
        (kept ``ttl`` seconds); each argument names a Lua expression (``KEYS[4]``, ``ARGV[5]``).
        """
        return f"""
if {entry} ~= '' then
  local seq = redis.call('HINCRBY', {order}, 'seq', 1)
  if seq == 1 then redis.call('HSET', {order}, 'done', 0) end
  redis.call('EXPIRE', {order}, {ttl})
  redis.call('XADD', {stream}, '*', 'reply', {entry}, 'seq', seq, 'order', {order})
end
"""


# -- the entry --------------------------------------------------------------------------------


def encode(messages: Sequence[OutboundMessage], trace: MessageTrace | None = None) -> bytes | None:
    """One reply (the messages a turn's answer renders to) as an entry; None if empty. The
    ``trace`` of the message it answers goes with it, so the sender logs it as replied."""
    if not messages:
        return None
    first = messages[0]
    return orjson.dumps(
        {
            "channel": first.channel,
            "address": first.address,
            **({"trace": trace.to_json()} if trace is not None else {}),
            "messages": [
                {
                    "text": m.text,
                    "buttons": [[b.id, b.label, b.kind] for b in m.buttons],
                    "purpose": m.purpose,
                    "variables": m.template_variables,
                }
                for m in messages
            ],
        }
    )


def decode(entry: str | bytes) -> tuple[str, list[OutboundMessage]]:
    """The channel name and messages of an entry ``encode`` made."""
    channel, messages, _ = _decode(orjson.loads(entry))
    return channel, messages


def _decode(loaded: dict[str, Any]) -> tuple[str, list[OutboundMessage], MessageTrace | None]:
    channel, address = str(loaded["channel"]), str(loaded["address"])
    trace = MessageTrace.from_json(channel, loaded.get("trace"))
    messages = [
        OutboundMessage(
            channel=channel,
            address=address,
            text=str(m["text"]),
            buttons=_buttons(tuple(map(tuple, m["buttons"]))),
            purpose=str(m.get("purpose") or "reply"),
            template_variables={str(k): str(v) for k, v in (m.get("variables") or {}).items()},
        )
        for m in loaded["messages"]
    ]
    return channel, messages, trace


@functools.lru_cache(maxsize=4096)
def _buttons(raw: tuple[tuple[str, str, str], ...]) -> tuple[Button, ...]:
    # The same keyboards come back for every resident asked the same question; building their
    # (frozen) Buttons was a sixth of reading an entry.
    return tuple(Button(str(i), str(label), str(kind)) for i, label, kind in raw)


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """One entry read from a reply stream."""

    entry_id: str
    channel: str
    messages: list[OutboundMessage]
    # (the resident's order hash, this reply's number); None for an unnumbered entry.
    number: tuple[str, int] | None
    # The trace of the message it answers; None for an entry from an older version.
    trace: MessageTrace | None = None

    @classmethod
    def from_fields(cls, entry_id: str, fields: Mapping[bytes, bytes] | None) -> QueuedReply:
        """Read an entry; ``UnreadableEntry`` if it is damaged. An entry with no reply reads as
        one with no messages (finished at once)."""
        fields = fields or {}
        body = fields.get(b"reply")
        try:
            channel, messages, trace = (
                _decode(orjson.loads(body)) if body is not None else ("", [], None)
            )
            seq, order = fields.get(b"seq"), fields.get(b"order")
            number = (order.decode(), int(seq)) if seq and order else None
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
            raise UnreadableEntry(f"reply entry {entry_id} cannot be read: {exc}") from None
        return cls(entry_id, channel, messages, number, trace)


# -- each resident's order ------------------------------------------------------------------

# KEYS: order hashes; ARGV: the number finished for each. Never lowers ``done`` (a reply sent
# twice after a crash finishes twice) and never makes a hash that has expired.
_MARK_DONE = """
for i, key in ipairs(KEYS) do
  local done = tonumber(redis.call('HGET', key, 'done'))
  local seq = tonumber(ARGV[i])
  if done ~= nil and seq > done then redis.call('HSET', key, 'done', seq) end
end
return 0
"""

# How many residents' last taken numbers a process remembers (only to save a look-up).
_REMEMBERED = 50_000


class ReplyOrder:
    """What one sending process knows and asks about residents' reply numbers.

    Example::

        order = ReplyOrder(redis)
        if order.follows(key, seq) or (await order.ready([(key, seq)]))[0]:
            order.took(key, seq)      # then schedule it
        ...
        order.mark_done(pipe, [(key, seq)])   # in the pipeline that acknowledges the entry
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._mark_done_sha = hashlib.sha1(_MARK_DONE.encode(), usedforsecurity=False).hexdigest()
        # Order hash -> the highest number this process has taken into a chain.
        self._taken: OrderedDict[str, int] = OrderedDict()

    def follows(self, key: str, seq: int) -> bool:
        """Whether reply ``seq`` may go without asking Redis: the first, or right behind one
        this process already has in its chain for the resident."""
        return seq <= 1 or self._taken.get(key, 0) >= seq - 1

    def took(self, key: str, seq: int) -> None:
        if self._taken.get(key, 0) < seq:
            self._taken[key] = seq
        self._taken.move_to_end(key)
        while len(self._taken) > _REMEMBERED:
            self._taken.popitem(last=False)

    async def ready(self, waiting: Sequence[tuple[str, int]]) -> list[bool]:
        """For each (order hash, number): is the reply before it done (or is nothing known)?"""
        if not waiting:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, _ in waiting:
                pipe.hget(key, "done")
            answers = await pipe.execute()
        return [
            done is None or int(done) >= seq - 1
            for (_, seq), done in zip(waiting, answers, strict=True)
        ]

    def mark_done(self, pipe: Pipeline, finished: Sequence[tuple[str, int]]) -> None:
        """Queue on ``pipe`` (the acknowledgement's) that these replies are finished.

        By its SHA alone: redis-py's scripts in a pipeline ask ``SCRIPT EXISTS`` first, a round
        trip on every acknowledgement. If Redis does not know the script (it restarted), the
        pipeline fails with ``NoScriptError``: ``load`` it, and send the pipeline again."""
        if finished:
            pipe.evalsha(
                self._mark_done_sha,
                len(finished),
                *[key for key, _ in finished],
                *[seq for _, seq in finished],
            )

    async def load(self) -> None:
        """Make Redis know the script ``mark_done`` calls."""
        await self._redis.script_load(_MARK_DONE)
