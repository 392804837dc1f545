"""USSD through Africa's Talking: form posts in, ``CON``/``END`` screens back, SMS afterwards.

The gateway posts ``sessionId``, ``serviceCode``, ``phoneNumber``, ``networkCode`` and ``text``
(everything typed in this session, parts joined by ``*``) to ``/webhooks/ussd/{secret}`` and
shows the ``text/plain`` answer: ``CON ...`` waits for input, ``END ...`` closes the session.
There is no signature: the secret in the path (and, optionally, ``USSD_ALLOWED_IPS``, the
gateway's addresses) is the check. Screens are built by ``channels.ussd_screens``; which screen
comes next is the dialogue's business (``bot.ussd``).

USSD cannot message first, so what the bot starts (the reference of a filed report, status
updates, an agent's answer) is sent by SMS to the same phone: through the city's Twilio SMS
channel when it has one (one sending number, one opt-out list, one delivery log for residents'
texts), else through Africa's Talking's SMS API. A resident who answers such a Twilio SMS
continues on the SMS channel.

Example::

    channel = UssdChannel("*120*311#", secret, sms=AfricasTalkingSms("city", key))
    channel.verify(request)             # ForbiddenRequest on a wrong secret
    hit = channel.parse_hit(request)    # UssdHit(session_id=..., phone=..., parts=("1", "2"))
    await channel.send(OutboundMessage("ussd", "+27831234567", "Your reference: CT-7KQ4XM"))
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address

from africastalking.Service import AfricasTalkingException

from channels.africastalking_sms import AfricasTalkingSms
from channels.base import (
    AccountCheckFailed,
    BadRequest,
    BaseChannel,
    ChannelRequest,
    ForbiddenRequest,
)
from channels.render_text import render_plain
from channels.sms_render import split_for_sms
from channels.types import Capabilities, Delivery, DeliveryStatus, InboundMessage, OutboundMessage
from forms_runtime.effects import Effect

__all__ = ["USSD", "UssdChannel", "UssdHit"]

USSD = "ussd"
# The gateway sends a few dozen characters; anything far longer is not the gateway.
MAX_TEXT = 1000
MAX_SESSION_ID = 128
_PHONE = re.compile(r"^\+?[0-9]{6,20}$")
Networks = tuple[IPv4Network | IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class UssdHit:
    """One request of a USSD session, as the gateway sent it."""

    session_id: str
    phone: str
    service_code: str
    network_code: str
    # The parts of ``text`` ("1*2*Main Road" -> ("1", "2", "Main Road")); () at the start.
    parts: tuple[str, ...]


class UssdChannel(BaseChannel):
    name = USSD
    # What the SMS that follows a session can carry (the screens are built in ussd_screens).
    capabilities = Capabilities(
        max_length=3 * 153,
        buttons=False,
        max_buttons=0,
        location_input=False,
        media=False,
        can_message_first=True,
        sms_segments=3,
    )

    def __init__(
        self,
        service_code: str,
        secret: str,
        *,
        allowed: Networks = (),
        sms: AfricasTalkingSms | None = None,
        sms_channel: BaseChannel | None = None,
    ) -> None:
        self.service_code = service_code
        self._secret = secret.encode()
        self.allowed = allowed
        self._sms = sms
        self._sms_channel = sms_channel

    # --- verify: the path's secret, the gateway's address --------------------------------------

    def verify(self, request: ChannelRequest) -> None:
        given = request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if not hmac.compare_digest(given.encode(), self._secret):
            raise ForbiddenRequest("wrong USSD webhook secret")

    def verify_source(self, remote: str | None) -> None:
        """``ForbiddenRequest`` unless ``remote`` is in ``USSD_ALLOWED_IPS`` (when set)."""
        if not self.allowed:
            return
        try:
            address = ip_address(remote or "")
        except ValueError:
            raise ForbiddenRequest("the USSD gateway's address is unknown") from None
        if not any(address in network for network in self.allowed):
            raise ForbiddenRequest("the address is not one of USSD_ALLOWED_IPS")

    # --- parse: the gateway's form -------------------------------------------------------------

    def parse_hit(self, request: ChannelRequest) -> UssdHit:
        form = request.form
        session_id = form.get("sessionId", "").strip()
        phone = form.get("phoneNumber", "").strip().replace(" ", "")
        text = form.get("text", "")
        if not 0 < len(session_id) <= MAX_SESSION_ID:
            raise BadRequest(f"sessionId must be 1 to {MAX_SESSION_ID} characters")
        if not _PHONE.match(phone):
            raise BadRequest("phoneNumber must be a phone number in international format")
        if len(text) > MAX_TEXT:
            raise BadRequest(f"text is over {MAX_TEXT} characters")
        service_code = form.get("serviceCode", "").strip()
        if service_code and service_code != self.service_code:
            raise BadRequest(f"serviceCode is not {self.service_code}")
        return UssdHit(
            session_id=session_id,
            phone=phone if phone.startswith("+") else "+" + phone,
            service_code=service_code or self.service_code,
            network_code=form.get("networkCode", "").strip()[:16],
            parts=tuple(text.split("*")) if text else (),
        )

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        """The latest part of the input as a message; the dialogue (``bot.ussd``) reads more."""
        hit = self.parse_hit(request)
        return [
            InboundMessage(
                channel=USSD,
                address=hit.phone,
                message_id=f"{hit.session_id}:{len(hit.parts)}",
                text=hit.parts[-1] if hit.parts else "",
            )
        ]

    # --- render: what goes by SMS --------------------------------------------------------------

    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        text = render_plain(effects, locale)
        return [
            OutboundMessage(channel=USSD, address=address, text=part)
            for part in split_for_sms(text, max_segments=3)
            if part
        ]

    # --- citybot check -------------------------------------------------------------------------

    async def check_account(self) -> str:
        """Where the follow-up SMS go; Africa's Talking's account is asked for its balance (a
        read-only call) when it is the route."""
        if self._sms_channel is not None:
            return f"{self.service_code}; follow-up SMS by the {self._sms_channel.name} channel"
        if self._sms is None:
            raise AccountCheckFailed(
                f"{self.service_code} is on, but there is no SMS route: USSD residents get no "
                "reference or status update"
            )
        try:
            balance = await self._sms.balance()
        except AfricasTalkingException as exc:
            raise AccountCheckFailed(
                f"Africa's Talking refused the account {self._sms.username!r}: {str(exc)[:200]}"
            ) from None
        except OSError as exc:  # requests' errors are OSErrors: refused, TLS, timed out
            raise AccountCheckFailed(
                f"Africa's Talking cannot be reached: {type(exc).__name__}"
            ) from None
        return (
            f"{self.service_code}; Africa's Talking account {self._sms.username!r} answers, "
            f"balance {balance}"
        )

    # --- send: by SMS --------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Delivery:
        if self._sms_channel is not None:
            return await self._sms_channel.send(replace(message, channel=self._sms_channel.name))
        if self._sms is not None:
            return await self._sms.send(message.address, message.text)
        return Delivery(DeliveryStatus.FAILED, error="no SMS route for USSD follow-ups")
