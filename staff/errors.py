"""What can go wrong when staff accounts are changed, drawn once::

    StaffError                  a change was not made; the message says why, for a person
    ├── InvalidStaffInput       the input itself is wrong (an odd email, an unknown role, ...)
    │   └── UnknownRole         a role name that is not one of ``staff.roles.Role``
    ├── AccountExists           an account with that email is already there
    ├── AccountNotFound         no account with that email
    ├── NotFound                no such token, request or resident (or not in the caller's wards)
    └── Conflict                the change cannot be made in the state things are in

The command line exits 2 on ``InvalidStaffInput`` and 1 on the others; the admin API will answer
400, 409 and 404 (``NotFound`` 404, ``Conflict`` 409). A refused sign-in is not an error but a ``staff.identity.Refusal``.
"""

from __future__ import annotations

__all__ = [
    "AccountExists",
    "AccountNotFound",
    "Conflict",
    "InvalidStaffInput",
    "NotFound",
    "StaffError",
    "UnknownRole",
]


class StaffError(Exception):
    """A change to staff accounts was not made."""


class InvalidStaffInput(StaffError, ValueError):
    """The input is wrong whatever the database holds."""


class UnknownRole(InvalidStaffInput):
    """A role name that is not one of ``Role``; the message lists the ones there are."""


class AccountExists(StaffError):
    pass


class AccountNotFound(StaffError):
    pass


class NotFound(StaffError):
    """No such thing, or not one the caller may see (another ward's looks the same)."""


class Conflict(StaffError):
    pass
