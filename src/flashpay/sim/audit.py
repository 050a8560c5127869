"""The demo's audit log: every ledger chain into the Merkle log, co-signed by member witnesses.

After the day's traffic, the demo appends every committed chain from the ledger's outbox to the
log (``ChainLog.sync_from_ledger``), starts one witness process per member institution it picks
(``flashpay witness serve``, real processes on free local ports, as each bank would run its own),
signs a checkpoint with the network's log key and collects the cosignatures; the checkpoint is
final at ``quorum`` of them. The keys stay in ``<data dir>/chain/``: ``log.key`` (the network's
signer), ``keys.txt`` (the verifier keys and the quorum, for ``flashpay chain verify-receipt``).
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from flashpay.chain import note
from flashpay.chain.publisher import Publisher, WitnessEndpoint
from flashpay.chain.service import ChainLog
from flashpay.ledger import Ledger

WITNESS_STARTUP_SECONDS = 30.0
MEMBERS = ("boc", "icbc", "ums")


@dataclass(frozen=True, slots=True)
class AuditSummary:
    leaves: int
    root_hash: str
    checkpoint: str
    final: bool
    cosigned_by: tuple[str, ...]
    quorum: int
    keys_file: str
    seconds: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(
    directory: Path, member: str, log_vkey: str
) -> tuple[subprocess.Popen[bytes], WitnessEndpoint]:
    name = f"witness.{member}.flashpay.example"
    skey, vkey = note.generate_key(name, note.COSIGNATURE_V1)
    key_file = directory / f"{member}.key"
    key_file.write_text(skey + "\n")
    key_file.chmod(0o600)
    # A new key is a new witness: the state a previous demo run left in this directory belongs to
    # another identity that witnessed another (now deleted) log, and would make this one refuse
    # the fresh log's first checkpoint as a roll-back.
    state_file = directory / f"{member}-state.json"
    state_file.unlink(missing_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flashpay.cli", "witness", "serve", "--key", str(key_file),
         "--log-key", log_vkey, "--state", str(state_file),
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / f"{member}.log").open("wb"),
    )  # fmt: skip
    return process, WitnessEndpoint(f"http://127.0.0.1:{port}", note.parse_verifier(vkey))


def _wait(endpoints: list[WitnessEndpoint]) -> None:
    deadline = time.monotonic() + WITNESS_STARTUP_SECONDS
    waiting = list(endpoints)
    while waiting and time.monotonic() < deadline:
        ready = []
        for endpoint in waiting:
            try:
                if httpx.get(f"{endpoint.url}/checkpoint", timeout=0.5).status_code in (200, 404):
                    ready.append(endpoint)
            except httpx.HTTPError:
                pass
        waiting = [e for e in waiting if e not in ready]
        if waiting:
            time.sleep(0.1)
    if waiting:
        raise RuntimeError(f"witnesses did not start: {[e.name for e in waiting]}")


class Witnesses:
    """The members' witnesses, started as local processes before the day's traffic (a process
    takes seconds to import its web stack; it boots while the payments run), with the log's
    signing key the network made for this log. ``cosign`` then appends the day to the log and
    has it co-signed; ``close`` stops the processes."""

    def __init__(self, url: str, directory: Path, *, quorum: int = 2) -> None:
        self.url = url
        self.directory = directory
        self.quorum = quorum
        directory.mkdir(parents=True, exist_ok=True)
        log = ChainLog.open(url)
        try:
            self._skey, self.vkey = note.generate_key(log.origin)
        finally:
            log.close()
        (directory / "log.key").write_text(self._skey + "\n")
        (directory / "log.key").chmod(0o600)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.endpoints: list[WitnessEndpoint] = []
        try:
            for member in MEMBERS:
                process, endpoint = _start(directory, member, self.vkey)
                self.processes.append(process)
                self.endpoints.append(endpoint)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Witnesses:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def cosign(self, ledger: Ledger) -> AuditSummary:
        """Append the ledger's chains to the log and publish a checkpoint co-signed by the
        witnesses; final at ``quorum`` of them."""
        started = time.perf_counter()
        log = ChainLog.open(self.url)
        try:
            while log.sync_from_ledger(ledger):
                pass
            _wait(self.endpoints)
            keys_file = self.directory / "keys.txt"
            keys_file.write_text(
                "\n".join([self.vkey, *(e.verifier.key_string() for e in self.endpoints),
                           f"quorum {self.quorum}"]) + "\n"
            )  # fmt: skip
            publisher = Publisher(log, signer=note.parse_signer(self._skey),
                                  witnesses=self.endpoints, quorum=self.quorum)  # fmt: skip
            try:
                checkpoint, _outcomes = publisher.publish()
            finally:
                publisher.close()
            return AuditSummary(
                leaves=checkpoint.size,
                root_hash=base64.b64encode(log.root(checkpoint.size)).decode(),
                checkpoint=checkpoint.cosigned_note(),
                final=checkpoint.final_at_ns is not None,
                cosigned_by=tuple(name for name, _ in checkpoint.cosignatures),
                quorum=self.quorum,
                keys_file=str(keys_file),
                seconds=time.perf_counter() - started,
            )
        finally:
            log.close()

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def cosign(url: str, ledger: Ledger, directory: Path, *, quorum: int = 2) -> AuditSummary:
    """Start the witnesses, append the ledger's chains to the log and publish a checkpoint
    co-signed by them (``Witnesses`` in one go)."""
    with Witnesses(url, directory, quorum=quorum) as witnesses:
        return witnesses.cosign(ledger)
