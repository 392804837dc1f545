"""Moving what an older citybot left in Redis into today's key layout, once, at start.

Before ``storage.redis_layout`` every key named the conversation outright
(``citybot:state:sms:+27831234567``) and each channel had one reply stream
(``citybot:replies:sms``). ``citybot serve`` and ``citybot worker`` call ``upgrade_redis_layout``
before they take any work, and it moves what must not be lost:

* conversation states (a resident in the middle of a form), with the time they had left;
* reply order hashes (so a resident's next reply is numbered after the ones still queued);
* replies still queued on the old streams, entry by entry and in order, onto the stream of
  their conversation's shard, their ``order`` field renamed with the hash. An entry a process
  had taken and not acknowledged is moved too: at least once, as a claim would have sent it.

Each move is one Lua script (the old key is read, the new one written unless it already exists,
the old one deleted), so a start that is killed halfway, or two processes starting together,
leave nothing lost and nothing doubled: running it again moves only what is left. Locks, rate
buckets and processed markers are not moved: they expire on their own (seconds, minutes, a day)
and the turn loop's SQL marker still catches a provider's retry of a message whose turn filed
something. The old broadcast dispatch streams are deleted: they only hinted at rows that are
still ``queued`` in the database, where a worker with an empty stream finds them.

The old layout never ran on a Redis Cluster (its scripts crossed slots), so on a cluster there
is nothing to move; the scripts here touch keys of several slots and run on one Redis only.

It also keeps the layout's own record, ``<prefix>layout`` (the shard count and a check value of
the key-name secret, never the secret): a process started with another shard count than the
one Redis's keys are laid out in would look for conversations in the wrong shards, so it stops
with ``LayoutMismatch``; one whose secret differs is warned about (its residents start afresh).

Example::

    report = await upgrade_redis_layout(redis, layout)
    report.states, report.replies          # what was moved
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from storage.redis import is_cluster
from storage.redis_layout import RedisLayout

__all__ = ["LayoutMismatch", "UpgradeReport", "upgrade_redis_layout"]

log = logging.getLogger("citybot.redis")

LAYOUT_VERSION = 2

# KEYS: old, new. Copies a string with its time to live unless the new one exists; drops old.
_MOVE_STRING = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('SET', KEYS[2], value, 'PX', ttl)
  else redis.call('SET', KEYS[2], value) end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: old, new. Renames a hash (its time to live goes with it) unless the new one exists.
_MOVE_HASH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""

# KEYS: old stream, new stream. ARGV: the entry's id, then its fields and values (renamed).
_MOVE_ENTRY = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""


class LayoutMismatch(RuntimeError):
    """Redis's keys are laid out in another shard count than this process's."""


@dataclass
class UpgradeReport:
    states: int = 0
    orders: int = 0
    replies: int = 0
    dispatch_streams: int = 0


async def upgrade_redis_layout(redis: Redis, layout: RedisLayout) -> UpgradeReport:
    """Check the layout's record, then move the old layout's keys (see the module docstring)."""
    await _check_record(redis, layout)
    report = UpgradeReport()
    if is_cluster(redis):
        return report
    prefix = layout.prefix
    move_string = redis.register_script(_MOVE_STRING)
    move_hash = redis.register_script(_MOVE_HASH)
    move_entry = redis.register_script(_MOVE_ENTRY)
    async for raw in redis.scan_iter(match=f"{prefix}state:*", count=1000):
        old = raw.decode()
        channel, _, address = old.removeprefix(f"{prefix}state:").partition(":")
        new = layout.conversation(channel, address).state
        report.states += int(await move_string(keys=[old, new]))
    order_prefix = f"{prefix}replies:order:"
    async for raw in redis.scan_iter(match=f"{order_prefix}*", count=1000):
        old = raw.decode()
        report.orders += int(await move_hash(keys=[old, _new_order(layout, old)]))
    async for raw in redis.scan_iter(match=f"{prefix}replies:*", count=1000, _type="stream"):
        old = raw.decode()
        channel = old.removeprefix(f"{prefix}replies:")
        if ":" in channel:
            continue
        report.replies += await _move_stream(redis, layout, move_entry, old, channel)
    async for raw in redis.scan_iter(match=f"{prefix}{{dispatch:broadcasts:*}}", count=1000):
        report.dispatch_streams += int(await redis.delete(raw))
    if report.states or report.orders or report.replies or report.dispatch_streams:
        log.warning(
            "Redis keys of an older citybot moved to today's layout",
            extra={
                "states": report.states,
                "order_hashes": report.orders,
                "replies": report.replies,
                "dispatch_streams_dropped": report.dispatch_streams,
            },
        )
    return report


def _new_order(layout: RedisLayout, old: str) -> str:
    channel, _, address = old.removeprefix(f"{layout.prefix}replies:order:").partition(":")
    return layout.conversation(channel, address).order


async def _move_stream(
    redis: Redis, layout: RedisLayout, move_entry: Any, old: str, channel: str
) -> int:
    moved = 0
    while True:
        entries = await redis.xrange(old, count=500)
        if not entries:
            break
        for entry_id, raw_fields in entries:
            fields = cast(dict[bytes, bytes], raw_fields or {})
            address = _address_of(layout, fields)
            shard = layout.conversation(channel, address).shard if address else 0
            values: list[bytes | str] = []
            for name, value in fields.items():
                if name == b"order" and address:
                    value = layout.conversation(channel, address).order.encode()
                values.extend((name, value))
            keys = [old, layout.reply_stream(channel, shard)]
            moved += int(await move_entry(keys=keys, args=[entry_id, *values]))
    # Empty now: its consumer group goes with it (pending entries were moved above).
    await redis.delete(old)
    return moved


def _address_of(layout: RedisLayout, fields: dict[bytes, bytes]) -> str:
    order = fields.get(b"order")
    if order:
        return order.decode().removeprefix(f"{layout.prefix}replies:order:").partition(":")[2]
    try:
        return str(orjson.loads(fields.get(b"reply") or b"{}").get("address") or "")
    except (orjson.JSONDecodeError, AttributeError):
        return ""


async def _check_record(redis: Redis, layout: RedisLayout) -> None:
    name = f"{layout.prefix}layout"
    check = hmac.new(layout.secret, b"citybot redis layout check", hashlib.sha256).hexdigest()
    record = orjson.dumps(
        {"version": LAYOUT_VERSION, "shards": layout.shards, "key_check": check[:16]}
    )
    if await redis.set(name, record, nx=True):
        return
    raw = await redis.get(name)
    kept = orjson.loads(raw) if raw else {}
    if int(kept.get("shards", layout.shards)) != layout.shards:
        raise LayoutMismatch(
            f"Redis holds conversations laid out in {kept.get('shards')} shards, but "
            f"CITYBOT_REDIS_STREAM_SHARDS gives {layout.shards}: set it back to "
            f"{kept.get('shards')} (changing it needs an empty Redis: docs/scaling.md)"
        )
    if kept.get("key_check") != check[:16]:
        log.warning(
            "Redis's conversations were named with another CITYBOT_REDIS_KEY_SECRET (or session "
            "secret): residents in the middle of a form start afresh; give every process the "
            "same one (docs/scaling.md)"
        )
        await redis.set(name, record)
