"""SMS through Africa's Talking, with its Python SDK: what USSD residents are sent afterwards.

USSD cannot message first, so a report's reference and every later status update reach a USSD
resident by SMS. Where the city has no Twilio SMS number, they go through the same Africa's
Talking account as the USSD gateway (``channels.ussd`` decides).

The SDK (``africastalking.SMSService``) builds and posts the request (form fields, the ``apiKey``
header) with ``requests``, which blocks, so each send runs in a worker thread with the SDK's own
timeout. It always sends to https://api.africastalking.com (the sandbox's host for the username
``sandbox``), used as it is: a host that must go through an egress proxy sets ``HTTPS_PROXY``
(and ``REQUESTS_CA_BUNDLE`` for a proxy that inspects TLS), which ``requests`` honours on every
call; the tests reach their fake Africa's Talking the same way.

Example::

    sms = AfricasTalkingSms("city", api_key, sender_id="CITY")
    delivery = await sms.send("+27831234567", "Your reference: CT-7KQ4XM")
    await sms.balance()                 # "ZAR 125.5000" (citybot check)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from africastalking.Application import ApplicationService
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

from channels.types import Delivery, DeliveryStatus

__all__ = ["AfricasTalkingSms"]

# Seconds: connect and read (the SDK's default is 3.05 s and 9.05 s).
TIMEOUT = (3.05, 9.05)
# Per-recipient statuses the gateway answers that mean the message is on its way.
_ACCEPTED = {100, 101, 102}
# Numbers the gateway will never deliver to (blacklisted, invalid, rejected): stop trying.
_UNREACHABLE = {403, 404, 405, 406, 407}


class AfricasTalkingSms:
    def __init__(
        self,
        username: str,
        api_key: str,
        *,
        sender_id: str | None = None,
    ) -> None:
        self.username = username
        self.sender_id = sender_id
        self._service = SMSService(username, api_key)
        self._account = ApplicationService(username, api_key)

    async def send(self, phone: str, text: str) -> Delivery:
        """Send one SMS; every failure comes back in the ``Delivery``, never raised."""
        try:
            response = await asyncio.to_thread(
                self._service.send, text, [phone], self.sender_id, False, None, TIMEOUT
            )
        except ValueError as exc:  # the SDK refuses a number that is not +E.164
            return Delivery(DeliveryStatus.UNREACHABLE, error_code="invalid_number", error=str(exc))
        except AfricasTalkingException as exc:  # the gateway answered with an error status
            return Delivery(DeliveryStatus.FAILED, error=str(exc)[:200])
        except Exception as exc:  # a connection that failed or timed out: retried by the sender
            return Delivery(DeliveryStatus.FAILED, error=type(exc).__name__)
        return _delivery(response)

    async def balance(self) -> str:
        """The account's balance: one read-only call (``citybot check``). Raises
        ``AfricasTalkingException`` when the gateway refuses the account, ``OSError`` (which
        ``requests``' errors are) when it cannot be reached."""
        answer = await asyncio.to_thread(self._account.fetch_application_data, None, TIMEOUT)
        try:
            body = json.loads(answer) if isinstance(answer, str | bytes) else answer
            return str(body["UserData"]["balance"])
        except (ValueError, KeyError, TypeError):
            raise AfricasTalkingException("unreadable answer from Africa's Talking") from None


def _delivery(answer: Any) -> Delivery:
    """The SDK gives the JSON answer parsed, or its text when the type is not exactly JSON."""
    try:
        body = json.loads(answer) if isinstance(answer, str | bytes) else answer
        recipients = body["SMSMessageData"]["Recipients"]
        first = recipients[0]
        code = int(first["statusCode"])
    except (ValueError, KeyError, IndexError, TypeError):
        return Delivery(DeliveryStatus.FAILED, error="unreadable answer from Africa's Talking")
    if code in _ACCEPTED:
        return Delivery(DeliveryStatus.SENT, provider_message_id=str(first.get("messageId")))
    status_name = str(first.get("status", ""))
    if code in _UNREACHABLE:
        return Delivery(DeliveryStatus.UNREACHABLE, error_code=str(code), error=status_name)
    return Delivery(DeliveryStatus.FAILED, error_code=str(code), error=status_name)
