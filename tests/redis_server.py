"""A real `redis-server` for the tests: on a free loopback port, persistence off.

`make test` installs Debian's `redis-server` when it is missing, so these tests run on a
fresh machine instead of skipping.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process; `stop()` and `start()` again on the same port."""

    port: int
    password: str | None = None
    #: More `redis-server` arguments (e.g. ACL users: `--user ...`).
    arguments: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: `make test` installs it (apt)"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", tempfile.gettempdir(), "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        args += list(self.arguments)
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def fresh(self) -> RedisServer:
        """Running (again, if a test stopped it) and empty: what each test starts from."""
        if self.process is None:
            self.start()
        self.flush()
        return self

    def flush(self) -> None:
        """Empty it (between tests), through redis-cli-free plain RESP."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            if self.password:
                conn.sendall(_command("AUTH", self.password))
                conn.recv(64)
            conn.sendall(_command("FLUSHALL"))
            assert conn.recv(64).startswith(b"+OK")


def _command(*parts: str) -> bytes:
    encoded = b"".join(b"$%d\r\n%s\r\n" % (len(p.encode()), p.encode()) for p in parts)
    return b"*%d\r\n" % len(parts) + encoded


@contextlib.contextmanager
def redis_server(
    password: str | None = None, arguments: tuple[str, ...] = (), port: int | None = None
) -> Iterator[RedisServer]:
    """A running redis-server on `port` (a free one by default; give the port when
    `arguments` listen elsewhere, e.g. `--port 0 --tls-port P`)."""
    server = RedisServer(port or free_port(), password, arguments)
    server.start()
    try:
        yield server
    finally:
        server.stop()
