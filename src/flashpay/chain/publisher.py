"""The network's publisher: signs checkpoints and collects witness cosignatures until final.

Every ``every_seconds`` or ``every_leaves`` (whichever comes first) the publisher appends what
waits in the ledger's outbox, signs a checkpoint of the new tree with the log key and sends it to
every witness with a consistency proof from the size that witness last cosigned
(``witness.format_request``). A 409 answer names the witness's real size (it restarted, or missed
checkpoints while down): the publisher retries once from there. A checkpoint is *final* once
``quorum`` distinct witnesses (k of n) have cosigned it; a witness that is down or slow only
delays finality — requests run in parallel with a timeout, and an unfinished checkpoint is sent
again on the next round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from flashpay.chain import note
from flashpay.chain.service import ChainLog, StoredCheckpoint
from flashpay.chain.witness import SIZE_CONTENT_TYPE, format_request
from flashpay.clock import NS_PER_SECOND
from flashpay.errors import invariant
from flashpay.ledger.service import Ledger

WITNESS_TIMEOUT_SECONDS = 3.0
WITNESSES_MAX = 64


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness: where to reach it and its cosignature/v1 verifier key."""

    url: str
    verifier: note.Verifier

    @property
    def name(self) -> str:
        return self.verifier.name


@dataclass(frozen=True, slots=True)
class WitnessOutcome:
    witness: str
    status: int | None  # HTTP status, None when unreachable
    cosigned: bool
    detail: str = ""


class Publisher:
    def __init__(
        self,
        log: ChainLog,
        *,
        signer: note.Signer,
        witnesses: Sequence[WitnessEndpoint],
        quorum: int,
        http: httpx.Client | None = None,
    ) -> None:
        if signer.name != log.origin:
            raise ValueError(f"log key name {signer.name!r} is not the origin {log.origin!r}")
        if len(witnesses) > WITNESSES_MAX:
            raise ValueError(f"more than {WITNESSES_MAX} witnesses")
        if not 0 <= quorum <= len(witnesses):
            raise ValueError(f"quorum {quorum} is not between 0 and {len(witnesses)}")
        self.log = log
        self.signer = signer
        self.witnesses = tuple(witnesses)
        self.quorum = quorum
        self.http = http or httpx.Client(timeout=WITNESS_TIMEOUT_SECONDS)
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(witnesses)))
        # what each witness last cosigned, as far as we know (a 409 corrects it)
        self._sizes: dict[str, int] = log.cosigned_sizes()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.http.close()

    def sign_checkpoint(self) -> StoredCheckpoint:
        """Sign and record a checkpoint of the current tree (if its size has none yet)."""
        body = self.log.checkpoint_body()
        if self.log.checkpoint(body.size) is None:
            self.log.add_checkpoint(body, note.sign(body.body(), self.signer))
        stored = self.log.checkpoint(body.size)
        if stored is None:  # pragma: no cover - recorded just above
            invariant(False, f"checkpoint {body.size} was not recorded")
            raise AssertionError
        return stored

    def collect(self, checkpoint: StoredCheckpoint) -> list[WitnessOutcome]:
        """Send ``checkpoint`` to every witness that has not cosigned it; record cosignatures;
        mark it final at ``quorum``."""
        done = {name for name, _ in checkpoint.cosignatures}
        pending = [w for w in self.witnesses if w.name not in done]
        outcomes = list(self._pool.map(lambda w: self._ask(w, checkpoint), pending))
        cosigned = len(done) + sum(1 for o in outcomes if o.cosigned)
        if cosigned >= self.quorum:
            self.log.mark_final(checkpoint.size)
        return outcomes

    def _ask(self, witness: WitnessEndpoint, checkpoint: StoredCheckpoint) -> WitnessOutcome:
        old = self._sizes.get(witness.name, 0)
        for _attempt in range(2):
            if old > checkpoint.size:
                return WitnessOutcome(witness.name, 409, False, f"witness is at {old}")
            proof = self.log.consistency_proof(old, checkpoint.size)
            try:
                response = self.http.post(
                    f"{witness.url.rstrip('/')}/add-checkpoint",
                    content=format_request(old, proof, checkpoint.note).encode(),
                )
            except httpx.HTTPError as exc:
                return WitnessOutcome(witness.name, None, False, f"unreachable: {exc}")
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE
            ):
                try:
                    old = int(response.text.strip())
                except ValueError:
                    break
                self._sizes[witness.name] = old
                continue
            if response.status_code != 200:
                return WitnessOutcome(witness.name, response.status_code, False, response.text)
            line = response.text
            try:
                opened = note.verify(checkpoint.note + line, [witness.verifier])
            except note.NoteError as exc:
                return WitnessOutcome(witness.name, 200, False, f"bad cosignature: {exc}")
            timestamp = opened.sigs[0].timestamp or 0
            self.log.add_cosignature(checkpoint.size, witness.name, line, timestamp)
            self._sizes[witness.name] = checkpoint.size
            return WitnessOutcome(witness.name, 200, True)
        return WitnessOutcome(witness.name, 409, False, "size mismatch persisted")

    def publish(self) -> tuple[StoredCheckpoint, list[WitnessOutcome]]:
        """One round: sign a checkpoint of the current tree and collect cosignatures."""
        checkpoint = self.sign_checkpoint()
        outcomes = self.collect(checkpoint)
        return self.log.checkpoint(checkpoint.size) or checkpoint, outcomes

    def run(
        self,
        ledger: Ledger | None,
        *,
        every_seconds: float,
        every_leaves: int,
        stop: threading.Event,
        poll_seconds: float = 0.2,
    ) -> None:
        """Append from ``ledger``'s outbox and publish every ``every_seconds`` or
        ``every_leaves`` new leaves, until ``stop`` is set."""
        last_size = -1
        last_ns = 0
        while not stop.is_set():
            if ledger is not None:
                self.log.sync_from_ledger(ledger)
            size = self.log.size()
            now = time.monotonic_ns()
            latest = self.log.latest_checkpoint(final_only=False)
            unfinished = latest is not None and latest.final_at_ns is None
            due = size - max(last_size, 0) >= every_leaves or (
                now - last_ns >= every_seconds * NS_PER_SECOND
            )
            if (size != last_size and due) or (unfinished and due):
                self.publish()
                last_size, last_ns = size, now
            stop.wait(poll_seconds)
