"""The open data's pre-aggregated tables: what the public performance figures are read from.

Published figures over a million requests must answer in well under a second, and medians do
not add up, so ``staff.analytics_rollup`` keeps, per period (a week or a month, in the city's
time zone), service, ward and area type, the counts and two histograms of hours (to
acknowledge, to close) in ``HISTOGRAM_BUCKETS`` buckets. Summing rows with SQL and reading the
percentiles off the summed histogram is what ``staff.analytics`` does. The histograms are plain
integer columns (``ack_0`` ... ``close_47``) so that the database sums them; a JSON list would
have to be summed in Python, row by row.

``open_data_disparity`` holds the informal/formal ratio of median time to close with its
bootstrap interval, per period, service and ward ("*" for all of them), computed when the
rollup is; ``open_data_cells`` counts requests per 250 m grid cell, so coordinates are published
only where a cell holds enough of them; ``open_data_refresh`` remembers how far the rollup has
read, so a refresh only redoes the periods that changed.

Example::

    select(open_data_rollup.c.period_start, func.sum(open_data_rollup.c.requests))
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Float, Integer, PrimaryKeyConstraint, String, Table

from storage.base import Base
from storage.types import UtcDateTime

__all__ = [
    "ALL",
    "HISTOGRAM_BUCKETS",
    "open_data_cells",
    "open_data_disparity",
    "open_data_refresh",
    "open_data_rollup",
]

# Buckets of each hour histogram; their edges are ``staff.hour_histograms.EDGES``.
HISTOGRAM_BUCKETS = 48
# The service or ward of a disparity row that covers all of them.
ALL = "*"


def _histogram(prefix: str) -> list[Column[int]]:
    return [
        Column(f"{prefix}_{i}", Integer, nullable=False, default=0)
        for i in range(HISTOGRAM_BUCKETS)
    ]


open_data_rollup = Table(
    "open_data_rollup",
    Base.metadata,
    # "week" (starting on Monday) or "month", and its first day in the city's time zone.
    Column("period", String(8), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("service_code", String(64), nullable=False),
    # "unknown" where the place is not known: counted, never dropped.
    Column("ward", String(32), nullable=False),
    Column("area_type", String(32), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("acknowledged", Integer, nullable=False),
    Column("closed", Integer, nullable=False),
    # Closed, or open past the service's target when the period was last refreshed.
    Column("due", Integer, nullable=False),
    Column("closed_within_target", Integer, nullable=False),
    *_histogram("ack"),
    *_histogram("close"),
    PrimaryKeyConstraint("period", "period_start", "service_code", "ward", "area_type"),
)

open_data_disparity = Table(
    "open_data_disparity",
    Base.metadata,
    Column("period", String(8), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("service_code", String(64), nullable=False),
    Column("ward", String(32), nullable=False),
    # Closed requests on each side (the medians' ground).
    Column("informal_count", Integer, nullable=False),
    Column("formal_count", Integer, nullable=False),
    # NULL where either side has fewer than the suppression minimum.
    Column("ratio", Float),
    Column("ci_low", Float),
    Column("ci_high", Float),
    PrimaryKeyConstraint("period", "period_start", "service_code", "ward"),
)

open_data_cells = Table(
    "open_data_cells",
    Base.metadata,
    Column("cell_row", Integer, nullable=False),
    Column("cell_col", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    PrimaryKeyConstraint("cell_row", "cell_col"),
)

open_data_refresh = Table(
    "open_data_refresh",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # The newest submission and status change the rollup has read.
    Column("last_submission_id", Integer, nullable=False),
    Column("last_change_id", Integer, nullable=False),
    Column("refreshed_at", UtcDateTime(), nullable=False),
)
