"""Texts cut to fit SMS: GSM-7 where possible, at most a few segments per message.

Typographic characters with a plain equivalent (curly quotes, dashes, ellipses) are transliterated
so a message stays in GSM-7 (160 characters a segment); a text that truly needs another alphabet
(Afrikaans ê, an emoji a resident would expect back) stays UCS-2. A long text is split after
sentence ends, then between words, so each message costs at most ``max_segments`` segments. Used
by SMS and WhatsApp (whose Twilio bodies are capped too) and by ``citybot chat --channel sms``.

Example::

    split_for_sms("It’s fixed. " * 60, max_segments=3)
    # ["It's fixed. It's fixed. ...", "It's fixed. ..."]  each at most 3 segments, GSM-7
"""

from __future__ import annotations

from collections.abc import Callable

from channels.render_text import split_sentences
from forms_runtime.sms import encoding, segments, to_gsm7

__all__ = ["describe_sms", "split_for_length", "split_for_sms"]

_Fits = Callable[[str], bool]


def split_for_sms(text: str, *, max_segments: int = 3) -> list[str]:
    """GSM-7-safe messages of at most ``max_segments`` segments each, split at sentence ends."""
    text = to_gsm7(text).strip()
    if segments(text) <= max_segments:
        return [text]
    return _pack(text, lambda candidate: segments(candidate) <= max_segments)


def split_for_length(text: str, max_length: int) -> list[str]:
    """Messages of at most ``max_length`` characters, split at sentence ends (Telegram, WhatsApp)."""
    text = text.strip()
    if len(text) <= max_length:
        return [text]
    return _pack(text, lambda candidate: len(candidate) <= max_length)


def describe_sms(text: str) -> str:
    """How an SMS costs: '2 segments, GSM-7' (what ``citybot chat --channel sms`` shows)."""
    count = segments(text)
    return f"{count} segment{'s' if count != 1 else ''}, {encoding(text)}"


def _pack(text: str, fits: _Fits) -> list[str]:
    messages: list[str] = []
    current = ""
    for piece in _pieces(text, fits):
        candidate = current + piece
        if fits(candidate.strip()):
            current = candidate
            continue
        if current.strip():
            messages.append(current.strip())
        current = piece
    if current.strip():
        messages.append(current.strip())
    return messages


def _pieces(text: str, fits: _Fits) -> list[str]:
    """Sentences; a sentence too long alone is cut between words, a word too long by characters."""
    out: list[str] = []
    for sentence in split_sentences(text):
        if fits(sentence.strip()):
            out.append(sentence)
            continue
        for word in sentence.split(" "):
            chunk = word + " "
            if fits(chunk.strip()):
                out.append(chunk)
                continue
            part = ""
            for ch in chunk:
                if part and not fits(part + ch):
                    out.append(part)
                    part = ""
                part += ch
            out.append(part)
    return out
