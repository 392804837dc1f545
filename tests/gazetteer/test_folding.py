import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from forms_runtime.gazetteer.folding import compact, fold
from forms_runtime.sample_answers import PLACES


def test_apostrophes_vanish_and_punctuation_splits_words():
    assert fold("Mitchell's  Plain!") == "mitchells plain"
    assert fold("Mitchell’s Plain") == "mitchells plain"
    assert fold("M/PLAIN") == "m plain"
    assert fold("MITCHELLS-PLAIN") == "mitchells plain"


def test_diacritics_are_dropped():
    assert fold("Mitchélls Plâin") == "mitchells plain"


def test_compact_joins_spelling_with_and_without_spaces():
    assert compact(fold("Du Noon")) == compact(fold("Dunoon")) == "dunoon"


def _reference_fold(text: str) -> str:
    # fold before ASCII text skipped decomposition: every text took this path.
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = re.sub(r"['\u2018\u2019\u02bc`´]", "", plain)
    return re.sub(r"[^a-z0-9]+", " ", plain).strip()


@given(st.one_of(st.text(), st.text(st.characters(max_codepoint=127)), st.sampled_from(PLACES)))
def test_ascii_and_other_text_fold_as_the_full_decomposition_does(text: str) -> None:
    assert fold(text) == _reference_fold(text)
