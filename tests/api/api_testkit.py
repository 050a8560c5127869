"""Helpers for the HTTP API tests: the test card numbers, a database dump, the leak guard, and a
real ``flashpay serve`` subprocess on a free TCP port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

# Luhn-valid numbers on real BINs (Bank of China 621661, ICBC 622202); sent in request bodies.
TEST_CARD_NUMBERS = ("6216610200016585", "6222020200112233446")


def dump_database(engine: sa.Engine) -> bytes:
    """Every row of every table, text and bytes, as one blob to search for secrets."""
    parts: list[bytes] = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(parts)


class LeakGuard:
    def __init__(self) -> None:
        self.secrets: list[str] = list(TEST_CARD_NUMBERS)
        self.responses: list[bytes] = []
        self.engines: list[sa.Engine] = []

    async def record(self, response: httpx.Response) -> None:
        """An httpx response hook: keep the status line, headers and body."""
        await response.aread()
        self.responses.append(
            f"{response.status_code} {response.headers!r}".encode() + b"\n" + response.content
        )

    def check(self, log_text: str) -> None:
        haystacks = {
            "responses": b"\n".join(self.responses),
            "logs": log_text.encode(),
            "database": b"\n".join(dump_database(engine) for engine in self.engines),
        }
        for where, haystack in haystacks.items():
            for secret in self.secrets:
                assert secret.encode() not in haystack, f"a secret leaked into the {where}"


STARTUP_SECONDS_MAX = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def server_environment(**settings: str) -> dict[str, str]:
    """This process's environment without flashpay's settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    env.update(settings)
    return env


def start_server(
    database_url: str,
    data_dir: Path,
    *,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    settings: dict[str, str] | None = None,
) -> Server:
    """Start ``flashpay serve`` (with ``FLASHPAY_*`` ``settings`` as its only flashpay settings,
    when given) and wait until ``/v1/health`` answers."""
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    env = dict(os.environ) if settings is None else server_environment(**settings)
    env.pop("FLASHPAY_API_HASH_KEY", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flashpay.cli",
                "serve",
                "--db",
                database_url,
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--workers",
                str(workers),
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_SECONDS_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"flashpay serve exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"flashpay serve did not start:\n{server.log()}")
