"""One way to run a real gunicorn for benchmarks, the crash and race tests: `gunicorn -c gunicorn.conf.py
APP` in its own process group, so that stopping (or SIGKILLing) the group takes master and workers.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A gunicorn serving `app` against `database_url`, started by `start()` or `with`."""

    def __init__(self, app: str, database_url: str, port: int, log: Path, *,
                 lifetime: int | None = None, **env: str) -> None:
        self.app, self.port, self.log, self.lifetime = app, port, log, lifetime
        self.env = {**os.environ, "SECRET_KEY": "bench", "FIELDSVC_ENV": "development", **env,
                    "DATABASE_URL": database_url, "GUNICORN_BIND": f"127.0.0.1:{port}"}
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        """Start, and return once /healthz answers below 500 (raise with the log if it never does)."""
        command = [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py",
                   self.app]
        if self.lifetime is not None:
            # `timeout` ends the server even if the caller dies before stopping it.
            command = ["timeout", str(self.lifetime), *command]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90  # a busy shared machine boots workers slowly
        while True:
            try:
                status, _ = self.request("GET", "/healthz", None, {}, timeout=2)
                if status < 500:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn {self.app} did not start:\n" + self.tail())
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM the group (graceful), then SIGKILL if it has not stopped within 20 s."""
        self._signal(signal.SIGTERM, wait=20)

    def kill(self) -> None:
        """SIGKILL the whole group: no graceful shutdown, no finished requests."""
        self._signal(signal.SIGKILL, wait=10)

    def _signal(self, number: int, wait: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, number)
            self.process.wait(timeout=wait)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
                timeout: float = 10) -> tuple[int, bytes]:
        """One HTTP request on a fresh connection: (status, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def tail(self) -> str:
        """The end of the server's log, for a failure message."""
        return self.log.read_text(errors="replace")[-3000:]

    def workers(self) -> str:
        text = self.log.read_text(errors="replace")
        return f"{len(re.findall(r'Booting worker', text))} worker processes"
