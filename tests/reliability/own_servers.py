"""A redis-server and a PostgreSQL of the test's own, on free ports, to stop and start.

The outage tests stop these; the shared test servers (CITYBOT_TEST_*_URL) are never touched.
Where the binaries are missing the tests skip, saying which; CI has them
(CITYBOT_TEST_REQUIRE_SERVICES=1 turns the skip into a failure, as for the shared servers).

Example::

    with OwnPostgres() as pg:
        url = pg.url           # postgresql+asyncpg://postgres@127.0.0.1:PORT/citybot
        pg.restart()
        with OwnPostgres(standby_of=pg) as replica:   # pg_basebackup -R: a streaming replica
            ...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from tests.web.serve_process import free_port

__all__ = ["OwnPostgres", "OwnRedis"]

PG_BIN = Path(os.environ.get("CITYBOT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _missing(what: str) -> None:
    message = f"{what} is not installed: the outage tests run their own servers"
    if os.environ.get("CITYBOT_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _wait_for_port(port: int, timeout: float, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} is still {'down' if up else 'up'}")


class OwnRedis:
    """``redis-server`` on a free port; ``stop`` is kill -9. With ``appendonly`` it keeps an
    append-only file synced at every write, as production's should, and comes back with what
    it held; without, it comes back empty."""

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.appendonly = appendonly
        binary = shutil.which("redis-server")
        if binary is None:
            _missing("redis-server")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        _wait_for_port(self.port, 10, up=False)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OwnPostgres:
    """A PostgreSQL cluster made with ``initdb`` in a temporary folder, run with ``pg_ctl``;
    with ``standby_of``, a streaming replica of that (running) server instead, made with
    ``pg_basebackup -R`` (initdb's trust rules already let 127.0.0.1 replicate)."""

    def __init__(self, *, standby_of: OwnPostgres | None = None) -> None:
        if not (PG_BIN / "initdb").exists():
            _missing(f"PostgreSQL ({PG_BIN}/initdb)")
        # Not under pytest's tmp_path: that is root's alone, and PostgreSQL runs as postgres.
        self.home = Path(tempfile.mkdtemp(prefix="citybot-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self.log = self.home / "postgres.log"
        self._prefix = self._run_as()
        if standby_of is not None:
            subprocess.run(
                [
                    *self._prefix,
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(standby_of.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.data),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            return
        subprocess.run(
            [
                *self._prefix,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _run_as(self) -> list[str]:
        """PostgreSQL refuses to run as root: there, run it as the ``postgres`` user."""
        if os.geteuid() != 0:
            return []
        if shutil.which("runuser") is None:
            _missing("runuser (PostgreSQL cannot run as root)")
        shutil.chown(self.home, "postgres")
        return ["runuser", "-u", "postgres", "--"]

    def start(self) -> None:
        subprocess.run(
            [
                *self._prefix,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                f"-p {self.port} -k {self.data} -h 127.0.0.1 -F",
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 30)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self._prefix, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 30, up=False)

    def restart(self) -> None:
        self.stop("immediate")  # as a crash would: no checkpoint, recovery from the WAL
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)
