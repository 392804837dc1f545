"""The permission table: docs/staff.md shows exactly what staff/roles.py says."""

from __future__ import annotations

from pathlib import Path

import pytest

from staff.errors import UnknownRole
from staff.roles import (
    PERMISSIONS,
    TOTP_REQUIRED,
    Permission,
    Role,
    markdown_table,
    parse_roles,
    permissions_for,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "staff.md"


def test_docs_show_the_permission_table_of_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("<!-- permissions:start -->\n") + len("<!-- permissions:start -->\n")
    end = text.index("<!-- permissions:end -->")
    assert text[start:end] == markdown_table(), (
        "docs/staff.md differs from staff/roles.py: paste the output of python -m staff.roles"
    )


def test_every_role_has_a_row_and_every_permission_a_holder() -> None:
    assert set(PERMISSIONS) == set(Role)
    assert permissions_for(Role) == set(Permission)


def test_roles_combine_and_the_risky_ones_need_totp() -> None:
    both = permissions_for({Role.AGENT, Role.ANALYST})
    assert Permission.TAKE_OVER in both and Permission.MANAGE_OPEN_DATA in both
    assert Permission.MANAGE_ACCOUNTS not in both
    assert Permission.APPROVE_BROADCASTS not in permissions_for({Role.BROADCASTER})
    assert {Role.ADMIN, Role.APPROVER, Role.BROADCASTER} == TOTP_REQUIRED


def test_role_names_are_parsed_forgivingly_and_unknown_ones_named() -> None:
    assert parse_roles([" Admin", "agent", "agent"]) == {Role.ADMIN, Role.AGENT}
    with pytest.raises(UnknownRole, match=r"'root'.*agent, supervisor"):
        parse_roles(["agent", "root"])
