"""Row ids read from text (paths, queries): ASCII digits a BIGINT key can hold, nothing else."""

from __future__ import annotations

import pytest

from storage.types import MAX_ROW_ID, row_id


@pytest.mark.parametrize("text, expected", [("0", 0), ("42", 42), (str(MAX_ROW_ID), MAX_ROW_ID)])
def test_whole_numbers_a_key_holds_are_ids(text: str, expected: int) -> None:
    assert row_id(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "²", "٣", "፩", "-1", "+1", " 1", "1.0", "1e3", str(MAX_ROW_ID + 1), "9" * 5000],
)
def test_anything_else_is_no_id(text: str) -> None:
    # "²" and "፩" pass str.isdigit() and then make int() raise; "٣" int() reads as 3.
    assert row_id(text) is None
