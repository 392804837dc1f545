"""``citybot serve`` as a real subprocess on a free port, for restart and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["ServeProcess", "free_port"]

CITYBOT = Path(sys.executable).with_name("citybot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """Start, kill and restart one ``citybot serve`` with fixed environment and port."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        log_path: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CITYBOT_")},
            "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/citybot.sqlite3",
            "CITYBOT_PORT": str(self.port),
            "CITYBOT_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        # Where the process's log (stderr) goes, appended across restarts; discarded if None.
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.first_line = ""

    def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("a") if self.log_path is not None else None
        try:
            self.process = subprocess.Popen(
                [str(CITYBOT), "serve", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log if log is not None else subprocess.DEVNULL,
                text=True,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own descriptor
        assert self.process.stdout is not None
        # serve prints its line only once it listens; readline blocks until then (or exit).
        self.first_line = self.process.stdout.readline().strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"citybot serve exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("citybot serve did not become ready")

    def kill_hard(self) -> None:
        """kill -9: no shutdown handlers, no flushing, whatever was in flight is cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            if self.process.stdout:
                self.process.stdout.close()
