"""The roles staff hold and what each may do: the one permission table the API checks.

``docs/staff.md`` carries this table as Markdown; a test keeps the two equal
(regenerate it with ``python -m staff.roles``).

Example::

    allowed = permissions_for({Role.AGENT, Role.ANALYST})
    Permission.TAKE_OVER in allowed      # True
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from staff.errors import UnknownRole

__all__ = [
    "PERMISSIONS",
    "TOTP_REQUIRED",
    "Permission",
    "Role",
    "markdown_table",
    "parse_roles",
    "permissions_for",
]


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    BROADCASTER = "broadcaster"
    APPROVER = "approver"
    ANALYST = "analyst"
    ADMIN = "admin"


class Permission(StrEnum):
    """One thing a staff member may do; the value is what the API checks, the description is
    what the docs say."""

    description: str

    def __new__(cls, value: str, description: str) -> Permission:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    VIEW_QUEUE = "conversations.view_queue", "see the queue of residents waiting for a person"
    TAKE_OVER = "conversations.take_over", "take over a conversation and answer the resident"
    MANAGE_QUEUE = "conversations.manage_queue", "assign and reassign waiting conversations"
    VIEW_REQUESTS = "requests.view", "list and read service requests (personal data masked)"
    UPDATE_REQUESTS = "requests.update", "change a service request's status and notes"
    VIEW_PERSONAL = "residents.view_personal", "reveal a resident's phone number or name (audited)"
    CREATE_BROADCASTS = "broadcasts.create", "write broadcasts to the wards in their scope"
    APPROVE_BROADCASTS = "broadcasts.approve", "approve city-wide and emergency broadcasts"
    DECLARE_INCIDENTS = (
        "incidents.declare",
        "declare, update and end known incidents in their wards",
    )
    REVIEW_SUGGESTIONS = (
        "incidents.review_suggestions",
        "confirm or dismiss the incidents early warning suggests in their wards",
    )
    VIEW_ANALYTICS = "analytics.view", "see dashboards of service performance"
    MANAGE_OPEN_DATA = "open_data.manage", "administer the published open data"
    MANAGE_ACCOUNTS = "accounts.manage", "create, change and disable staff accounts and roles"
    MANAGE_TOKENS = "tokens.manage", "issue and revoke API tokens"
    MANAGE_SETTINGS = "settings.manage", "change citybot's settings"
    VIEW_AUDIT = "audit.view", "read the audit log"
    EXPORT_RESIDENT = "residents.export", "export a resident's data (a POPIA access request)"
    ERASE_RESIDENT = "residents.erase", "erase a resident's data on request"


_P = Permission
_AGENT = frozenset(
    {_P.VIEW_QUEUE, _P.TAKE_OVER, _P.VIEW_REQUESTS, _P.UPDATE_REQUESTS, _P.VIEW_PERSONAL}
)
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: _AGENT,
    # An agent who also runs the queue and watches how it goes.
    # Supervisors see the reports come in, so they also review what early warning suggests.
    Role.SUPERVISOR: _AGENT | {_P.MANAGE_QUEUE, _P.VIEW_ANALYTICS, _P.REVIEW_SUGGESTIONS},
    Role.BROADCASTER: frozenset(
        {_P.CREATE_BROADCASTS, _P.DECLARE_INCIDENTS, _P.REVIEW_SUGGESTIONS}
    ),
    Role.APPROVER: frozenset(
        {
            _P.CREATE_BROADCASTS,
            _P.APPROVE_BROADCASTS,
            _P.DECLARE_INCIDENTS,
            _P.REVIEW_SUGGESTIONS,
        }
    ),
    Role.ANALYST: frozenset({_P.VIEW_REQUESTS, _P.VIEW_ANALYTICS, _P.MANAGE_OPEN_DATA}),
    # An admin runs the house (accounts, settings, audit, residents' rights) but does not
    # answer residents or broadcast: those are roles of their own, given deliberately.
    Role.ADMIN: frozenset(
        {
            _P.VIEW_REQUESTS,
            _P.MANAGE_ACCOUNTS,
            _P.MANAGE_TOKENS,
            _P.MANAGE_SETTINGS,
            _P.VIEW_AUDIT,
            _P.EXPORT_RESIDENT,
            _P.ERASE_RESIDENT,
        }
    ),
}

# Roles that can reach many residents or every account: a stolen password is not enough.
TOTP_REQUIRED: frozenset[Role] = frozenset({Role.ADMIN, Role.APPROVER, Role.BROADCASTER})


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """The roles named, or ``UnknownRole`` naming the first unknown one and the known ones."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise UnknownRole(f"unknown role {name!r} (roles: {known})") from None
    return frozenset(roles)


def permissions_for(roles: Iterable[Role]) -> frozenset[Permission]:
    """Everything a person holding ``roles`` may do."""
    return frozenset().union(*(PERMISSIONS[role] for role in roles))


def markdown_table() -> str:
    """The permission table as Markdown: one row per permission, one column per role."""
    roles = list(Role)
    lines = [
        "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        marks = " | ".join("✓" if permission in PERMISSIONS[r] else "" for r in roles)
        lines.append(f"| `{permission.value}` | {permission.description} | {marks} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
