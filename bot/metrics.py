"""Prometheus metrics for one citybot process, served at ``GET /metrics``.

Each application gets its own registry (tests build many apps in one process). Teammates add
their own series to ``metrics.registry`` with prometheus_client as usual.

Example::

    metrics = Metrics()
    metrics.messages_in.labels(channel="webchat").inc()
    with metrics.turn_seconds.labels(channel="webchat").time():
        ...
    body, content_type = metrics.exposition()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from staff.support_stats import SupportStats

__all__ = ["BackgroundWriter", "Metrics", "SettingAside", "SupportCollector"]

# Turn latency buckets, in seconds: a turn should take a few milliseconds; 50 ms is the p99 target.
# The "_created" timestamp series double the exposition for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

TURN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds,
        # open file descriptors: the standard names every Prometheus dashboard knows. The
        # collector reads /proc (Linux) at each scrape; elsewhere it exports nothing.
        ProcessCollector(registry=self.registry)
        self.messages_in = Counter(
            "citybot_messages_in",
            "Messages received from residents",
            ["channel"],
            registry=self.registry,
        )
        self.messages_out = Counter(
            "citybot_messages_out",
            "Messages sent (or rendered) to residents",
            ["channel"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "citybot_turn_seconds",
            "Time to process one inbound message, from parsed to rendered",
            ["channel"],
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        # CITYBOT_DATABASE_REPLICA_URL: analytics reads sent to the primary because the replica
        # was down or lagging ("down", "lagging"), and its replay lag when last asked.
        self.replica_fallback_reads = Counter(
            "citybot_replica_fallback_reads",
            "Analytics and open-data reads served by the primary because the replica was not fit",
            ["reason"],
            registry=self.registry,
        )
        for reason in ("down", "lagging"):  # shown at 0 from the start, for increase()
            self.replica_fallback_reads.labels(reason=reason)
        self.replica_lag_seconds = Gauge(
            "citybot_replica_lag_seconds",
            "How far the read replica's replay was behind the primary when last asked",
            registry=self.registry,
        )
        self.errors = Counter(
            "citybot_errors",
            "Failures, by where they happened",
            ["where"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "citybot_duplicates",
            "Inbound messages already processed (provider retries), answered without a new turn",
            ["channel"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "citybot_rate_limited",
            "Inbound messages over the per-resident rate limit (held and run later)",
            ["channel"],
            registry=self.registry,
        )

        # Read from Redis at each scrape (``bot.web.operations``): replies queued and not yet
        # sent. A backlog that only grows, or an old oldest reply, means nothing is sending:
        # after ``serve --no-replies``, is a ``citybot worker`` running? While Redis cannot be
        # read they are NaN (unknown), never the last value seen.
        self.replies_waiting = Gauge(
            "citybot_replies_waiting",
            "Replies queued on the channel's Redis stream, not yet sent and acknowledged",
            ["channel"],
            registry=self.registry,
        )
        self.replies_oldest_seconds = Gauge(
            "citybot_replies_oldest_seconds",
            "Age of the oldest reply still queued on the channel's Redis stream (0: none)",
            ["channel"],
            registry=self.registry,
        )

        # Read from the database at each scrape (``bot.queue_backlogs``), by queue.
        self.queue_waiting = Gauge(
            "citybot_queue_waiting",
            "Items waiting in a durable queue (filing, notices, broadcasts, held, pending_replies)",
            ["queue"],
            registry=self.registry,
        )
        self.queue_oldest_seconds = Gauge(
            "citybot_queue_oldest_seconds",
            "Age of the oldest item waiting in a durable queue (0: none)",
            ["queue"],
            registry=self.registry,
        )
        self.queue_failing = Gauge(
            "citybot_queue_failing",
            "Items of a durable queue that failed (retrying, or finally for broadcasts)",
            ["queue"],
            registry=self.registry,
        )
        # Read from the database at each scrape (``bot.web.operations``, ``staff.equity``).
        self.equity_alerts = Gauge(
            "citybot_equity_alerts",
            "Services and wards where informal settlements' median time to close stayed above "
            "CITYBOT_EQUITY_THRESHOLD times formal areas' for two periods in a row (current)",
            registry=self.registry,
        )
        # The support queue, read from the database at each scrape (``bot.web.operations``).
        self.support = SupportCollector()
        self.registry.register(self.support)

    def watch_writers(self, writers: Callable[[], Iterable[BackgroundWriter]]) -> None:
        """Report the SQL writers that work behind the turns, read at each scrape."""
        self.registry.register(_WritersCollector(writers))

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class BackgroundWriter(Protocol):
    """A writer that queues SQL work in memory (``storage.sql_batch.SqlBatcher``, the message
    log writer)."""

    @property
    def name(self) -> str: ...

    @property
    def backlog(self) -> int: ...


@runtime_checkable
class SettingAside(BackgroundWriter, Protocol):
    """A writer that sets aside what the database refuses, so the rest is written."""

    @property
    def set_aside(self) -> int: ...


class _WritersCollector(Collector):
    """``citybot_log_writer_backlog`` and ``citybot_log_rows_set_aside_total``, by writer.

    A backlog that only grows means the database is slow or down (the rows wait, nothing is
    lost until the writer's limit); rows set aside were refused by the database, each with an
    error in the log.
    """

    def __init__(self, writers: Callable[[], Iterable[BackgroundWriter]]) -> None:
        self._writers = writers

    def collect(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "citybot_log_writer_backlog",
            "Rows and items queued in memory for a background SQL writer, not yet written",
            labels=["writer"],
        )
        set_aside = CounterMetricFamily(
            "citybot_log_rows_set_aside",
            "Rows the database refused, left out so the rows after them are written (see the log)",
            labels=["writer"],
        )
        for writer in self._writers():
            backlog.add_metric([writer.name], writer.backlog)
            if isinstance(writer, SettingAside):
                set_aside.add_metric([writer.name], writer.set_aside)
        yield backlog
        yield set_aside


class SupportCollector(Collector):
    """The support queue's figures (``staff.support_stats``) as of the last scrape: waiting by
    team, held, the longest wait, each agent's load, and over the last 24 hours the wait,
    first-response and handle times (p50, p90) and the outcomes."""

    def __init__(self) -> None:
        self.latest: SupportStats | None = None

    def collect(self) -> Iterator[Metric]:
        stats = self.latest
        if stats is None:
            return
        waiting = GaugeMetricFamily(
            "citybot_support_waiting",
            "Conversations waiting for a person, by team ('' for anyone)",
            labels=["team"],
        )
        for team, count in stats.waiting_by_team.items():
            waiting.add_metric([team], count)
        yield waiting
        yield GaugeMetricFamily(
            "citybot_support_held", "Conversations an agent holds now", value=stats.held
        )
        yield GaugeMetricFamily(
            "citybot_support_oldest_wait_seconds",
            "How long the conversation waiting longest has waited (0: none)",
            value=stats.oldest_wait_seconds,
        )
        for name, figures, what in (
            ("wait", stats.wait, "from asking for a person to the first claim"),
            ("first_response", stats.first_response, "from the claim to the agent's first answer"),
            ("handle", stats.handle, "from the claim to the close"),
        ):
            family = GaugeMetricFamily(
                f"citybot_support_{name}_seconds",
                f"Over the last {stats.window_hours:g} hours, {what}, by quantile",
                labels=["quantile"],
            )
            for quantile, value in (("0.5", figures.p50), ("0.9", figures.p90)):
                if value is not None:
                    family.add_metric([quantile], value)
            yield family
        load = GaugeMetricFamily(
            "citybot_support_agent_held", "Conversations each agent holds", labels=["agent_id"]
        )
        for agent in stats.agents:
            load.add_metric([str(agent.agent_id)], agent.held)
        yield load
        outcomes = GaugeMetricFamily(
            "citybot_support_outcomes",
            f"Conversations closed over the last {stats.window_hours:g} hours, by outcome",
            labels=["outcome"],
        )
        for outcome, count in stats.outcomes.items():
            outcomes.add_metric([outcome], count)
        yield outcomes
