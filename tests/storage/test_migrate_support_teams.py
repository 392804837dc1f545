"""0013_support_teams on SQLite and PostgreSQL: tickets held when it runs are held since their
claim, waiting ones queued since they came; the revision goes down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url, revision_before

__all__ = ["empty_url"]

REVISION = "0013_support_teams"


async def test_open_tickets_get_their_queue_and_hold_times(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", revision_before(REVISION))
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO support_tickets (id, channel, locale, reason, priority, state, "
                    "created_at, claimed_at) VALUES "
                    "(1, 'sms', 'en', 'asked', 0, 'waiting', '2026-03-02 09:00:00', NULL), "
                    "(2, 'sms', 'en', 'asked', 0, 'held', '2026-03-02 09:00:00', "
                    "'2026-03-02 09:05:00'), "
                    "(3, 'sms', 'en', 'asked', 0, 'closed', '2026-03-02 09:00:00', NULL)"
                )
            )
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT id, team, queued_at IS NOT NULL, held_since IS NOT NULL, "
                        "unclaimed_told_at FROM support_tickets ORDER BY id"
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, None, True, False, None),
            (2, None, False, True, None),
            (3, None, False, False, None),
        ]
        await _alembic(empty_url, "downgrade", revision_before(REVISION))
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("support_tickets")}
            )
        assert not {"team", "queued_at", "held_since", "unclaimed_told_at"} & columns
    finally:
        await engine.dispose()
