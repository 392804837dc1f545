"""A turn's Redis work in two round trips: one script to get in, one to get out.

With every store in Redis, a turn used to make six or seven round trips (lock, dedupe check, rate
limit, state read, state write, processed marker, unlock) plus a lease-renewing task per turn.
``RedisTurnGate`` does the same work, with the same keys and values as the separate stores, in:

* ``enter``: a Lua script that takes the lock (``SET NX PX``), and unless the message was already
  processed or the resident is over the rate limit, returns the state. A duplicate or a rate-limited
  message releases the lock in the same script.
* ``leave``: a Lua script that saves the state, marks the message processed, queues the reply
  through the reply queue the app hands in (``conversations.ports.ReplyQueueing``; its Lua and
  key names belong to ``notifier.reply_queue``) and releases the lock (only if this turn still
  holds it). The reply is committed with the state: a process that dies after ``leave`` has
  left the reply for another process to send, and one that dies before it has committed
  nothing, so the provider's redelivery runs the turn again. ``abandon`` only releases it (the
  turn failed: the message stays unprocessed, so the provider's retry runs it again).

The scripts of all turns in flight go out together, one pipeline per round trip
(``conversations.redis_pipeline``), so under load a turn's share of the Redis work is small.
Leases are renewed by one task per process for all turns in flight (not one task per turn). The
in-process lock is still taken first, so one process keeps arrival order and only one of its
tasks waits on a resident's Redis lock. The scripts touch several keys, so on a Redis Cluster
every key of one call shares its conversation's hash tag (``storage.redis_layout``: the
conversation's shard, which also tags the shard's reply stream), so each script runs in one slot
of a Redis Cluster as on one Redis.

Example::

    gate = fuse_redis_stores(states, dedupe, locks, limiter, replies)   # None unless one Redis
    async with gate.local.hold(key):
        ticket = await gate.enter(key, "sms", "SM123")
        if ticket.runs:
            ...                                 # the turn
            await gate.leave(ticket, new_state)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from conversations.dedupe import BaseDedupe, RedisDedupe
from conversations.keys import ConversationKey
from conversations.locks import BaseLocks, InProcessLocks, LockTimeout, RedisLocks
from conversations.ports import ReplyQueueing
from conversations.rate_limit import (
    BaseRateLimiter,
    RateDecision,
    RedisRateLimiter,
    token_bucket_lua,
)
from conversations.redis_pipeline import ScriptPipeline
from conversations.state_store import BaseStateStore, RedisStateStore
from storage.redis import outage_of

__all__ = ["RedisTurnGate", "Ticket", "fuse_redis_stores"]

log = logging.getLogger(__name__)

# KEYS: lock, processed marker, rate bucket, state.
# ARGV: token, lease ms, burst, rate, now, bucket expiry ms, '1' to take a token ('0' lets an
# opt-out through a resident's empty bucket).
# Returns {0} locked by another turn, {1} already processed, {2, decision, state} otherwise;
# the lock is kept only when the decision is 0 (allow).
_ENTER = (
    """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return {1}
end
"""
    + "local decision = 0\nif ARGV[7] == '1' then\n"
    + token_bucket_lua(
        key="KEYS[3]",
        cap="ARGV[3]",
        rate="ARGV[4]",
        now="ARGV[5]",
        expiry_ms="ARGV[6]",
        into="taken",
    )
    + """
decision = taken
end
if decision ~= 0 then redis.call('DEL', KEYS[1]) end
return {2, decision, redis.call('GET', KEYS[4])}
"""
)

# KEYS: lock, processed marker, state, and with a reply queue its two keys (the stream and the
# resident's order hash). ARGV: token, state JSON ('' keeps it), state ttl, marker ttl, reply
# ('' for none). The reply queue's Lua (between the two parts) numbers the reply in the
# resident's order hash, which lives as long as the state (ARGV[3]).
# A turn whose lease ran out while a retry of the same message ran and finished elsewhere (the
# marker is set, the lock is not ours) changes nothing: the retry's state and reply stand.
_LEAVE_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
"""
_LEAVE_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW = """
local renewed = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    renewed = renewed + 1
  end
end
return renewed
"""

_DECISIONS = (RateDecision.ALLOW, RateDecision.WARN, RateDecision.DROP)
# A lock token only has to be unique among holders: a random part per process and a counter
# (os.urandom on every turn cost a system call for nothing more).
_TOKEN_PREFIX = secrets.token_hex(6)
_TOKEN_NUMBERS = itertools.count(1)


@dataclass
class Ticket:
    """The outcome of ``enter``: whether the turn runs, and the state it starts from."""

    key: ConversationKey
    channel: str
    message_id: str
    token: str
    duplicate: bool = False
    decision: RateDecision = RateDecision.ALLOW
    state: dict[str, Any] | None = None

    @property
    def runs(self) -> bool:
        return not self.duplicate and self.decision is RateDecision.ALLOW


class RedisTurnGate:
    def __init__(
        self,
        states: RedisStateStore,
        dedupe: RedisDedupe,
        locks: RedisLocks,
        limiter: RedisRateLimiter,
        replies: ReplyQueueing | None = None,
    ) -> None:
        self._redis: Redis = states.redis
        self._states = states
        self._dedupe = dedupe
        self._locks = locks
        self._limiter = limiter
        self.local = InProcessLocks()
        self.replies = replies
        queue_reply = (
            replies.commit_lua(stream="KEYS[4]", order="KEYS[5]", entry="ARGV[5]", ttl="ARGV[3]")
            if replies is not None
            else ""
        )
        # One pipeline (one connection) for every turn's scripts: hundreds of turns in flight
        # never exhaust the client's pool, and they share round trips.
        self._scripts = ScriptPipeline(self._redis)
        self._enter = self._scripts.script(_ENTER)
        self._leave = self._scripts.script(_LEAVE_SAVE + queue_reply + _LEAVE_UNLOCK)
        self._release = self._scripts.script(_RELEASE)
        self._renew = self._scripts.script(_RENEW)
        # Locks this process holds, name -> token, renewed together by one task.
        self._held: dict[str, str] = {}
        self._renewer: asyncio.Task[None] | None = None

    async def enter(
        self, key: ConversationKey, channel: str, message_id: str, *, limited: bool = True
    ) -> Ticket:
        """Lock the conversation and read its state (waits while another process holds it);
        ``limited=False`` lets the message past the rate limit without taking a token."""
        lock = self._locks.name(key)
        ticket = Ticket(key, channel, message_id, f"{_TOKEN_PREFIX}{next(_TOKEN_NUMBERS):x}")
        keys = [lock, self._dedupe.name(channel, message_id, key.address), self._limiter.name(key)]
        keys.append(self._states.name(key))
        args: list[str | int | float] = [
            ticket.token,
            self._locks.lease_ms,
            self._limiter.burst,
            self._limiter.rate,
            repr(self._limiter.now()),
            self._limiter.expire_ms,
            "1" if limited else "0",
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._locks.wait
        pause = 0.002
        while True:
            result = await self._scripts.run(self._enter, keys, args)
            if int(result[0]) != 0:
                break
            if loop.time() >= deadline:
                raise LockTimeout(f"conversation lock {lock} still held after {self._locks.wait}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        if int(result[0]) == 1:
            ticket.duplicate = True
            return ticket
        ticket.decision = _DECISIONS[int(result[1])]
        if len(result) > 2 and result[2] is not None:
            ticket.state = orjson.loads(result[2])
        if ticket.decision is RateDecision.ALLOW:
            self._hold(lock, ticket.token)
        return ticket

    async def leave(
        self, ticket: Ticket, state: dict[str, Any] | None, reply: bytes | None = None
    ) -> None:
        """Save ``state`` (``None``: leave it as it was), mark the message processed, queue
        ``reply`` (an entry made by ``notifier.reply_queue.encode``) on the reply queue,
        unlock."""
        lock = self._locks.name(ticket.key)
        self._held.pop(lock, None)
        payload = orjson.dumps(state) if state is not None else b""
        keys = [
            lock,
            self._dedupe.name(ticket.channel, ticket.message_id, ticket.key.address),
            self._states.name(ticket.key),
        ]
        if self.replies is not None:
            keys.extend(self.replies.keys_for(ticket.key.channel, ticket.key.address))
        elif reply:
            raise ValueError("a reply to queue, but no reply queue was given")
        released = await self._scripts.run(
            self._leave,
            keys,
            [ticket.token, payload, self._states.ttl, self._dedupe.ttl_seconds, reply or b""],
        )
        if not released:
            # The channel only: the lock's name holds the resident's address.
            log.warning(
                "a conversation lock was lost before the turn ended",
                extra={"channel": ticket.key.channel},
            )

    async def abandon(self, ticket: Ticket) -> None:
        """Release the lock without saving anything (the turn failed; it will be retried)."""
        lock = self._locks.name(ticket.key)
        self._held.pop(lock, None)
        await self._scripts.run(self._release, [lock], [ticket.token])

    def _hold(self, lock: str, token: str) -> None:
        self._held[lock] = token
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._keep_renewing(), name="redis-lock-renewer")

    async def _keep_renewing(self) -> None:
        # A third of the lease: two renewals can be late before a lease runs out. A turn shorter
        # than that (nearly all) is never renewed at all.
        interval = self._locks.lease_ms / 3000
        while self._held:
            await asyncio.sleep(interval)
            # One call per shard: a script's keys share a slot (``storage.redis_layout``).
            by_slot: dict[str, list[tuple[str, str]]] = {}
            for name, token in self._held.items():
                by_slot.setdefault(name.partition("}")[0], []).append((name, token))
            parts = [
                held[start : start + 500]
                for held in by_slot.values()
                for start in range(0, len(held), 500)
            ]
            for part in parts:
                try:
                    await self._scripts.run(
                        self._renew,
                        [name for name, _ in part],
                        [self._locks.lease_ms, *(token for _, token in part)],
                    )
                except (OSError, RedisError) as exc:
                    # Counted with the process's other Redis failures, logged once.
                    outage_of(self._redis).failed("renewing conversation locks", exc)
                except Exception:
                    log.warning("renewing conversation locks failed", exc_info=True)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self._scripts.close()


def fuse_redis_stores(
    states: BaseStateStore,
    dedupe: BaseDedupe,
    locks: BaseLocks,
    limiter: BaseRateLimiter,
    replies: ReplyQueueing | None = None,
) -> RedisTurnGate | None:
    """A gate when all four stores are the Redis ones on one client; otherwise ``None``."""
    if not (
        isinstance(states, RedisStateStore)
        and isinstance(dedupe, RedisDedupe)
        and isinstance(locks, RedisLocks)
        and isinstance(limiter, RedisRateLimiter)
    ):
        return None
    if not (states.redis is dedupe.redis is locks.redis is limiter.redis):
        return None
    # One layout, or a script's keys would not share a slot.
    if not (states.layout == dedupe.layout == locks.layout == limiter.layout):
        return None
    return RedisTurnGate(states, dedupe, locks, limiter, replies)
