from forms_runtime.gazetteer.folding import compact, fold


def test_apostrophes_vanish_and_punctuation_splits_words():
    assert fold("Mitchell's  Plain!") == "mitchells plain"
    assert fold("Mitchell’s Plain") == "mitchells plain"
    assert fold("M/PLAIN") == "m plain"
    assert fold("MITCHELLS-PLAIN") == "mitchells plain"


def test_diacritics_are_dropped():
    assert fold("Mitchélls Plâin") == "mitchells plain"


def test_compact_joins_spelling_with_and_without_spaces():
    assert compact(fold("Du Noon")) == compact(fold("Dunoon")) == "dunoon"
