"""What Twilio SMS and Twilio WhatsApp share: signatures, the REST client, delivery receipts.

``TwilioChannel`` is the part of both channels that is the same: it verifies the signature, holds
the REST client, reads the message id and sender and the photos of an inbound post, renders
numbered plain text (each channel cuts it to its own length) and names the StatusCallback URL.

- Signatures: ``X-Twilio-Signature`` is checked with twilio's ``RequestValidator`` against the URL
  Twilio called, which is ``CITYBOT_PUBLIC_URL`` + path (+ query), not the URL this process saw
  (behind a proxy or load balancer those differ in scheme, host and port).
- Sending: the real ``twilio.rest.Client`` builds and authenticates every request, and the SDK's
  own aiohttp transport sends it on the process's shared session (``channels.twilio_http``, which
  also moves the request to ``TWILIO_API_BASE_URL`` when that is set, so tests and benchmarks
  talk to a local fake Twilio without patching the SDK).
- Errors: 429 -> RATE_LIMITED (with the Retry-After Twilio names), 21610 -> UNREACHABLE (the
  resident texted STOP at Twilio), 5xx / timeouts / refused or broken connections -> FAILED
  ``provider_down`` (retried by ``send_with_retries``), any other 4xx -> FAILED for good.

Example::

    receipt = parse_receipt(request)   # DeliveryReceipt(provider_message_id="SM...", status=DELIVERED, ...)
"""

from __future__ import annotations

import hmac
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    MAX_ADDRESS_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    AccountCheckFailed,
    BadRequest,
    BaseChannel,
    ChannelRequest,
    ForbiddenRequest,
)
from channels.http_session import ProviderSession
from channels.render_text import render_plain
from channels.retrying import PROVIDER_DOWN
from channels.twilio_http import TwilioHttpClient, retry_after_seen
from channels.types import (
    Delivery,
    DeliveryReceipt,
    DeliveryStatus,
    OutboundMessage,
    clean_text,
)
from forms_runtime.effects import Effect, MediaRef

__all__ = [
    "SIGNATURE_HEADER",
    "STATUS_CALLBACK_PATH",
    "TwilioAccount",
    "TwilioChannel",
    "delivery_from_error",
    "media_from_form",
    "parse_receipt",
    "signed_url",
    "verify_twilio_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
# Twilio posts at most ten photos with one message (MediaUrl0..MediaUrl9).
_MAX_MEDIA = 10
# Twilio: "Attempt to send to unsubscribed recipient" (the resident replied STOP at the carrier).
OPTED_OUT_CODE = 21610

_RECEIPT_STATUSES: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    # CITYBOT_PUBLIC_URL: what Twilio calls, and so what it signs.
    public_url: str
    api_base_url: str | None = None


def signed_url(public_url: str, request_url: str) -> str:
    """The URL Twilio signed: the public base with the path and query of the request received."""
    received = urlsplit(request_url)
    public = urlsplit(public_url)
    path = public.path.rstrip("/") + received.path
    return urlunsplit((public.scheme, public.netloc, path, received.query, ""))


def verify_twilio_signature(request: ChannelRequest, auth_token: str, public_url: str) -> None:
    """``ForbiddenRequest`` unless ``X-Twilio-Signature`` signs this post for the public URL.

    The signature is computed once, for the URL exactly as configured, and compared in constant
    time. Only when that fails does the SDK's ``validate`` run, which also tries the URL with the
    default port added or removed (Twilio signs either, depending on the product): that costs
    three HMACs and a URL parse, so forged posts pay for it, not every genuine one. Everything
    accepted here is accepted by ``validate`` too (the configured URL is one of the two it tries).
    """
    signature = request.header(SIGNATURE_HEADER)
    if not signature:
        raise ForbiddenRequest("missing X-Twilio-Signature")
    url = signed_url(public_url, request.url)
    validator = RequestValidator(auth_token)
    expected = validator.compute_signature(url, _SignedForm(request.form))
    if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return
    if not validator.validate(url, dict(request.form), signature):
        # Both causes named: a wrong token, or a URL at Twilio other than the one checked
        # (a public URL that differs in scheme, host, port or path from the webhook's).
        raise ForbiddenRequest(
            f"X-Twilio-Signature does not match {url} (CITYBOT_PUBLIC_URL + path): the URL "
            "set at Twilio must be exactly this, and TWILIO_AUTH_TOKEN the account's token"
        )


class _SignedForm(dict[str, str]):
    """Form fields as the SDK's ``compute_signature`` reads them fastest.

    It asks each field for ``getall`` (a MultiDict), then ``getlist`` (Django), then indexes a
    plain dict: with a plain dict that is two AttributeErrors raised and caught per field, which
    cost more than the HMAC itself. A form here has one value per field.
    """

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def parse_receipt(request: ChannelRequest) -> DeliveryReceipt:
    """A StatusCallback post as a ``DeliveryReceipt``; ``BadRequest`` when fields are missing."""
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid")
    raw_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not sid or raw_status not in _RECEIPT_STATUSES:
        raise BadRequest("a status callback needs MessageSid and a known MessageStatus")
    to = form.get("To", "")
    _refuse_longer("MessageSid", sid, MAX_MESSAGE_ID_LENGTH)
    _refuse_longer("To", to, MAX_ADDRESS_LENGTH)
    channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
    status = _RECEIPT_STATUSES[raw_status]
    error_code = form.get("ErrorCode") or None
    if error_code == str(OPTED_OUT_CODE):
        status = DeliveryStatus.UNREACHABLE
    return DeliveryReceipt(
        provider_message_id=sid,
        status=status,
        channel=channel,
        address=to.removeprefix("whatsapp:"),
        error_code=error_code,
    )


class TwilioChannel(BaseChannel):
    """A channel whose messages come and go through Twilio: SMS and WhatsApp.

    Subclasses parse their own posts (``inbound_ids`` and ``media_from_form`` read the shared
    fields), send, and say how a text is cut (``split``).

    Example::

        class SmsChannel(TwilioChannel):
            def split(self, text: str) -> list[str]:
                return split_for_sms(text, max_segments=3)
    """

    def __init__(self, account: TwilioAccount, *, http: ProviderSession | None = None) -> None:
        self.account = account
        # The process's shared provider session (one of its own when none is given).
        self._http = TwilioHttpClient(http or ProviderSession(), account.api_base_url)
        self.client = Client(account.account_sid, account.auth_token, http_client=self._http)

    def verify(self, request: ChannelRequest) -> None:
        verify_twilio_signature(request, self.account.auth_token, self.account.public_url)

    def inbound_ids(self, form: Mapping[str, str]) -> tuple[str, str]:
        """The message SID and the sender (as Twilio wrote it); ``BadRequest`` if either is missing."""
        sid, sender = form.get("MessageSid") or form.get("SmsSid"), form.get("From")
        # Cleaned before the check: a From of "\x00" is as missing as an empty one.
        sid, sender = clean_text(sid or ""), clean_text(sender or "")
        if not sid or not sender:
            raise BadRequest(f"an inbound {self.name} message needs MessageSid and From")
        _refuse_longer("MessageSid", sid, MAX_MESSAGE_ID_LENGTH)
        _refuse_longer("From", sender, MAX_ADDRESS_LENGTH)
        return sid, sender

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """The text cut into the messages this channel sends."""

    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        # Free-form Twilio messages carry no buttons: options are numbered on both channels.
        text = render_plain(effects, locale, numbered_options=True)
        if not text:
            return []
        return [
            OutboundMessage(channel=self.name, address=address, text=part)
            for part in self.split(text)
        ]

    @property
    def status_callback(self) -> str:
        """Where Twilio posts delivery receipts for what this channel sends."""
        return self.account.public_url.rstrip("/") + STATUS_CALLBACK_PATH

    async def check_account(self) -> str:
        """Fetch the account (read-only): its name, if it is active."""
        try:
            account = await self.client.api.v2010.accounts(self.account.account_sid).fetch_async()
        except TwilioRestException as exc:
            # 20003 is Twilio's "Authenticate": the SID and token do not go together.
            hint = " (the account SID and auth token do not match)" if exc.code == 20003 else ""
            raise AccountCheckFailed(
                f"Twilio answered {exc.status}, error {exc.code}: {exc.msg}{hint}"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AccountCheckFailed(
                f"Twilio cannot be reached: {exc or type(exc).__name__}"
            ) from None
        if account.status != "active":
            raise AccountCheckFailed(f"the account {account.friendly_name!r} is {account.status}")
        return f"account {account.friendly_name!r} is active"

    async def close(self) -> None:
        await self._http.close()


def _refuse_longer(field: str, value: str, limit: int) -> None:
    # Twilio's SIDs are 34 characters and its addresses E.164 numbers (with a channel prefix):
    # a longer one is not Twilio's, signed or not, and the message log could not keep it.
    if len(value) > limit:
        raise BadRequest(f"{field} is longer than {limit} characters")


def media_from_form(form: Mapping[str, str]) -> tuple[MediaRef, ...]:
    """Twilio's MediaUrlN / MediaContentTypeN pairs as references (nothing is downloaded)."""
    try:
        count = int(form.get("NumMedia", "0") or "0")
    except ValueError:
        raise BadRequest("NumMedia is not a number") from None
    refs = []
    for i in range(min(max(count, 0), _MAX_MEDIA)):
        url = form.get(f"MediaUrl{i}")
        if url:
            refs.append(MediaRef(url=url, content_type=form.get(f"MediaContentType{i}", "")))
    return tuple(refs)


def delivery_from_error(exc: BaseException) -> Delivery:
    """A failed send as a ``Delivery`` (never raises: ``BaseChannel.send`` must not)."""
    if isinstance(exc, TwilioRestException):
        code = str(exc.code) if exc.code is not None else str(exc.status)
        if exc.status == 429:
            return Delivery(
                status=DeliveryStatus.RATE_LIMITED,
                error_code=code,
                error=exc.msg,
                retry_after=retry_after_seen() or 1.0,
            )
        if exc.code == OPTED_OUT_CODE:
            return Delivery(status=DeliveryStatus.UNREACHABLE, error_code=code, error=exc.msg)
        if exc.status >= 500:
            return Delivery(status=DeliveryStatus.FAILED, error_code=PROVIDER_DOWN, error=exc.msg)
        return Delivery(status=DeliveryStatus.FAILED, error_code=code, error=exc.msg)
    if isinstance(exc, TimeoutError | OSError | aiohttp.ClientError):  # no answer came
        return Delivery(status=DeliveryStatus.FAILED, error_code=PROVIDER_DOWN, error=repr(exc))
    return Delivery(status=DeliveryStatus.FAILED, error_code="error", error=repr(exc))
