"""Report references residents can read out over the phone: ``CT-`` and six characters.

The alphabet leaves out characters that look alike (0/O, 1/I/L, 2/Z, 5/S, 8/B), so a reference
copied by hand from an SMS still finds the report. 25**6 is about 244 million references.

Example::

    new_reference()   # 'CT-7KQ4XM'
"""

from __future__ import annotations

import secrets

__all__ = ["REFERENCE_ALPHABET", "new_reference"]

REFERENCE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"


def new_reference() -> str:
    return "CT-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
