"""The channel port: verify, parse, render, send.

A channel module reads top to bottom in that order and is the only place that knows a provider's
payloads. The core hands it neutral effects and gets neutral messages back.

Example::

    channel = SmsChannel(settings)
    channel.verify(request)                       # raises ForbiddenRequest on a bad signature
    inbound = channel.parse(request)              # -> [InboundMessage(...)]
    outbound = channel.render(effects, "zu", address="+27831234567")
    delivery = await channel.send(outbound[0])    # -> Delivery(status=SENT, ...)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from channels.types import Capabilities, Delivery, InboundMessage, OutboundMessage
from forms_runtime.effects import Effect

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "MAX_MESSAGE_ID_LENGTH",
    "AccountCheckFailed",
    "BadRequest",
    "BaseChannel",
    "ChannelRequest",
    "ForbiddenRequest",
]

# The longest address and provider message id the message log keeps (its columns' sizes): a
# provider field longer than these is refused at the edge, with a 400, rather than making a row
# the database refuses.
MAX_ADDRESS_LENGTH = 255
MAX_MESSAGE_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """An HTTP request as a channel sees it: framework-neutral, body already read."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    # Form fields for form-encoded posts (Twilio), already decoded; empty otherwise.
    form: Mapping[str, str]

    def header(self, name: str) -> str | None:
        """A header's value by name in any case (HTTP names are case-insensitive), else None."""
        value = self.headers.get(name)
        if value is not None:
            return value
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


class ForbiddenRequest(Exception):
    """Signature or secret did not match: answer 403 and store nothing."""


class BadRequest(Exception):
    """The body is malformed: answer 400 with the reason."""


class AccountCheckFailed(Exception):
    """The provider refused a read-only call with this channel's credentials (``citybot check``);
    the message says what the provider answered."""


class BaseChannel(ABC):
    name: str
    capabilities: Capabilities

    @abstractmethod
    def verify(self, request: ChannelRequest) -> None:
        """Raise ``ForbiddenRequest`` unless the request really comes from the provider."""

    @abstractmethod
    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        """Turn a verified request into neutral messages; raise ``BadRequest`` when malformed."""

    @abstractmethod
    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        """Show effects as this channel can: buttons, numbered options, segments."""

    @abstractmethod
    async def send(self, message: OutboundMessage) -> Delivery:
        """Deliver one message; never raises for provider errors, returns them in ``Delivery``."""

    async def check_account(self) -> str:
        """One read-only call to the provider with this channel's credentials (``citybot
        check``): what the provider says the account is, or ``AccountCheckFailed``. A channel
        with no provider account has nothing to check."""
        return "no provider account"

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
