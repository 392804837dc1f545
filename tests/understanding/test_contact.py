import pytest

from forms_runtime.understanding.contact import normalise_phone, parse_email, parse_name


@pytest.mark.parametrize(
    "raw",
    [
        "083 123 4567", "+27 83 123 4567", "27831234567", "0831234567", "(083) 123-4567",
        "0027831234567", "083-123-4567", "my number is 083 123 4567", "+27831234567",
    ],
)  # fmt: skip
def test_south_african_numbers_become_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+27831234567"


def test_landline_and_foreign_numbers() -> None:
    assert normalise_phone("021 400 1111") == "+27214001111"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert normalise_phone("020 7946 0958", "GB") == "+442079460958"


@pytest.mark.parametrize(
    "raw", ["", "hello", "12345", "0831234567890123", "083 123", "+27 00 000 0000", "1" * 300]
)
def test_invalid_phone_numbers(raw: str) -> None:
    assert normalise_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("thandi@example.co.za", "thandi@example.co.za"),
        ("Thandi@Example.CO.ZA", "Thandi@example.co.za"),
        ("  sipho.dlamini+city@gmail.com ", "sipho.dlamini+city@gmail.com"),
        ("mailto:Sipho@Gmail.com", "Sipho@gmail.com"),
        ("<x@y.co.za>.", "x@y.co.za"),
        ("x@y.com.", "x@y.com"),
        ("ñandú@correo.es", "ñandú@correo.es"),
    ],
)
def test_email_addresses(raw: str, expected: str) -> None:
    assert parse_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "", "a@b", "a b@c.com", "a@@b.com", "a@b@c.com", "x@y.c", ".x@y.com", "x.@y.com",
        "x..y@z.com", "x@-y.com", "x@y-.com", "x@y_z.com", "x@y..com", "@y.com", "x@.com",
        "x@y.123", "not an email", "x@y .com",
    ],
)  # fmt: skip
def test_invalid_email_addresses(raw: str) -> None:
    assert parse_email(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Nomsa   van der Merwe ", "Nomsa van der Merwe"),
        ("Zoë O’Neill-Mthembu", "Zoë O’Neill-Mthembu"),
        ("O'Brien", "O'Brien"),
        ("J. Smith", "J. Smith"),
        ("Ngũgĩ wa Thiong’o", "Ngũgĩ wa Thiong’o"),
        ("محمد", "محمد"),
        ("李小龙", "李小龙"),
        ("Thandeka", "Thandeka"),
        ("X", "X"),
    ],
)
def test_names_are_kept_as_typed(raw: str, expected: str) -> None:
    assert parse_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ", "---", "'", "R2D2", "Sipho 2", "x@y.com", "www.example.com",
        "http://x.co", "example.com", "a" * 101, "<b>Bob</b>", "Bob; DROP TABLE", "👍",
    ],
)  # fmt: skip
def test_things_that_are_not_names(raw: str) -> None:
    assert parse_name(raw) is None
