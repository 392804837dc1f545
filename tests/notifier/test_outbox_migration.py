"""Revision 0003: a status update that failed before the outbox existed is told after all,
where it is still the request's latest news; an older failed one stays as it was."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from storage.migrate import alembic_config, upgrade_database
from storage.models import RequestStatusChange
from storage.session import create_engine, create_sessionmaker
from tests.storage.databases import sqlite_database

INSERT_CHANGE = (
    "INSERT INTO request_status_changes (submission_id, service_request_id, status, observed_at,"
    " notify_state) VALUES (:submission, :number, :status, '2030-01-01 10:00:00', :state)"
)


async def test_a_latest_failed_update_is_handed_back_to_the_poller(tmp_path: Path) -> None:
    async with sqlite_database(tmp_path, migrate=False) as url:
        engine = create_engine(url)
        try:

            def before_outbox(connection: Connection) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, "0002_open311")
                for sid, reference in ((1, "CT-AAAAAA"), (2, "CT-BBBBBB")):
                    connection.execute(
                        text(
                            "INSERT INTO submissions (id, reference, channel, form_id,"
                            " form_version, service_code, locale, answers, status,"
                            " service_request_id, created_at, updated_at) VALUES (:id, :reference,"
                            " 'sms', 'pothole', 1, 'ROADS-POTHOLE', 'en', '{}', 'filed', :number,"
                            " '2030-01-01 09:00:00', '2030-01-01 09:00:00')"
                        ),
                        {"id": sid, "reference": reference, "number": str(sid)},
                    )
                rows = [
                    (1, "open", "failed"),  # older news, already overtaken by the "closed" below
                    (1, "closed", "sent"),
                    (2, "closed", "failed"),  # the latest news, never told
                ]
                for submission, status, state in rows:
                    connection.execute(
                        text(INSERT_CHANGE),
                        {
                            "submission": submission,
                            "number": str(submission),
                            "status": status,
                            "state": state,
                        },
                    )

            async with engine.begin() as connection:
                await connection.run_sync(before_outbox)
            await upgrade_database(url)
            async with create_sessionmaker(engine)() as session:
                states = (
                    await session.execute(
                        select(
                            RequestStatusChange.submission_id, RequestStatusChange.notify_state
                        ).order_by(RequestStatusChange.id)
                    )
                ).all()
        finally:
            await engine.dispose()
    assert [tuple(row) for row in states] == [(1, "failed"), (1, "sent"), (2, "pending")]
