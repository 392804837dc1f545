"""A real Redis Cluster and a real Sentinel set on loopback, each in a temporary folder.

``RedisClusterServers`` starts three ``redis-server --cluster-enabled yes`` primaries and joins
them with ``redis-cli --cluster create`` (16384 slots over three primaries, no replicas);
``SentinelServers`` starts a primary, a replica of it and three sentinels watching it, and can
kill the primary (SIGKILL) for a failover. Ports are picked free at start (a cluster node's bus
port too, given with ``cluster-port`` so it never lands past 65535). Where redis-server is
missing the tests skip, saying so (CI has it: ``CITYBOT_TEST_REQUIRE_SERVICES=1`` fails instead).

Example::

    with RedisClusterServers() as cluster:
        url = cluster.url            # redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import pytest

__all__ = ["MASTER_NAME", "RedisClusterServers", "SentinelServers", "redis_binaries"]

MASTER_NAME = "citybot"


def redis_binaries() -> tuple[str, str]:
    """redis-server and redis-cli, or a skip (a failure in CI) saying which is missing."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        message = "redis-server and redis-cli are not installed: the cluster tests run their own"
        if os.environ.get("CITYBOT_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return server, cli


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all bound at once, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class _Servers:
    def __init__(self, prefix: str) -> None:
        self.server, self.cli = redis_binaries()
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def _start(self, port: int, *args: str) -> None:
        folder = self.home / str(port)
        folder.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            [self.server, *args],
            cwd=folder,
            stdout=(folder / "out.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(port, 20)

    def _cli(self, port: int, *args: str) -> str:
        done = subprocess.run(
            [self.cli, "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def kill(self, port: int) -> None:
        """SIGKILL: the server gets no chance to hand anything over."""
        process = self.processes.get(port)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.home, ignore_errors=True)

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _data_server(port: int) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


class RedisClusterServers(_Servers):
    """Three cluster primaries on loopback, every slot covered."""

    def __init__(self) -> None:
        super().__init__("citybot-cluster-")
        ports = _free_ports(6)
        self.ports, self.bus_ports = ports[:3], ports[3:]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            self._start(
                port,
                *_data_server(port),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(bus),
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            )
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in self._cli(p, "cluster", "info") for p in self.ports):
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not come up")
            time.sleep(0.1)

    def slots_of(self, port: int) -> int:
        """How many slots the primary on ``port`` serves."""
        info = self._cli(port, "cluster", "info")
        # cluster_slots_assigned is the cluster's; this node's own come from CLUSTER NODES.
        assert "cluster_state:ok" in info
        for line in self._cli(port, "cluster", "nodes").splitlines():
            if "myself" in line:
                ranges = line.split()[8:]
                total = 0
                for item in ranges:
                    low, _, high = item.partition("-")
                    total += int(high or low) - int(low) + 1
                return total
        return 0


class SentinelServers(_Servers):
    """A primary, its replica and three sentinels (quorum two) on loopback."""

    # A primary that does not answer for this long is down for a sentinel.
    DOWN_AFTER_MS = 1000

    def __init__(self) -> None:
        super().__init__("citybot-sentinel-")
        ports = _free_ports(5)
        self.primary, self.replica = ports[0], ports[1]
        self.sentinels = ports[2:]

    def url(self, db: int = 0) -> str:
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{nodes}/{MASTER_NAME}/{db}"

    def start(self) -> None:
        self._start(self.primary, *_data_server(self.primary))
        self._start(
            self.replica,
            *_data_server(self.replica),
            "--replicaof",
            "127.0.0.1",
            str(self.primary),
        )
        for port in self.sentinels:
            folder = self.home / str(port)
            folder.mkdir(exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._start(port, str(conf), "--sentinel")
        deadline = time.monotonic() + 30
        while "master_link_status:up" not in self._cli(self.replica, "info", "replication"):
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not sync")
            time.sleep(0.1)
        # Every sentinel has found the replica and the other sentinels before a test kills.
        while not all(self._knows_everyone(port) for port in self.sentinels):
            if time.monotonic() > deadline:
                raise TimeoutError("the sentinels did not find each other")
            time.sleep(0.1)

    def _knows_everyone(self, port: int) -> bool:
        out = self._cli(port, "sentinel", "master", MASTER_NAME).split()
        fields = dict(zip(out[::2], out[1::2], strict=False))
        return fields.get("num-slaves") == "1" and fields.get("num-other-sentinels") == "2"

    def current_primary(self) -> int:
        out = self._cli(self.sentinels[0], "sentinel", "get-master-addr-by-name", MASTER_NAME)
        return int(out.split()[1])
