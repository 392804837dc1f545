from hypothesis import given
from hypothesis import strategies as st

from channels.render_text import split_sentences
from channels.sms_render import describe_sms, split_for_length, split_for_sms
from forms_runtime.sms import segments, to_gsm7


def test_short_text_is_one_message():
    assert split_for_sms("Where is the pothole?") == ["Where is the pothole?"]


def test_describe_counts_segments_and_names_the_alphabet():
    assert describe_sms("a" * 161) == "2 segments, GSM-7"
    assert describe_sms("sê") == "1 segment, UCS-2"


def test_a_word_longer_than_a_message_is_cut_by_characters():
    parts = split_for_sms("x" * 1000, max_segments=1)
    assert all(segments(p) == 1 for p in parts)
    assert "".join(parts) == "x" * 1000


def test_split_sentences_keeps_every_character():
    text = "One. Two! Three?\nFour"
    assert split_sentences(text) == ["One. ", "Two! ", "Three?\n", "Four"]
    assert "".join(split_sentences(text)) == text


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=1, max_value=4))
def test_every_sms_part_fits_and_nothing_but_spaces_is_lost(text, max_segments):
    parts = split_for_sms(text, max_segments=max_segments)
    assert all(segments(p) <= max_segments for p in parts)
    squeeze = lambda s: "".join(s.split())  # noqa: E731
    assert squeeze("".join(parts)) == squeeze(to_gsm7(text))


@given(st.text(min_size=1, max_size=3000), st.integers(min_value=5, max_value=500))
def test_every_length_part_fits(text, limit):
    parts = split_for_length(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())
