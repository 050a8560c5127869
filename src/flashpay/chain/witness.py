"""A member institution's witness: verifies and cosigns the network's checkpoints (tlog-witness).

The witness speaks the C2SP ``tlog-witness`` ``add-checkpoint`` protocol over HTTP::

    POST /add-checkpoint
    old <size the log believes the witness last cosigned>
    <consistency proof hashes, base64, one per line>
    <blank line>
    <the checkpoint, a note signed by the log>

and answers, in order of the checks (``AddResult``):

* 400 — a malformed request, or a checkpoint smaller than ``old``;
* 403 — the checkpoint is not signed by the log's key;
* 404 — the checkpoint is of another log (origin);
* 409 ``text/x.tlog.size`` — ``old`` is not the size this witness last cosigned (the body says
  which); a checkpoint smaller than the witness's is refused so (no rollback). With ``--log-url``
  the witness first tries to fetch the proof from its own size itself (catch-up after downtime);
* 422 — the consistency proof fails: the log presented a tree that does not extend the one the
  witness cosigned (a fork, or a different tree of the same size). Both signed checkpoints and
  the proof are stored in the state file as evidence, and the witness never cosigns that tree;
* 200 — the cosignature line (``— <witness name> base64(key ID || u64 time || Ed25519)``).

State (last cosigned size, root and signed checkpoint, and fork evidence) is one JSON file,
replaced atomically (write a temp file, fsync, rename, fsync the directory) *before* the
cosignature is returned, so a crash never lets the witness cosign two trees of one size.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

import httpx
from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from flashpay.chain import merkle, note
from flashpay.chain.checkpoint import CheckpointError
from flashpay.chain.checkpoint import parse as parse_checkpoint
from flashpay.clock import NS_PER_SECOND, Clock, SystemClock
from flashpay.errors import FlashpayError

REQUEST_BYTES_MAX = 64 * 1024
EVIDENCE_MAX = 1000
LOG_FETCH_TIMEOUT_SECONDS = 5.0
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class AddResult(IntEnum):
    """HTTP status of ``add-checkpoint``, in the order the witness checks."""

    COSIGNED = 200
    MALFORMED = 400
    BAD_SIGNATURE = 403
    UNKNOWN_LOG = 404
    SIZE_MISMATCH = 409
    INCONSISTENT = 422


@dataclass(frozen=True, slots=True)
class WitnessState:
    origin: str
    size: int = 0
    root_hash: bytes = merkle.EMPTY_ROOT
    checkpoint: str | None = None  # the log-signed note last cosigned
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "checkpoint": self.checkpoint,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WitnessState:
        return cls(
            origin=str(data["origin"]),
            size=int(data["size"]),
            root_hash=base64.b64decode(data["root_hash"]),
            checkpoint=data.get("checkpoint"),
            evidence=tuple(data.get("evidence", ())),
        )


def load_state(path: Path, origin: str) -> WitnessState:
    """The state at ``path``, or a fresh one (size 0) when the file does not exist."""
    if not path.exists():
        return WitnessState(origin=origin)
    state = WitnessState.from_json(json.loads(path.read_text()))
    if state.origin != origin:
        raise ValueError(f"state file {path} is for log {state.origin!r}, not {origin!r}")
    return state


def save_state(path: Path, state: WitnessState) -> None:
    """Replace the state file atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state.to_json(), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    note_text: str


class RequestError(FlashpayError, ValueError):
    """An ``add-checkpoint`` request that is malformed or does not fit the witness's state."""


def format_request(old_size: int, proof: Sequence[bytes], signed_note: str) -> str:
    """The body of an ``add-checkpoint`` request."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return "\n".join(lines) + "\n\n" + signed_note


def parse_request(body: str) -> AddCheckpointRequest:
    head, sep, note_text = body.partition("\n\n")
    if not sep:
        raise RequestError("no blank line before the checkpoint")
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise RequestError("first line must be 'old <size>'")
    size_text = lines[0][4:]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise RequestError("old size is not a decimal")
    if len(lines) - 1 > merkle.PROOF_HASHES_MAX:
        raise RequestError("proof too long")
    try:
        proof = tuple(base64.b64decode(line.encode(), validate=True) for line in lines[1:])
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RequestError("proof line is not base64") from exc
    return AddCheckpointRequest(int(size_text), proof, note_text)


class Witness:
    """The witness logic (the HTTP app is a thin shell around ``add_checkpoint``)."""

    def __init__(
        self,
        *,
        signer: note.Signer,
        log_verifier: note.Verifier,
        state_path: Path,
        log_url: str | None = None,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        if signer.key_type != note.COSIGNATURE_V1:
            raise ValueError("a witness key must be a cosignature/v1 (type 0x04) key")
        self.signer = signer
        self.log_verifier = log_verifier
        self.origin = log_verifier.name
        self.state_path = state_path
        self.log_url = log_url.rstrip("/") if log_url else None
        self.clock: Clock = clock or SystemClock()
        self.http = http or httpx.Client(timeout=LOG_FETCH_TIMEOUT_SECONDS)
        self._lock = threading.Lock()
        self.state = load_state(state_path, self.origin)

    def _fetch_proof(self, size1: int, size2: int) -> tuple[bytes, ...] | None:
        """Ask the log for a consistency proof (it is verified like any other)."""
        if self.log_url is None:
            return None
        try:
            response = self.http.get(
                f"{self.log_url}/v1/chain/proof/consistency",
                params={"first": size1, "second": size2},
            )
            if response.status_code != 200:
                return None
            return tuple(base64.b64decode(h) for h in response.json()["proof"])
        except (httpx.HTTPError, ValueError, KeyError, binascii.Error):
            return None

    def add_checkpoint(self, body: str) -> tuple[AddResult, str]:
        """Handle one request; returns the status and the response text."""
        try:
            request = parse_request(body)
            opened = note.verify(request.note_text, [self.log_verifier])
        except RequestError as exc:
            return AddResult.MALFORMED, f"{exc}\n"
        except note.UnverifiedNoteError:
            return AddResult.BAD_SIGNATURE, "checkpoint is not signed by the log's key\n"
        except note.NoteError as exc:
            return AddResult.BAD_SIGNATURE, f"{exc}\n"
        try:
            checkpoint = parse_checkpoint(opened.text)
        except CheckpointError as exc:
            return AddResult.MALFORMED, f"{exc}\n"
        if checkpoint.origin != self.origin:
            return AddResult.UNKNOWN_LOG, f"unknown log {checkpoint.origin!r}\n"
        with self._lock:
            state = self.state
            old, proof = request.old_size, request.proof
            if old != state.size and checkpoint.size >= state.size:
                fetched = self._fetch_proof(state.size, checkpoint.size)
                if fetched is not None:
                    old, proof = state.size, fetched
            if old != state.size:
                return AddResult.SIZE_MISMATCH, f"{state.size}\n"
            if checkpoint.size < old:
                return AddResult.MALFORMED, "checkpoint is smaller than the old size\n"
            try:
                merkle.verify_consistency(
                    old, checkpoint.size, proof, state.root_hash, checkpoint.root_hash
                )
            except merkle.ProofError as exc:
                evidence = {
                    "detected_at_ns": self.clock.now_ns(),
                    "reason": str(exc),
                    "cosigned_checkpoint": state.checkpoint,
                    "presented_checkpoint": request.note_text,
                    "proof": [base64.b64encode(h).decode() for h in proof],
                }
                kept = (*state.evidence, evidence)[-EVIDENCE_MAX:]
                self.state = replace(state, evidence=kept)
                save_state(self.state_path, self.state)
                return AddResult.INCONSISTENT, f"inconsistent with the cosigned tree: {exc}\n"
            timestamp = self.clock.now_ns() // NS_PER_SECOND
            line = note.signature_line(opened.text, self.signer, timestamp=timestamp)
            new_state = replace(
                state,
                size=checkpoint.size,
                root_hash=checkpoint.root_hash,
                checkpoint=request.note_text,
            )
            save_state(self.state_path, new_state)  # commit point: durable before we answer
            self.state = new_state
            return AddResult.COSIGNED, line


def create_app(witness: Witness) -> FastAPI:
    """The witness's HTTP app: ``POST /add-checkpoint``, ``GET /checkpoint``, ``GET /evidence``."""
    app = FastAPI(title="flashpay witness", openapi_url=None)

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > REQUEST_BYTES_MAX:
            return PlainTextResponse("request too large\n", status_code=413)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("not UTF-8\n", status_code=400)
        result, text = await to_thread.run_sync(witness.add_checkpoint, body)
        media = SIZE_CONTENT_TYPE if result is AddResult.SIZE_MISMATCH else "text/plain"
        return PlainTextResponse(text, status_code=int(result), media_type=media)

    @app.get("/checkpoint")
    async def checkpoint() -> Response:
        state = witness.state
        return JSONResponse(
            {"origin": state.origin, "size": state.size, "checkpoint": state.checkpoint}
        )

    @app.get("/evidence")
    async def evidence() -> Response:
        return JSONResponse({"evidence": list(witness.state.evidence)})

    return app
