"""Where everything lives in Redis: the names of every key, documented once.

Two rules shape the names, and both hold on one Redis, Sentinel and Redis Cluster alike:

* **One script, one slot.** Redis Cluster runs a script (or a ``MULTI``) only when all its keys
  hash to one slot, which a hash tag (the part between ``{`` and ``}``) decides. A turn's two
  scripts touch a conversation's lock, state, rate bucket and processed marker, and the closing
  one also numbers the reply in the conversation's order hash and adds it to a reply stream.
  The reply must be committed with the state (exactly when the turn is), so the stream shares
  the conversation's slot: every conversation belongs to one of ``shards`` shards, and the
  shard is the hash tag of all its keys and of the shard's own reply and dispatch streams.
  ``shards`` slots hold everything; a cluster spreads them over its primaries (several per
  primary, so they can be rebalanced: docs/scaling.md).
* **No phone number in a key name.** A conversation is named by its tag, an HMAC-SHA256 of
  ``<channel>:<address>`` keyed with ``secret`` and cut to 16 bytes (32 hex digits), so
  ``redis-cli --scan`` and a Redis backup's key list show no resident's address; the values
  still hold what they held. The same tag picks the shard. ``secret`` must stay the same for as
  long as conversations in Redis should last (``CITYBOT_REDIS_KEY_SECRET``).

The names, for ``prefix`` ``citybot:`` and a conversation in shard 3::

    citybot:{s3}:state:<tag>          the conversation's state (JSON)
    citybot:{s3}:lock:<tag>           its lock (a token, with a lease)
    citybot:{s3}:rate:<tag>           its rate-limit bucket (a hash)
    citybot:{s3}:order:<tag>          its replies' order (a hash: seq, done)
    citybot:{s3}:seen:<tag>:<digest>  a message processed (digest of channel and message id)
    citybot:{s3}:replies:<channel>    shard 3's replies waiting to be sent (a stream)
    citybot:{s3}:dispatch:<channel>   shard 3's broadcast deliveries to hand out (a stream)

Pacing buckets are tagged by the provider account they limit (``channels.shared_pacing``).
Keys of the layout before shards (``citybot:state:sms:+27...``) are moved by
``storage.redis_upgrade``.

Example::

    layout = RedisLayout(secret=b"...", shards=4)
    keys = layout.conversation("sms", "+27831234567")
    keys.state                          # 'citybot:{s1}:state:5b0c...'
    layout.reply_stream("sms", keys.shard)   # 'citybot:{s1}:replies:sms'
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

__all__ = ["UNKEYED", "ConversationKeys", "RedisLayout"]


@dataclass(frozen=True, slots=True)
class ConversationKeys:
    """The Redis keys of one conversation (all in one slot)."""

    shard: int
    tag: str
    state: str
    lock: str
    rate: str
    order: str


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """The key names under ``prefix`` for ``shards`` shards, conversations named by an HMAC
    keyed with ``secret`` (tests may leave it empty: an unkeyed hash; ``bot.bootstrap`` always
    keys it)."""

    secret: bytes = field(default=b"", repr=False)
    prefix: str = "citybot:"
    shards: int = 1

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("a layout has at least one shard")

    def tag(self, channel: str, address: str) -> str:
        """The name a conversation goes by in Redis (32 hex digits)."""
        digest = hmac.new(self.secret, f"{channel}:{address}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def shard_of(self, tag: str) -> int:
        return int(tag[:8], 16) % self.shards

    def shard_tag(self, shard: int) -> str:
        """The prefix and hash tag of every key of ``shard``: ``citybot:{s3}:``."""
        return f"{self.prefix}{{s{shard}}}:"

    def conversation(self, channel: str, address: str) -> ConversationKeys:
        tag = self.tag(channel, address)
        shard = self.shard_of(tag)
        base = self.shard_tag(shard)
        return ConversationKeys(
            shard=shard,
            tag=tag,
            state=f"{base}state:{tag}",
            lock=f"{base}lock:{tag}",
            rate=f"{base}rate:{tag}",
            order=f"{base}order:{tag}",
        )

    def marker(self, channel: str, address: str, message_id: str) -> str:
        """The processed marker of one message, in its conversation's slot. The message id is
        hashed too: some providers' ids are built from the sender's number."""
        keys = self.conversation(channel, address)
        digest = hmac.new(self.secret, f"{channel}:{message_id}".encode(), hashlib.sha256)
        return f"{self.shard_tag(keys.shard)}seen:{keys.tag}:{digest.hexdigest()[:32]}"

    def reply_stream(self, channel: str, shard: int) -> str:
        return f"{self.shard_tag(shard)}replies:{channel}"

    def reply_streams(self, channel: str) -> list[str]:
        return [self.reply_stream(channel, shard) for shard in range(self.shards)]

    def dispatch_stream(self, channel: str, shard: int) -> str:
        return f"{self.shard_tag(shard)}dispatch:{channel}"

    def dispatch_streams(self, channel: str) -> list[str]:
        return [self.dispatch_stream(channel, shard) for shard in range(self.shards)]


# The default of the stores (tests and benches): one shard, an unkeyed hash.
UNKEYED = RedisLayout()
