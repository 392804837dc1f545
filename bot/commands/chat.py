"""``citybot chat``: talk to citybot in this terminal, as a resident would on a channel.

Every line goes through the same turn loop and router as a message from Telegram, SMS or the web
chat: free text picks the service ("water is pouring out of the road"), STOP, HELP, MENU,
LANGUAGE, STATUS and the consent question all work, and each reply is rendered by the real
channel code: ``--channel sms`` shows every SMS with its segment count and alphabet,
``--channel telegram`` the buttons a resident would tap (type the number or the words),
``--channel whatsapp`` the numbered text. The conversation is kept in a throw-away SQLite
database (``--database`` keeps it elsewhere); nothing is sent to the city: a finished report
shows its reference.

Input is read line by line, so a script can pipe a whole conversation in::

    printf 'pothole\\n1\\n/location -33.9 18.6\\n...' | citybot chat --channel sms --locale zu

``/location LAT LON`` sends a GPS pin, ``/photo URL [TYPE]`` a photo, ``/quit`` ends (as does
the end of the input).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.bootstrap import turn_loop_on
from channels.base import BadRequest, BaseChannel
from channels.sms_render import describe_sms
from channels.telegram import TelegramChannel
from channels.terminal import TerminalChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.types import InboundKind, InboundMessage
from channels.whatsapp import WhatsAppChannel
from conversations.turn import TurnLoop
from forms_runtime.effects import Effect
from forms_runtime.i18n import normalise_locale
from forms_runtime.loader import standard_forms
from storage.migrate import upgrade_database

__all__ = ["ChatSession", "run"]


def run(args: argparse.Namespace) -> int:
    session = ChatSession(
        channel=args.channel, locale=args.locale, out=sys.stdout, database_url=args.database
    )
    try:
        return session.run(sys.stdin, form_id=args.form)
    except KeyboardInterrupt:
        return 130


class ChatSession:
    """One terminal conversation through the real turn loop, each reply shown as the channel
    shows it."""

    def __init__(
        self,
        *,
        channel: str,
        locale: str,
        out: TextIO,
        database_url: str | None = None,
        address: str = "terminal",
    ) -> None:
        self.channel_name = channel
        self.locale = normalise_locale(locale)
        self.out = out
        self.database_url = database_url
        self.terminal = TerminalChannel(out, address)
        self.renderer = _renderer(channel, self.terminal)

    def run(self, lines: TextIO, *, form_id: str | None = None) -> int:
        if form_id is not None and form_id not in standard_forms():
            self.out.write(f"No form called {form_id!r}. Forms: {', '.join(standard_forms())}\n")
            return 2
        if self.database_url is not None:
            return asyncio.run(self._run(self.database_url, lines, form_id))
        with tempfile.TemporaryDirectory(prefix="citybot-chat-") as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'chat.sqlite3'}"
            return asyncio.run(self._run(url, lines, form_id))

    async def _run(self, url: str, lines: TextIO, form_id: str | None) -> int:
        await upgrade_database(url)
        # A terminal is one resident: no rate limit gets in the way of a pasted script.
        loop = turn_loop_on(url, rate_per_second=1000.0, rate_burst=1000)
        try:
            if form_id is not None:
                await self._turn(loop, self._message(kind=InboundKind.BUTTON, option_id=form_id))
            for line in lines:
                if line.strip() in ("/quit", "/exit"):
                    break
                try:
                    inbound = self.terminal.parse_line(line, "")
                except BadRequest as exc:
                    self._print(str(exc))
                    continue
                await self._turn(
                    loop,
                    self._message(
                        kind=inbound.kind,
                        text=inbound.text,
                        location=inbound.location,
                        media=inbound.media,
                    ),
                )
        finally:
            await loop.close()
        return 0

    def _message(self, **fields: object) -> InboundMessage:
        return InboundMessage(
            channel=self.channel_name,
            address=self.terminal.address,
            message_id=f"terminal:{uuid.uuid4().hex}",
            language_hint=self.locale,
            **fields,  # type: ignore[arg-type]
        )

    async def _turn(self, loop: TurnLoop, message: InboundMessage) -> None:
        result = await loop.handle(message)
        self.locale = result.locale
        self._show(result.effects, result.locale, result.reference)

    def _show(self, effects: Sequence[Effect], locale: str, reference: str | None) -> None:
        for message in self.renderer.render(effects, locale, self.terminal.address):
            text = message.text
            if self.channel_name == "sms":
                text = f"[SMS: {describe_sms(message.text)}]\n{text}"
            if message.buttons:
                keys = " ".join(f"[{n}: {b.label}]" for n, b in enumerate(message.buttons, 1))
                text = f"{text}\n{keys}"
            self._print(text)
        if reference is not None:
            self._print(f"(report {reference} kept in this chat's database; not sent to the city)")

    def _print(self, text: str) -> None:
        self.out.write(text + "\n\n")
        self.out.flush()


def _renderer(name: str, terminal: TerminalChannel) -> BaseChannel:
    # Only ``render`` is used: the credentials are placeholders and nothing is ever sent.
    account = TwilioAccount("AC" + "0" * 32, "terminal", "http://localhost:8080")
    if name == "sms":
        return SmsChannel(account, "+10000000000")
    if name == "whatsapp":
        return WhatsAppChannel(account, "+10000000000")
    if name == "telegram":
        return TelegramChannel("0:terminal", None, api_base_url="http://127.0.0.1:9")
    return terminal
