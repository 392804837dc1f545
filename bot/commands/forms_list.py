"""``citybot forms list [--locale xx]``: the standard forms, in menu order, titles translated.

Example::

    $ citybot forms list --locale af
    pothole   ROADS-POTHOLE  Slaggat of padskade
"""

from __future__ import annotations

import argparse

from forms_runtime.i18n import normalise_locale, tr
from forms_runtime.loader import FormError, standard_forms

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    locale = normalise_locale(args.locale)
    try:
        forms = standard_forms()
    except FormError as exc:
        for problem in exc.problems:
            print(f"error: {problem}")
        print("    run `citybot forms lint` for translations and SMS lengths too")
        return 1
    rows = [(form.id, form.service_code, tr(locale, form.title)) for form in forms.values()]
    id_width = max((len(r[0]) for r in rows), default=0)
    code_width = max((len(r[1]) for r in rows), default=0)
    for form_id, code, title in rows:
        print(f"{form_id:<{id_width}}  {code:<{code_width}}  {title}")
    return 0
