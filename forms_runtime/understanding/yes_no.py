"""Yes and no as residents say them, in English, Afrikaans, isiZulu and isiXhosa, and as emoji.

Only a message that is clearly one or the other counts: "yes please" and "nee dankie" do, while
"yes and no", "not sure" or an unknown word return None so the question is asked again. Numbers
are not read as answers here; the channel's option numbering turns "1"/"2" into an option id.

Example::

    parse_yes_no("Yebo")          # True
    parse_yes_no("nee dankie")    # False
    parse_yes_no("maybe")         # None
"""

from __future__ import annotations

import re

from forms_runtime.understanding.text import clean_text, fold

__all__ = ["NO_WORDS", "YES_WORDS", "parse_yes_no"]

# Whole answers (folded). Sources: everyday usage in each language; short or doubtful words
# ("hayibo", which is surprise rather than refusal, and "ja-nee", which is an Afrikaans shrug)
# are deliberately absent.
YES_WORDS: frozenset[str] = frozenset(
    {
        # English and SMS spellings
        "yes", "y", "ye", "yea", "yeah", "yeh", "yah", "ya", "yep", "yup", "yas", "yess", "yse",
        "ys", "yesh", "ok", "okay", "okey", "okie", "k", "kk", "oky", "sure", "sure thing",
        "of course", "ofcourse", "certainly", "definitely", "absolutely", "correct", "right",
        "thats right", "that is right", "true", "affirmative", "indeed", "it is", "i do",
        "yes it is", "yes i do", "yes please", "please",
        # Afrikaans
        "ja", "jaa", "jaaa", "jip", "jep", "jap", "ja seker", "seker", "reg", "korrek",
        "beslis", "natuurlik", "ja asseblief", "asseblief", "goed", "orraait", "ja dankie",
        # isiZulu
        "yebo", "yebo baba", "yebo mama", "ngiyavuma", "kulungile", "impela", "kunjalo",
        "yebo kunjalo",
        # isiXhosa
        "ewe", "ee", "ewe kunjalo", "ndiyavuma", "ewe ndiyavuma", "ewe kulungile",
    }
)  # fmt: skip

NO_WORDS: frozenset[str] = frozenset(
    {
        # English and SMS spellings
        "no", "n", "nah", "naw", "na", "nope", "nop", "noo", "nooo", "never",
        "no thanks", "no thank you", "not really", "no way", "definitely not", "certainly not",
        "absolutely not", "of course not", "not at all", "false", "incorrect", "wrong",
        "negative", "it is not", "its not", "i dont", "no it is not", "no i dont",
        # Afrikaans ("nie" is "not", but often typed alone for "nee")
        "nee", "neee", "nie", "nee dankie", "glad nie", "nooit", "beslis nie", "verkeerd",
        "nee wat",
        # isiZulu
        "cha", "qha", "hhayi", "hhayi bo", "cha bo", "cha baba", "cha mama", "angifuni",
        "angivumi", "akunjalo", "qha bo",
        # isiXhosa
        "hayi", "hayi bo", "andifuni", "andivumi", "hayi enkosi", "hayi hayi",
    }
)  # fmt: skip

# Words that may follow a clear yes or no without changing it ("yes please", "no thanks").
_POLITE = frozenset(
    {
        "please", "thanks", "thank", "you", "thx", "ta", "sir", "maam", "mam", "baba", "mama",
        "asseblief", "dankie", "meneer", "mevrou", "tannie", "oom", "ngiyabonga", "siyabonga",
        "enkosi", "ndiyabulela", "sisi", "bhuti", "bro", "it", "is", "i", "do", "am", "was",
        "definitely", "sure", "indeed", "its", "that", "thats",
    }
)  # fmt: skip

_YES_EMOJI = frozenset("👍👌✅✔☑🆗🙆💯")
_NO_EMOJI = frozenset("👎❌✖🚫❎🙅⛔")
_ALL_EMOJI = _YES_EMOJI | _NO_EMOJI
# Skin tones and the emoji variation selector do not change the meaning.
_EMOJI_NOISE = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f\ufe0e\\s]")
# "yesss", "nooooo", "jaaaa": a letter typed three times or more counts as typed twice.
_REPEATS = re.compile(r"(.)\1{2,}")


def _single_word_key(word: str) -> str:
    return _REPEATS.sub(r"\1\1", word)


def _polarity(folded: str) -> bool | None:
    if folded in YES_WORDS:
        return True
    if folded in NO_WORDS:
        return False
    squeezed = _single_word_key(folded)
    if squeezed in YES_WORDS:
        return True
    if squeezed in NO_WORDS:
        return False
    return None


def _from_emoji(cleaned: str) -> bool | None:
    symbols = set(_EMOJI_NOISE.sub("", cleaned))
    if not symbols:
        return None
    if symbols <= _YES_EMOJI:
        return True
    if symbols <= _NO_EMOJI:
        return False
    return None


def parse_yes_no(text: str) -> bool | None:
    """True for a yes, False for a no, None when the answer is neither or both.

    Example::

        parse_yes_no("ewe")   # True
    """
    cleaned = clean_text(text, 200)
    if not cleaned:
        return None
    folded = fold(cleaned)
    if not folded:
        return _from_emoji(cleaned)
    answer = _from_words(folded)
    if answer is not None and not cleaned.isascii():
        # "yes 👎" says two things; ask again rather than guess.
        emoji = set(cleaned) & _ALL_EMOJI
        if emoji and emoji <= (_NO_EMOJI if answer else _YES_EMOJI):
            return None
    return answer


def _from_words(folded: str) -> bool | None:
    answer = _polarity(folded)
    if answer is not None:
        return answer
    words = folded.split()
    if len(words) > 6:
        return None
    if words[0].isdecimal():
        # "1 yes" copies the numbered option together with its label.
        words = words[1:]
        if not words:
            return None
        answer = _polarity(" ".join(words))
        if answer is not None:
            return answer
    # A clear first word (or two) followed only by politeness: "yes please", "no thanks baba".
    for head in (2, 1):
        if len(words) <= head:
            continue
        answer = _polarity(" ".join(words[:head]))
        if answer is None:
            continue
        rest = words[head:]
        if all(w in _POLITE or (w == "not" and answer is False) for w in rest):
            return answer
    return None
