"""Microseconds per call of the pure text work an SMS reply costs: render, transliterate, split.

Texts are what the engine really says: every question, re-ask and review screen of the standard
forms in en, af, zu and xh, walked with realistic answers (the same walk as forms_engine.py), plus
long texts that must be cut (a 20,000-character message in each language, and one with curly
quotes, euro signs and an emoji so the slower alphabets are exercised too).

Run: .venv/bin/python bench/sms_render.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from channels.render_text import render_plain, split_sentences
from channels.sms_render import split_for_length, split_for_sms
from forms_runtime.effects import Ask, Effect, Reject, Review, Submit
from forms_runtime.engine import start, step
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from forms_runtime.sample_answers import sample_answer
from forms_runtime.sms import segments, to_gsm7

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
LOCALES = ("en", "af", "zu", "xh")


def turns(seed: int = 7, walks: int = 200) -> list[tuple[list[Effect], str]]:
    """(effects, locale) of every turn of ``walks`` walks through the standard forms."""
    forms = list(standard_forms().values())
    default_gazetteer()
    rng = random.Random(seed)
    out: list[tuple[list[Effect], str]] = []
    for n in range(walks):
        form = forms[n % len(forms)]
        locale = LOCALES[n % len(LOCALES)]
        state, effects = start(form, locale)
        out.append((effects, locale))
        for _ in range(60):
            last = effects[-1] if effects else None
            if not isinstance(last, Ask | Review):
                break
            answer = sample_answer(last, rng, rejected=isinstance(effects[0], Reject))
            inbound = dataclasses.replace(answer, received_at=NOW)
            state, effects = step(form, state, inbound)
            if effects and not isinstance(effects[-1], Submit | Ask | Review | Reject):
                break
            out.append((effects, locale))
    return out


def long_texts(short: Sequence[str]) -> dict[str, str]:
    """A 20,000-character message per locale, and one in UCS-2 with typography to replace."""
    by_locale: dict[str, str] = {}
    for i, locale in enumerate(LOCALES):
        sample = [t for j, t in enumerate(short) if j % len(LOCALES) == i]
        text = ""
        while len(text) < 20_000:
            text += " ".join(sample) + " "
        by_locale[f"20k {locale}"] = text[:20_000]
    mixed = "It’s “fixed” – see [ward 94] for €5… sê 😀. " * 460
    by_locale["20k mixed"] = mixed[:20_000]
    return by_locale


def per_call(fn: Callable[[], object], calls: int, repeat: int) -> float:
    """Best of ``repeat`` runs, in microseconds per call (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - began) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    all_turns = turns()
    texts = [render_plain(effects, locale) for effects, locale in all_turns]
    longs = long_texts(texts)
    n = len(all_turns)
    print(f"{n} turns, texts of {min(map(len, texts))}-{max(map(len, texts))} characters")

    def render_all() -> None:
        for effects, locale in all_turns:
            render_plain(effects, locale)

    def split_all() -> None:
        for text in texts:
            split_for_sms(text, max_segments=3)

    def reply_all() -> None:
        for effects, locale in all_turns:
            split_for_sms(render_plain(effects, locale), max_segments=3)

    def pieces(fn: Callable[[str], object]) -> Callable[[], None]:
        def run() -> None:
            for text in texts:
                fn(text)

        return run

    rows = [
        ("render_plain (one turn)", render_all, n),
        ("split_for_sms (one turn's text)", split_all, n),
        ("render + split (one SMS reply)", reply_all, n),
        ("  to_gsm7", pieces(to_gsm7), n),
        ("  segments", pieces(segments), n),
        ("  split_sentences", pieces(split_sentences), n),
    ]
    for label, fn, calls in rows:
        print(f"{label:38} {per_call(fn, calls, args.repeat):10.2f} us")
    for label, text in longs.items():
        sms = per_call(lambda t=text: split_for_sms(t, max_segments=3), 1, args.repeat)
        length = per_call(lambda t=text: split_for_length(t, 4096), 1, args.repeat)
        print(f"{'split_for_sms ' + label:38} {sms:10.0f} us   split_for_length {length:8.0f} us")


if __name__ == "__main__":
    main()
