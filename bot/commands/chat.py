"""``citybot chat``: complete any standard form in this terminal, as a resident would see it.

The conversation is the real engine (``forms_runtime.engine``) and each reply is rendered by the
real channel code: ``--channel sms`` shows every SMS with its segment count and alphabet,
``--channel telegram`` the buttons a resident would tap (type the number or the words),
``--channel whatsapp`` the numbered text. Nothing is sent anywhere and nothing is stored: a
finished form shows its confirmation and the answers that would be filed.

Input is read line by line, so a script can pipe a whole conversation in::

    printf '1\\n/location -33.9 18.6\\n...' | citybot chat --channel sms --locale zu

``/location LAT LON`` sends a GPS pin, ``/photo URL [TYPE]`` a photo, ``/menu`` goes back to the
list of forms, ``/quit`` ends (as does the end of the input).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from channels.base import BadRequest, BaseChannel
from channels.sms_render import describe_sms
from channels.telegram import TelegramChannel
from channels.terminal import TerminalChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.types import InboundMessage
from channels.whatsapp import WhatsAppChannel
from forms_runtime import engine
from forms_runtime.effects import Ask, Effect, Inbound, InputKind, OptionView, Submit
from forms_runtime.i18n import N_, normalise_locale, tr
from forms_runtime.loader import standard_forms
from forms_runtime.model import Form

__all__ = ["ChatSession", "run"]

MENU_PROMPT = N_("Which service do you need?")


def run(args: argparse.Namespace) -> int:
    session = ChatSession(channel=args.channel, locale=args.locale, out=sys.stdout)
    try:
        return session.run(sys.stdin, form_id=args.form)
    except KeyboardInterrupt:
        return 130


class ChatSession:
    """One terminal conversation: pick a form, answer it, see each reply as the channel shows it."""

    def __init__(self, *, channel: str, locale: str, out: TextIO) -> None:
        self.channel_name = channel
        self.locale = normalise_locale(locale)
        self.out = out
        self.forms = standard_forms()
        self.form: Form | None = None
        self.state: engine.FormState | None = None
        self.terminal = TerminalChannel(out)
        self.renderer = _renderer(channel, self.terminal)
        self._count = 0

    def run(self, lines: TextIO, *, form_id: str | None = None) -> int:
        if form_id is not None:
            if form_id not in self.forms:
                self.out.write(f"No form called {form_id!r}. Forms: {', '.join(self.forms)}\n")
                return 2
            self._open(self.forms[form_id])
        else:
            self._menu()
        for line in lines:
            if not self.handle(line):
                break
        return 0

    def handle(self, line: str) -> bool:
        """Take one typed line; False when the person asked to quit."""
        command = line.strip()
        if command in ("/quit", "/exit"):
            return False
        if command == "/menu":
            self.form = self.state = None
            self._menu()
            return True
        self._count += 1
        try:
            inbound = self.terminal.parse_line(line, f"terminal:{self._count}")
        except BadRequest as exc:
            self._print(str(exc))
            return True
        if self.form is None or self.state is None:
            self._pick(inbound.text or "")
            return True
        self.state, effects = engine.step(self.form, self.state, _to_engine(inbound))
        self.locale = str(self.state.get("locale", self.locale))
        self._show(effects)
        if any(isinstance(e, Submit) for e in effects):
            self.form = self.state = None
            self._menu()
        return True

    def _menu(self) -> None:
        menu = Ask(
            step_id="menu",
            prompt=tr(self.locale, MENU_PROMPT),
            kind=InputKind.CHOICE,
            options=tuple(OptionView(f.id, tr(self.locale, f.title)) for f in self.forms.values()),
        )
        self._show([menu])

    def _pick(self, text: str) -> None:
        forms = list(self.forms.values())
        text = text.strip()
        if text.isdigit() and 1 <= int(text) <= len(forms):
            self._open(forms[int(text) - 1])
        elif text in self.forms:
            self._open(self.forms[text])
        else:
            self._menu()

    def _open(self, form: Form) -> None:
        self.form = form
        self.state, effects = engine.start(form, self.locale)
        self._show(effects)

    def _show(self, effects: Sequence[Effect]) -> None:
        for message in self.renderer.render(effects, self.locale, self.terminal.address):
            text = message.text
            if self.channel_name == "sms":
                text = f"[SMS: {describe_sms(message.text)}]\n{text}"
            if message.buttons:
                keys = " ".join(f"[{n}: {b.label}]" for n, b in enumerate(message.buttons, 1))
                text = f"{text}\n{keys}"
            self._print(text)
        for effect in effects:
            if isinstance(effect, Submit):
                answers = json.dumps(effect.answers, ensure_ascii=False, default=str)
                self._print(f"(not filed from the terminal; {effect.service_code}: {answers})")

    def _print(self, text: str) -> None:
        self.out.write(text + "\n\n")
        self.out.flush()


def _to_engine(message: InboundMessage) -> Inbound:
    return Inbound(
        text=message.text,
        option_id=message.option_id,
        location=message.location,
        media=message.media[0] if message.media else None,
    )


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
