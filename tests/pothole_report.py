"""One pothole report as citybot stores it, for the filer's tests, the media proxy's and
``bench/filer.py``: answers the standard pothole form accepts, in a place inside the city.

Example::

    session.add(Submission(**pothole_submission("CT-T00001", locale="zu")))
"""

from __future__ import annotations

from typing import Any

__all__ = ["POTHOLE_ANSWERS", "pothole_submission"]

# A pin the gazetteer places inside the city (Khayelitsha, ward 99).
LAT, LON = -34.0363, 18.6776

POTHOLE_ANSWERS: dict[str, Any] = {
    "location": {"lat": LAT, "lon": LON, "place": "Khayelitsha", "ward": "99", "source": "gps"},
    "kind": "pothole",
    "size": "large",
    "danger": True,
    "callback": False,
}


def pothole_submission(reference: str, **columns: Any) -> dict[str, Any]:
    """The columns of a ``Submission`` row for this report; ``columns`` add to or override them."""
    return {
        "reference": reference,
        "channel": "sms",
        "form_id": "pothole",
        "form_version": 1,
        "service_code": "ROADS-POTHOLE",
        "locale": "en",
        "answers": POTHOLE_ANSWERS,
        "lat": LAT,
        "lon": LON,
        **columns,
    }
