"""Accuracy and speed of ``detect_language`` over a labelled sample of first messages.

Run: .venv/bin/python bench/language_detection.py [--seconds 1] [--show-misses]
The sample is tests/understanding/language_sample.tsv (af, zu, xh and English distractors, which
must give None). Prints accuracy per label, every miss with --show-misses, and microseconds per
call, cold (the per-word memo cleared before each call) and warm (as a running process sees it).
Then the same over text nobody wrote for the detector: the bot's own texts in each catalog, and
their English sources (which must give None).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from forms_runtime import i18n
from forms_runtime.understanding.language import DETECTED_LOCALES, _word_evidence, detect_language

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "understanding" / "language_sample.tsv"


def load_sample(path: Path = SAMPLE) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, text = line.split("\t", 1)
            rows.append((label, text))
    return rows


def _predicted(text: str) -> str:
    guess = detect_language(text)
    return guess.locale if guess else "en"


def _per_call(texts: list[str], seconds: float, *, cold: bool) -> float:
    calls = 0
    spent = 0.0
    while spent < seconds:
        for text in texts:
            if cold:
                _word_evidence.cache_clear()
            start = time.perf_counter()
            detect_language(text)
            spent += time.perf_counter() - start
            calls += 1
    return spent / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    sample = load_sample()
    labels = sorted({label for label, _ in sample})
    total_right = 0
    for label in labels:
        rows = [text for lab, text in sample if lab == label]
        right = sum(_predicted(text) == label for text in rows)
        total_right += right
        print(f"{label}: {right}/{len(rows)} = {right / len(rows):.1%}")
        if args.show_misses:
            for text in rows:
                if _predicted(text) != label:
                    print(f"    miss: {text!r} -> {detect_language(text)}")
    print(f"all: {total_right}/{len(sample)} = {total_right / len(sample):.1%}")
    for locale in DETECTED_LOCALES:
        texts = list(i18n.catalog(locale).values())
        found = [_predicted(text) for text in texts]
        wrong = sum(1 for p in found if p not in ("en", locale))
        print(
            f"catalog {locale}: {found.count(locale)}/{len(texts)} detected, "
            f"{wrong} taken for another language"
        )
    english = list(i18n.catalog("af"))
    taken = sum(1 for text in english if detect_language(text))
    print(f"catalog English sources: {taken}/{len(english)} taken for af/zu/xh")
    texts = [text for _, text in sample]
    cold = _per_call(texts, args.seconds, cold=True)
    warm = _per_call(texts, args.seconds, cold=False)
    print(f"per call: {cold:.1f} µs cold, {warm:.1f} µs warm ({len(texts)} phrases)")


if __name__ == "__main__":
    main()
