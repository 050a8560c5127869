"""A gate as a process: ``flashpay transit gate serve`` (one per station entrance or bus).

The gate answers taps over a small local HTTP server (``POST /tap`` with the QR text of a ride
code; ``GET /status``), verifying each code offline against the trust it holds (``codes``). Its
state lives in its directory:

- ``journal.log``: one JSON line per tap it opened for, appended and ``fsync``-ed **before** the
  answer "open" leaves the process, so a kill -9 loses no tap it answered; a torn last line (the
  process died mid-write, before answering) is dropped on restart. Sequence numbers restart from
  the journal's last.
- ``uploaded``: the highest sequence number the network acknowledged, replaced atomically
  (write, fsync, rename). A kill between the network's answer and this file means the batch is
  sent again, and the network (idempotent per gate and seq) counts it once.
- ``trust.json``: the last trust downloaded (network keys, deny list, revoked serials), so a gate
  restarted while offline keeps verifying.

A background thread, every ``sync_seconds``, refreshes the trust and uploads the journal past the
acknowledged mark in batches of ``UPLOAD_BATCH_MAX``, with capped retries per round; when the
network cannot be reached it tries again next round and the gate keeps answering taps.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flashpay.transit import codes
from flashpay.transit.trips import TapKind

UPLOAD_BATCH_MAX = 1000
UPLOAD_RETRIES_MAX = 3
TIMEOUT_SECONDS = 5.0
TAP_BODY_BYTES_MAX = 2048
NS = 1_000_000_000


@dataclass
class GateConfig:
    gate_id: str
    station: str
    kind: TapKind
    directory: Path
    network_url: str | None
    api_key: str | None
    sync_seconds: float = 5.0
    clock_offset_seconds: float = 0.0  # a gate whose clock drifts (tests and the demo)
    upload_batch: int = UPLOAD_BATCH_MAX


@dataclass
class GateState:
    config: GateConfig
    trust: codes.GateTrust | None = None
    seq: int = 0
    uploaded: int = 0
    seen: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    online: bool = False

    # -- clock and files ----------------------------------------------------------------------
    def now_ns(self) -> int:
        return time.time_ns() + int(self.config.clock_offset_seconds * NS)

    @property
    def journal_path(self) -> Path:
        return self.config.directory / "journal.log"

    def load(self) -> None:
        self.config.directory.mkdir(parents=True, exist_ok=True)
        truncate_torn_tail(self.journal_path)
        for entry in read_journal(self.journal_path):
            self.seq = max(self.seq, int(entry["seq"]))
            self.seen.add(bytes.fromhex(entry["digest"]))
        mark = self.config.directory / "uploaded"
        self.uploaded = int(mark.read_text()) if mark.exists() else 0
        cached = self.config.directory / "trust.json"
        if cached.exists():
            self.trust = trust_from_json(json.loads(cached.read_text()))

    def _write_atomically(self, name: str, text: str) -> None:
        path = self.config.directory / name
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)

    # -- a tap --------------------------------------------------------------------------------
    def tap(self, qr_text: str) -> dict[str, Any]:
        with self.lock:
            if self.trust is None:
                return {"open": False, "reason": "gate_has_no_trust"}
            now = self.now_ns()
            verdict = codes.verify_code(
                self.trust, codes.from_qr_text(qr_text), now_s=now // NS, seen=self.seen
            )
            if isinstance(verdict, codes.Refused):
                return {"open": False, "reason": verdict.reason.value}
            self.seq += 1
            entry = {
                "seq": self.seq,
                "token": verdict.token,
                "station": self.config.station,
                "kind": self.config.kind.value,
                "at_ns": now,
                "digest": verdict.digest.hex(),
                "deny_version": self.trust.deny_version,
            }
            line = json.dumps(entry, separators=(",", ":")) + "\n"
            with self.journal_path.open("a") as journal:
                journal.write(line)
                journal.flush()
                os.fsync(journal.fileno())
            # commit point: the tap is durable; only now may the gate open
            self.seen.add(verdict.digest)
            return {"open": True, "seq": self.seq}

    # -- the network ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.config.api_key or ""}

    def refresh(self, client: httpx.Client) -> None:
        response = client.get("/v1/transit/gate-trust", headers=self._headers())
        response.raise_for_status()
        data = response.json()
        self._write_atomically("trust.json", json.dumps(data))
        with self.lock:
            self.trust = trust_from_json(data)

    def upload(self, client: httpx.Client) -> int:
        """Upload the journal past the acknowledged mark; the number of taps acknowledged."""
        sent = 0
        pending = [e for e in read_journal(self.journal_path) if int(e["seq"]) > self.uploaded]
        size = max(1, min(self.config.upload_batch, UPLOAD_BATCH_MAX))
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            for attempt in range(UPLOAD_RETRIES_MAX):
                try:
                    response = client.post(
                        f"/v1/transit/gates/{self.config.gate_id}/taps",
                        headers=self._headers(),
                        json={"gate_clock_ns": self.now_ns(), "taps": batch},
                    )
                    response.raise_for_status()
                    break
                except httpx.HTTPError:
                    if attempt == UPLOAD_RETRIES_MAX - 1:
                        raise
                    time.sleep(0.2 * 2**attempt)
            self.uploaded = int(batch[-1]["seq"])
            self._write_atomically("uploaded", str(self.uploaded))
            sent += len(batch)
        return sent

    def sync_forever(self, stop: threading.Event) -> None:
        if self.config.network_url is None:
            return
        with httpx.Client(base_url=self.config.network_url, timeout=TIMEOUT_SECONDS) as client:
            while not stop.is_set():
                try:
                    self.refresh(client)
                    self.upload(client)
                    self.online = True
                except (httpx.HTTPError, OSError, ValueError):
                    self.online = False  # offline: keep answering taps with the trust held
                stop.wait(self.config.sync_seconds)


def truncate_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (the process died writing it, before answering), so
    the next tap's line starts on a line of its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)
            file.flush()
            os.fsync(file.fileno())


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's entries; a torn last line (a kill mid-write) is left out."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # only the last line can be torn: it was never answered
    return entries


def trust_from_json(data: dict[str, Any]) -> codes.GateTrust:
    return codes.GateTrust(
        network_id=bytes.fromhex(data["network_id"]),
        network_keys={
            int(k): Ed25519PublicKey.from_public_bytes(bytes.fromhex(v))
            for k, v in data["network_keys"].items()
        },
        revoked_serials=frozenset(int(s) for s in data["revoked_serials"]),
        denied_tokens=frozenset(data["denied_tokens"]),
        deny_version=int(data["deny_version"]),
    )


def _handler(state: GateState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            del format, args

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/status":
                self._answer(404, {"error": "not_found"})
                return
            trust = state.trust
            self._answer(200, {
                "gate_id": state.config.gate_id, "seq": state.seq, "uploaded": state.uploaded,
                "online": state.online, "deny_version": trust.deny_version if trust else None,
            })  # fmt: skip

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/tap" or not 0 < length <= TAP_BODY_BYTES_MAX:
                self._answer(400, {"error": "bad_request"})
                return
            text = self.rfile.read(length).decode(errors="replace").strip()
            self._answer(200, state.tap(text))

    return Handler


def serve(config: GateConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the gate until killed: the tap server in this thread, the sync in another."""
    state = GateState(config)
    state.load()
    stop = threading.Event()
    syncer = threading.Thread(target=state.sync_forever, args=(stop,), daemon=True)
    syncer.start()
    server = HTTPServer((host, port), _handler(state))
    print(f"gate {config.gate_id} listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
