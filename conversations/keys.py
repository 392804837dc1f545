"""The key of one conversation: a channel and the resident's address on it.

Key format (documented once, used by every store): ``<channel>:<address>``, e.g.
``sms:+27831234567``, ``telegram:123456789``, ``whatsapp:+27831234567``, ``webchat:3f2a...``.
A channel name never contains ``:``; an address may, so a key splits on the first ``:`` only.
Redis stores put their own prefix in front (``citybot:state:sms:+27831234567``).

Example::

    key = ConversationKey("sms", "+27831234567")
    key.storage_key                                  # 'sms:+27831234567'
    ConversationKey.parse("sms:+27831234567") == key # True
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.types import InboundMessage

__all__ = ["ConversationKey"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    channel: str
    address: str

    def __post_init__(self) -> None:
        if not self.channel or ":" in self.channel:
            raise ValueError(f"a channel name is non-empty and has no ':': {self.channel!r}")
        if not self.address:
            raise ValueError("an address is non-empty")

    @property
    def storage_key(self) -> str:
        return f"{self.channel}:{self.address}"

    @classmethod
    def parse(cls, storage_key: str) -> ConversationKey:
        channel, _, address = storage_key.partition(":")
        return cls(channel, address)

    @classmethod
    def of(cls, message: InboundMessage) -> ConversationKey:
        return cls(message.channel, message.address)

    def __str__(self) -> str:
        return self.storage_key
