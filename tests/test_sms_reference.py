"""The fast SMS text paths give exactly what the plain per-character versions gave.

``forms_runtime.sms`` and ``channels.render_text.split_sentences`` replaced Python loops over each
character with regex, ``bytes.translate`` and ``str.translate`` work. The loops are kept here,
unchanged, as the reference: for any text the fast versions must give the same segments, the same
transliteration and the same cuts, so every SMS a resident gets is byte for byte what it was.
"""

from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from channels.render_text import split_sentences
from channels.sms_render import split_for_length, split_for_sms
from forms_runtime.sms import (
    _EQUIVALENTS,
    _GSM7,
    GSM7_EXTENDED,
    encoding,
    is_gsm7,
    segments,
    to_gsm7,
    ucs2_forcing_chars,
)

# --- the reference: the per-character versions, as they were -----------------------------------


def ref_is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


def _ref_pack(units: list[int], single: int, part: int) -> int:
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for size in units:
        if used + size > part:
            count += 1
            used = 0
        used += size
    return count


def ref_segments(text: str) -> int:
    if ref_is_gsm7(text):
        return _ref_pack([2 if ch in GSM7_EXTENDED else 1 for ch in text], 160, 153)
    return _ref_pack([2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67)


def ref_to_gsm7(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    return "".join(ch if ch in _GSM7 else _EQUIVALENTS.get(ch, ch) for ch in text)


def ref_ucs2_forcing_chars(text: str) -> list[str]:
    found: list[str] = []
    for ch in text:
        if ch not in _GSM7 and ch in _EQUIVALENTS and ch not in found:
            found.append(ch)
    return found


def ref_split_sentences(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        end: int | None = None
        if ch == "\n":
            end = i + 1
        elif ch in ".!?" and i + 1 < n and text[i + 1] == " ":
            end = i + 2
        if end is not None:
            pieces.append(text[start:end])
            start = i = end
            continue
        i += 1
    if start < n:
        pieces.append(text[start:])
    return pieces


# --- texts that reach every branch --------------------------------------------------------------

# Plain GSM-7, the extension table, characters with a GSM-7 look-alike, letters that need UCS-2
# (Afrikaans ê, isiXhosa clicks are plain letters), a combining accent, astral characters (two
# UCS-2 units), ASCII that is not GSM-7 (tab, backquote, controls), and sentence ends.
_INTERESTING = (
    "aZ09 @£$¥èéÇØΔ_ΦΓ!\"#¤%&'()*+,-/:;<=>¡ÄÖÑÜ§¿äöñüà"
    + "".join(sorted(GSM7_EXTENDED))
    + "".join(sorted(_EQUIVALENTS))
    + "êëôûş\u0301\u0327😀𝄞\t`\x00\x1b\x7f"
    + ".!? \n\r"
)
chars = st.sampled_from(_INTERESTING)
texts = st.one_of(
    st.text(),
    st.text(chars, max_size=600),
    # Long runs of one kind, with a few others mixed in, to land on segment boundaries.
    st.builds(
        lambda base, n, extra, at: (base * n)[:at] + extra + (base * n)[at:],
        st.sampled_from(["a", "é", "ş", "a€", "ş😀", "Hi. ", "€", "😀"]),
        st.integers(min_value=0, max_value=330),
        st.text(chars, max_size=4),
        st.integers(min_value=0, max_value=330),
    ),
)


@given(texts)
@settings(max_examples=500)
@example("a" * 152 + "€" + "a" * 152)
@example("ş" * 66 + "😀" + "ş" * 66)
@example("€" * 81)
@example("😀" * 36)
@example("a`" * 80)
def test_alphabet_and_segments_match_the_reference(text: str) -> None:
    assert is_gsm7(text) is ref_is_gsm7(text)
    assert encoding(text) == ("GSM-7" if ref_is_gsm7(text) else "UCS-2")
    assert segments(text) == ref_segments(text)


@given(texts)
@settings(max_examples=500)
@example("“It’s here” – 3\u00a0km… • ok\u200b\tx`y")
@example("cafe\u0301 ç")
def test_transliteration_matches_the_reference(text: str) -> None:
    assert to_gsm7(text) == ref_to_gsm7(text)
    assert ucs2_forcing_chars(text) == ref_ucs2_forcing_chars(text)


@given(texts)
@settings(max_examples=500)
@example("")
@example("One. Two! Three?\nFour")
@example(". ! ?  .\n\n. ")
@example("a.b. c.")
def test_sentence_cuts_match_the_reference(text: str) -> None:
    assert split_sentences(text) == ref_split_sentences(text)


# --- whole splits: the packing is unchanged, so it runs on the reference pieces -----------------


def ref_split_for_sms(text: str, max_segments: int) -> list[str]:
    text = ref_to_gsm7(text).strip()
    if ref_segments(text) <= max_segments:
        return [text]
    fits = lambda candidate: ref_segments(candidate) <= max_segments  # noqa: E731
    return _ref_pack_messages(text, fits)


def ref_split_for_length(text: str, max_length: int) -> list[str]:
    text = text.strip()
    if len(text) <= max_length:
        return [text]
    return _ref_pack_messages(text, lambda candidate: len(candidate) <= max_length)


def _ref_pack_messages(text: str, fits: object) -> list[str]:
    assert callable(fits)
    messages: list[str] = []
    current = ""
    for piece in _ref_pieces(text, fits):
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


def _ref_pieces(text: str, fits: object) -> list[str]:
    assert callable(fits)
    out: list[str] = []
    for sentence in ref_split_sentences(text):
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


long_texts = st.lists(
    st.sampled_from(
        [
            "Where is the road damage? ",
            "Waar is die padskade?\n",
            "Uphi umonakalo emgwaqweni? ",
            "Uphi umonakalo endleleni?! ",
            "It’s “fixed” – see [ward 94] for €5… ",
            "Sê vir my. ",
            "😀 ",
            "x" * 200 + " ",
            "Reply 1 for Pothole\n",
        ]
    ),
    max_size=60,
).map("".join)


@given(st.one_of(texts, long_texts), st.integers(min_value=1, max_value=4))
@settings(max_examples=300, deadline=None)
def test_sms_splits_match_the_reference(text: str, max_segments: int) -> None:
    assert split_for_sms(text, max_segments=max_segments) == ref_split_for_sms(text, max_segments)


@given(st.one_of(texts, long_texts), st.integers(min_value=5, max_value=500))
@settings(max_examples=300, deadline=None)
def test_length_splits_match_the_reference(text: str, limit: int) -> None:
    assert split_for_length(text, limit) == ref_split_for_length(text, limit)
