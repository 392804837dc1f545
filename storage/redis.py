"""The Redis client every part of citybot shares, made from ``CITYBOT_REDIS_URL``, and the one
account each process keeps of that Redis being away.

Three topologies, each through redis-py's own client (``connect_redis`` is the one place that
builds it):

* one Redis: ``redis://host:6379/0``, ``rediss://`` (TLS), ``unix:///run/redis.sock``;
* Redis Cluster: ``redis+cluster://host:7000,host:7001,host:7002`` (``rediss+cluster://`` for
  TLS): any few nodes to start from, redis-py's ``RedisCluster`` learns the rest and follows
  slots as they move. A cluster has database 0 only;
* Sentinel: ``redis+sentinel://host:26379,host:26380,host:26381/<master name>/<db>``
  (``rediss+sentinel://``): the sentinels are asked which server is the primary, and asked
  again after a failover (redis-py's ``Sentinel.master_for``).

A password in the URL (``redis+cluster://:secret@host:7000``) is the data servers'; sentinels
that need one of their own are not supported here (set ``requirepass`` the same on both).

Every key one script or transaction touches carries one hash tag (``storage.redis_layout``), so
the code is the same on all three: the cluster client is typed as ``Redis`` since it answers the
same commands.

**Writes that must survive a failover.** Redis replicates asynchronously: a write the primary
acknowledged may not be on the replica when the primary dies, and the promoted replica never
had it. For a turn that is a reply lost after the provider was told "taken", or an
acknowledgement lost so a sent reply is sent again. So behind Sentinel (or wherever
``CITYBOT_REDIS_WAIT_REPLICAS`` asks for it) the two pipelines that commit such writes (the turn
scripts, ``conversations.redis_pipeline``; the reply acknowledgements, ``notifier.replies``) end
with ``WAIT <replicas> <timeout>`` (``ReplicaWait``): their callers go on once a replica has the
writes. A primary left without a replica (the old one died and was promoted from) would make
every ``WAIT`` last its whole timeout; after one that comes back short the process stops asking
for ``REPLICA_PAUSE_SECONDS`` (and logs it once), then asks again.

A Redis that goes away is seen by every loop that reads it (a reply stream per channel, lock
renewals, held messages...), each retrying about once a second. Logged as they fail, that is
a traceback three times a second for as long as it lasts. Instead each loop reports to the
client's ``RedisOutage`` (``outage_of``): one warning when Redis goes, a line with the count of
failures every ``summary_seconds`` while it stays away, and one when it is back with the count
and how long it lasted. No tracebacks: a refused connection is not a bug.

Example::

    redis = connect_redis("redis://127.0.0.1:6379/0")
    await redis.ping()
    outage = outage_of(redis)
    try:
        await redis.xreadgroup(...)
    except (OSError, RedisError) as exc:
        outage.failed("reading the reply stream", exc)   # logged once, then counted
    else:
        outage.recovered()                                # "Redis is back" after an outage
    await redis.aclose()
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

__all__ = [
    "RedisOutage",
    "RedisTopology",
    "ReplicaWait",
    "connect_redis",
    "is_cluster",
    "outage_of",
    "redis_topology",
    "replica_wait_of",
]

log = logging.getLogger("citybot.redis")

# While Redis stays away, how often the count of failures so far is logged.
SUMMARY_SECONDS = 60.0


_CLUSTER = ("redis+cluster", "rediss+cluster")
_SENTINEL = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """What a ``CITYBOT_REDIS_URL`` names, without its password (``check``, ``/readyz``)."""

    kind: str  # "single", "cluster" or "sentinel"
    nodes: tuple[tuple[str, int], ...] = ()
    master: str = ""  # Sentinel: the primary's name
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def describe(self) -> str:
        nodes = ",".join(f"{host}:{port}" for host, port in self.nodes)
        if self.kind == "cluster":
            return f"Redis Cluster (from {nodes})"
        if self.kind == "sentinel":
            return f"Sentinel primary {self.master!r} db {self.db} (sentinels {nodes})"
        return "one Redis"


def redis_topology(url: str) -> RedisTopology:
    """Read a ``CITYBOT_REDIS_URL``; ``ValueError`` with what is wrong."""
    scheme = url.partition("://")[0].lower()
    if scheme not in _CLUSTER + _SENTINEL:
        return RedisTopology("single")
    parts = urlsplit(url)
    where = parts.netloc.rpartition("@")[2]
    nodes = tuple(_node(item) for item in where.split(",") if item.strip())
    if not nodes:
        raise ValueError(f"{scheme}:// needs at least one host:port")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    tls = scheme.startswith("rediss")
    path = [p for p in parts.path.split("/") if p]
    if scheme in _CLUSTER:
        if path not in ([], ["0"]):
            raise ValueError("a Redis Cluster has database 0 only: end the URL at the last port")
        return RedisTopology("cluster", nodes, tls=tls, username=username, password=password)
    if not path or len(path) > 2:
        raise ValueError(f"{scheme}:// needs the primary's name: .../<master name>[/<db>]")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"the database after the primary's name is a number, not {path[1]!r}")
    db = int(path[1]) if len(path) == 2 else 0
    return RedisTopology(
        "sentinel",
        nodes,
        master=unquote(path[0]),
        db=db,
        tls=tls,
        username=username,
        password=password,
    )


def _node(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"each node is host:port, not {item.strip()!r}")
    return host.strip("[]"), int(port)


def connect_redis(url: str, *, wait_replicas: int | None = None) -> Redis:
    """A client for ``url`` (one Redis, a cluster or Sentinel: see the module's docstring);
    connects on first use. ``wait_replicas``: how many replicas must have a turn's writes before
    it goes on (None: one behind Sentinel, none otherwise; never on a cluster, where ``WAIT``
    would reach an arbitrary node)."""
    client = _client(url)
    replicas = wait_replicas
    if replicas is None:
        replicas = 1 if redis_topology(url).kind == "sentinel" else 0
    if replicas > 0 and not is_cluster(client):
        _WAITS[client] = ReplicaWait(replicas)
    return client


def _client(url: str) -> Redis:
    topology = redis_topology(url)
    if topology.kind == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in topology.nodes],
            username=topology.username,
            password=topology.password,
            ssl=topology.tls,
        )
        # Same commands, scripts and pipelines as ``Redis`` (keys of one script share a slot).
        return cast(Redis, cluster)
    if topology.kind == "sentinel":
        sentinel = Sentinel(
            list(topology.nodes),
            # The sentinels are asked quickly: one that is down must not hold up the others.
            sentinel_kwargs={"socket_timeout": 1.0, "ssl": topology.tls},
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            username=topology.username,
            password=topology.password,
            ssl=topology.tls,
        )
        primary: Redis = sentinel.master_for(topology.master, db=topology.db)
        return primary
    return Redis.from_url(url)


def is_cluster(redis: Redis) -> bool:
    """Whether ``redis`` is a Redis Cluster client."""
    return isinstance(redis, RedisCluster)


class RedisOutage:
    """Counts the failures of one process's Redis while it is away, logging a few lines only."""

    def __init__(
        self,
        *,
        summary_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.summary_seconds = summary_seconds
        self._clock = clock
        self.failures = 0  # in the current outage
        self._since: float | None = None
        self._summarised_at = 0.0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, exc: BaseException) -> None:
        """A Redis call failed (``where``: what was being done); logs only the first of an
        outage, then a summary every ``summary_seconds``."""
        now = self._clock()
        self.failures += 1
        if self._since is None:
            self._since = self._summarised_at = now
            log.warning(
                "Redis unavailable (%s): further failures are counted, not logged, until it is "
                "back",
                where,
                extra={"error": type(exc).__name__, "reason": str(exc)[:200]},
            )
        elif now - self._summarised_at >= self.summary_seconds:
            self._summarised_at = now
            log.warning(
                "Redis still unavailable",
                extra={"failures": self.failures, "down_seconds": round(now - self._since, 1)},
            )

    def recovered(self) -> None:
        """A Redis call succeeded: ends the outage (with its summary), if there was one."""
        if self._since is None:
            return
        log.warning(
            "Redis is back",
            extra={
                "failures": self.failures,
                "down_seconds": round(self._clock() - self._since, 1),
            },
        )
        self._since = None
        self.failures = 0


# One account per client, so every loop of a process using that client adds to the same count;
# gone with the client (tests build many).
_OUTAGES: weakref.WeakKeyDictionary[Redis, RedisOutage] = weakref.WeakKeyDictionary()


def outage_of(redis: Redis) -> RedisOutage:
    """The outage account of ``redis``'s process-wide client."""
    outage = _OUTAGES.get(redis)
    if outage is None:
        outage = _OUTAGES[redis] = RedisOutage()
    return outage


# The replicas' WAIT timeout: far above a healthy replica's lag (well under a millisecond on a
# LAN), short enough that a replica gone costs a few turns this much once before the pause.
REPLICA_WAIT_MS = 250
REPLICA_PAUSE_SECONDS = 5.0


class ReplicaWait:
    """Ends a pipeline with ``WAIT`` so its writes are on ``replicas`` replicas (see above)."""

    def __init__(
        self,
        replicas: int,
        *,
        timeout_ms: int = REPLICA_WAIT_MS,
        pause_seconds: float = REPLICA_PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        self.pause_seconds = pause_seconds
        self._clock = clock
        self._paused_until = 0.0
        self.short = 0  # WAITs that came back with too few replicas, in this spell

    def add_to(self, pipeline: Any) -> bool:
        """Queue ``WAIT`` on ``pipeline`` unless paused; whether it was queued (its answer is
        then the pipeline's last, for ``saw``)."""
        if self._clock() < self._paused_until:
            return False
        pipeline.execute_command("WAIT", self.replicas, self.timeout_ms)
        return True

    def saw(self, answer: object) -> None:
        """The answer of a queued ``WAIT``: the replicas that have the writes (or an error)."""
        acked = answer if isinstance(answer, int) else -1
        if acked >= self.replicas:
            if self.short:
                log.warning("Redis replicas confirm writes again", extra={"short": self.short})
                self.short = 0
            return
        self.short += 1
        self._paused_until = self._clock() + self.pause_seconds
        if self.short == 1:
            # Once for the spell: a primary left without its replica is short every time.
            log.warning(
                "Redis replicas did not confirm a write: recent writes would be lost if the "
                "primary failed now; asking again every few seconds",
                extra={"replicas": acked, "wanted": self.replicas},
            )


_WAITS: weakref.WeakKeyDictionary[Redis, ReplicaWait] = weakref.WeakKeyDictionary()


def replica_wait_of(redis: Redis) -> ReplicaWait | None:
    """The ``ReplicaWait`` of ``redis``'s client, if its writes wait for replicas."""
    return _WAITS.get(redis)
