"""Each resident's replies in the order of their turns, whichever processes send them.

Every process reading a reply stream takes whatever entries come next, so two replies to one
resident can be taken by two processes. Within a process a resident's replies already go one
after another (``ReplySender`` chains them); across processes they need this:

- The turn that queues a reply numbers it, in the same commit script
  (``conversations.redis_turns``): it counts the resident's replies in a small hash
  (``<reply stream prefix>:order:<channel>:<address>``, field ``seq``) and writes the number
  and the hash's name on the stream entry (fields ``seq`` and ``order``).
- The hash's ``done`` field is the highest number finished (sent, or finally failed), set by
  the process that finished it when it acknowledges the entry (``mark_done``).
- A process sends reply ``n`` once ``n - 1`` is done, or is already in its own chain for that
  resident (``ReplyOrder.follows``); otherwise it holds the entry and looks again shortly.

A reply is never held for good: if ``done`` is gone (the hash expired with the conversation's
state, or Redis lost it) the reply goes, and a reply held longer than ``max_wait`` goes with a
warning. An entry without a number (queued by an older version) goes at once.

Example::

    order = ReplyOrder(redis)
    if order.follows(key, seq) or (await order.ready([(key, seq)]))[0]:
        order.took(key, seq)      # then schedule it
    ...
    order.mark_done(pipe, [(key, seq)])   # in the pipeline that acknowledges the entry
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

__all__ = ["ReplyOrder"]

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
    """What one process knows and asks about residents' reply numbers."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._mark_done_sha = hashlib.sha1(_MARK_DONE.encode()).hexdigest()
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
