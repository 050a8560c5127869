"""Real processes for the transit tests: ``flashpay serve`` and ``flashpay transit gate serve``,
each in its own process group, killed with SIGKILL when a test says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS_MAX = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill9()


def _start(args: list[str], port: int, log_path: Path, ready_path: str) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "src")
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "flashpay.cli", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    started = Process(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_SECONDS_MAX
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[0]} exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(started.base_url + ready_path, timeout=1).status_code == 200:
                return started
        except httpx.TransportError:
            time.sleep(0.05)
    started.stop()
    raise RuntimeError(f"{args} did not start:\n{log_path.read_text()}")


def start_network(database_url: str, data_dir: Path, port: int | None = None) -> Process:
    port = port or free_port()
    args = [
        "serve",
        "--db",
        database_url,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return _start(args, port, data_dir / "server.log", "/v1/health")


def start_gate(
    gate_id: str,
    station: str,
    kind: str,
    directory: Path,
    *,
    network: str,
    api_key: str,
    port: int | None = None,
    upload_batch: int = 1000,
) -> Process:
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        "transit",
        "gate",
        "serve",
        "--gate-id",
        gate_id,
        "--station",
        station,
        "--kind",
        kind,
        "--dir",
        str(directory),
        "--network",
        network,
        "--api-key",
        api_key,
        "--port",
        str(port),
        "--sync-seconds",
        "0.2",
        "--upload-batch",
        str(upload_batch),
    ]
    return _start(args, port, directory / "gate.log", "/status")
