"""The resident's language from their first words: Afrikaans, isiZulu or isiXhosa, else None.

English is citybot's default, so only a message that is clearly written in af, zu or xh gives a
guess; English, a name, a place, a number or too few words give ``None`` ("keep the default").
The caller decides what to do with a guess (for example, offer the privacy notice in that language
with a one-tap way back); this module only reads text, without I/O, in microseconds.

How it reads a message: each of its first words is looked up in a small lexicon of words that mark
a language (greetings and thanks weigh most; words isiZulu and isiXhosa share count for both, so
they tell Nguni from English but never decide between the two). A word not in the lexicon is
tried, in turn, against stems that only one language uses (``-ncede-`` isiXhosa, ``-gwaq-``
isiZulu), the first-person prefixes (``ngi-`` isiZulu, ``ndi-`` isiXhosa), the lexicon again with a
typo or two (Damerau-Levenshtein distance 1, or 2 for words of 10 letters and more; never for
words under 5 letters, where one letter turns "bare" into "baie"), and finally the
shape of a Nguni word (open syllables, Nguni consonant clusters), which counts for both. Common
English words count for English.

The leading language wins when it has at least ``MIN_SCORE`` and ``confidence`` (its score over
the scores of itself, the runner-up and English together) is at least ``MIN_CONFIDENCE``: isiZulu
and isiXhosa must be told apart by a word of their own, and English text with one Zulu greeting in
it stays English.

Example::

    detect_language("Sawubona, amanzi ayaphuma emgwaqweni")
    # LanguageGuess(locale='zu', confidence=0.78, evidence=('sawubona', 'emgwaqweni', ...))
    detect_language("Molo, amanzi ayavuza esitalatweni").locale   # 'xh'
    detect_language("Ek wil 'n slaggat aanmeld").locale           # 'af'
    detect_language("There is a pothole on Main Road")             # None
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from rapidfuzz.distance import OSA

from forms_runtime.understanding.text import fold

__all__ = ["DETECTED_LOCALES", "MIN_CONFIDENCE", "MIN_SCORE", "LanguageGuess", "detect_language"]

DETECTED_LOCALES: tuple[str, ...] = ("af", "zu", "xh")
# A greeting alone (3) or one distinctive word and a little more is enough; one weak word is not.
MIN_SCORE = 2.0
MIN_CONFIDENCE = 0.6
# "First words": a long message is decided by its start, and the work per call stays bounded.
_MAX_WORDS = 40
_MAX_CHARS = 400


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """A language read from a message.

    ``locale`` is one of ``DETECTED_LOCALES``; ``confidence`` is from ``MIN_CONFIDENCE`` to 1;
    ``evidence`` is the words (folded: lower case, no accents) that counted for it, in order.
    """

    locale: str
    confidence: float
    evidence: tuple[str, ...]


# (language, weight, words). "nguni" counts for both zu and xh. Words English shares with
# Afrikaans ("is", "in", "my", "water", "was", "more") are left out: they prove nothing.
_LEXICON: tuple[tuple[str, float, str], ...] = (
    # --- Afrikaans ---
    ("af", 3.0, "goeiemore goeiedag goeienaand goeiemiddag dankie asseblief slaggat slaggate"
                " aanmeld rapporteer kragonderbreking totsiens"),
    ("af", 2.5, "ek nie goeie asb baie"),
    ("af", 2.0, "n het wil jy ons julle hulle daar daars hier geen wat waar vir sal moet gaan"
                " gister gisteraand vandag sedert straat straatlig straatligte lig ligte krag"
                " elektrisiteit vullis riool rioolwater lek lekkasie waterlek pyp gebars gat hulp"
                " probleem ook maar dit nou werk skoon kraan brandkraan paal stukkend donker vuil"
                " afval asblik asblikke opgetel gehaal leeggemaak verstop oorloop jou daai hierdie"
                " saam groot klein dae sonder staan steeds buite binne voor agter onder haai nee"
                " graag klagte nodig soek bly iemand gestort regmaak lank vat vraag rekening"
                " heeltyd flikker buurt teerpad gaan kyk eks dis kom nog"),
    ("af", 1.5, "die en hoe kan huis weer uit oor meer middag dag te"),
    ("af", 1.0, "van met om op ja"),
    # --- isiZulu ---
    ("zu", 3.0, "sawubona sanibonani ngiyabonga siyabonga"),
    ("zu", 2.0, "yebo ngicela ngiyacela ngifuna ngiyafuna ngidinga manje lapha futhi kanjani yini"
                " ukuthi kahle namuhla isikhathi inkinga usizo ugesi nogesi yogesi udoti umgodi"
                " imigodi umgwaqo emgwaqweni kwami wami yami lami sami zami bami hhayi lokhu"
                " ngempela impela ngisize ngisizeni ningisize sisize nisisize ngiyaphila iphayiphi"
                " liqhumile amapayipi aqhumile isibani izibani sonto kusukela selokhu izinsuku"
                " iviki ngokushesha angazi ngiyavuma leli lesi kuleli eduze kunini nizofika"
                " ningilekelele ukukhuluma ngosizo"),
    ("zu", 1.5, "cha ngoba kuphi"),
    # --- isiXhosa ---
    ("xh", 3.0, "molo molweni mholo enkosi ndiyabulela siyabulela"),
    ("xh", 2.0, "ewe ndicela ndiyacela ndifuna ndiyafuna ndidinga ngoku apha kwakhona ntoni"
                " ukuba kakuhle ngomso ixesha ingxaki uncedo nceda ndincede ndincedeni nindincede"
                " nisincede umbane mbane yombane nombane inkunkuma umngxuma imingxuma"
                " esitalatweni esitratweni isitalato isitrato sesitrato zesitrato umbhobho"
                " ugqabhukile yam wam lam sam kwam zam bam apho kuba ngenxa isibane izibane"
                " ndiphilile ukususela iintsuku iveki veki ngokukhawuleza andazi ndiyavuma"
                " tata nyani sele ecaleni phandle eninzi ukuthetha ngoncedo ilindle"),
    ("xh", 1.5, "hayi njani phi xa oku"),
    # --- both: tells Nguni from English and Afrikaans, not isiZulu from isiXhosa ---
    ("nguni", 1.0, "amanzi manzi ayavuza ayaphuma ayachitheka ukuvuza kukhona kukho akukho awukho"
                   " ayikho asisebenzi ayisebenzi azikhanyi kakhulu izolo ebusuku ekuseni"
                   " ngamanzi baba mama sisi bhuti unjani ninjani kunjani sicela indlela endleleni"
                   " indlu kwendlu endlwini ekhaya uxolo kudala ngaphandle kusasa ipayipi"
                   " umgqomo ukubika ukuxela omkhulu nini kodwa nje"),
    # --- English ---
    ("en", 1.0, "the a an is there my i im am are was were have has had no not and of on at to"
                " for with it its this that please street road leak pothole hole light lights"
                " streetlight power electricity broken help report want need since yesterday"
                " today outside house our we you hello hi hey good morning thanks thank burst"
                " pipe rubbish bin sewage drain blocked working name live someone come fix can"
                " after still but big nobody off two weeks week been have near school next"
                " everywhere pouring out be so much collected smells dumping illegal taxi"
                " rank overflowing already reported sister monday"),
)  # fmt: skip

# Stems only one language uses, inside words the lexicon does not list (verb forms, locatives).
_STEMS: dict[str, tuple[str, ...]] = {
    "zu": ("gwaq", "sisiz", "ngisiz", "usizo", "nkinga", "ugesi", "khulum", "shesha", "bonga",
           "lekelel", "namuhla", "kusukela"),
    "xh": ("nced", "ngxaki", "mbane", "nkunkuma", "bulela", "ususela", "sitalat", "sitrat",
           "thetha", "khawuleza", "ngxuma", "bhobho"),
    "af": ("slaggat", "aanmeld", "straat", "elektrisiteit", "vullis", "riool", "asblik"),
}  # fmt: skip
_STEM_WEIGHT = 1.5
_PREFIX_WEIGHT = 1.5
_FUZZY_FACTOR = 0.8
_SHAPE_WEIGHT = 0.5

# Consonant clusters a Nguni syllable may start with (before its vowel); "w" and "y" may follow.
_NGUNI_ONSETS = (
    "b bh c ch d dl dy f g gc gq gx h hh hl j k kh kl l m mb mf mh mp mv n nc nd ndl ng ngc ngq"
    " ngx nhl nj nk nq ns nt nts ntsh ny nz p ph q qh s sh t th tl ts tsh ty v x xh z mn mm"
)
_ONSET = "|".join(sorted(_NGUNI_ONSETS.split(), key=len, reverse=True))
_NGUNI_SHAPE = re.compile(rf"[aeiou]?(?:(?:{_ONSET})[wy]?[aeiou]|[aeiou])+")
_WORD = re.compile(r"[a-z]+")


def _build_lexicon() -> dict[str, tuple[tuple[str, float], ...]]:
    lexicon: dict[str, list[tuple[str, float]]] = {}
    for language, weight, words in _LEXICON:
        for word in words.split():
            languages = ("zu", "xh") if language == "nguni" else (language,)
            entry = lexicon.setdefault(word, [])
            entry += [(lang, weight) for lang in languages if lang not in {e[0] for e in entry}]
    return {word: tuple(entry) for word, entry in lexicon.items()}


_LEXICON_WORDS = _build_lexicon()


def _deletions(word: str, depth: int) -> set[str]:
    """``word`` with up to ``depth`` letters taken out: the keys of a symmetric-delete index."""
    found = {word}
    for n in range(1, depth + 1):
        for gone in combinations(range(len(word)), n):
            found.add("".join(ch for i, ch in enumerate(word) if i not in gone))
    return found


def _max_typos(word: str) -> int:
    return 2 if len(word) >= 10 else 1


# Symmetric-delete index (as in SymSpell): a word and a typo of it share a deletion, so the
# candidates for a word are found with a few dictionary look-ups instead of a scan.
def _build_fuzzy_index() -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for word in _LEXICON_WORDS:
        if len(word) >= 5:
            for key in _deletions(word, _max_typos(word)):
                index.setdefault(key, set()).add(word)
    return index


_FUZZY_INDEX = _build_fuzzy_index()

_STEM_PATTERNS = {lang: re.compile("|".join(stems)) for lang, stems in _STEMS.items()}


@lru_cache(maxsize=8192)
def _word_evidence(word: str) -> tuple[tuple[str, float], ...]:
    """(language, weight) pairs one word gives; "zu" and "xh" both for a shared Nguni word."""
    known = _LEXICON_WORDS.get(word)
    if known is not None:
        return known
    if len(word) >= 5:
        stems = tuple((lang, _STEM_WEIGHT) for lang, p in _STEM_PATTERNS.items() if p.search(word))
        if len(stems) == 1:
            return stems
        if word.startswith(("ngi", "angi")):
            return (("zu", _PREFIX_WEIGHT),)
        if word.startswith(("ndi", "andi", "ii")):
            return (("xh", _PREFIX_WEIGHT),)
    if len(word) >= 5:
        typo = _typo_of(word)
        if typo is not None:
            return tuple((lang, weight * _FUZZY_FACTOR) for lang, weight in _LEXICON_WORDS[typo])
    if len(word) >= 6 and _NGUNI_SHAPE.fullmatch(word):
        return (("zu", _SHAPE_WEIGHT), ("xh", _SHAPE_WEIGHT))
    return ()


def _typo_of(word: str) -> str | None:
    """The lexicon word ``word`` is a typo of, when there is exactly one language it could be."""
    limit = _max_typos(word)
    candidates: set[str] = set()
    for key in _deletions(word, limit):
        candidates |= _FUZZY_INDEX.get(key, set())
    close = sorted(c for c in candidates if OSA.distance(word, c, score_cutoff=limit) <= limit)
    languages = {tuple(sorted(lang for lang, _ in _LEXICON_WORDS[c])) for c in close}
    return close[0] if len(languages) == 1 else None


def detect_language(text: str) -> LanguageGuess | None:
    """The language of ``text`` when it is clearly af, zu or xh; None for English or when unsure.

    Pure and fast (a few microseconds for a typical first message); see the module docstring for
    how it decides.

    Example::

        detect_language("Sawubona").locale   # 'zu'
        detect_language("Hallo")             # None: Afrikaans and English alike
    """
    # A hyphen joins a Nguni prefix to its word ("i-pothole", "nee-akhawunti"): read it as one
    # word, so "nee" there is not the Afrikaans "no".
    words = _WORD.findall(fold(text[:_MAX_CHARS].replace("-", "")))[:_MAX_WORDS]
    scores = {"af": 0.0, "zu": 0.0, "xh": 0.0, "en": 0.0}
    evidence: dict[str, list[str]] = {"af": [], "zu": [], "xh": [], "en": []}
    for word in words:
        for language, weight in _word_evidence(word):
            scores[language] += weight
            if word not in evidence[language]:
                evidence[language].append(word)
    ranked = sorted(DETECTED_LOCALES, key=lambda lang: scores[lang], reverse=True)
    best, runner_up = ranked[0], ranked[1]
    top = scores[best]
    if top < MIN_SCORE:
        return None
    confidence = top / (top + scores[runner_up] + scores["en"])
    if confidence < MIN_CONFIDENCE:
        return None
    return LanguageGuess(best, round(confidence, 2), tuple(evidence[best]))
