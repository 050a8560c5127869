"""Witnesses as real processes over HTTP (2-of-3), their refusals, and receipts end to end.

The log runs on SQLite here: what is under test is the witnesses' protocol and durability (the
storage itself is tested on both databases in test_store.py and test_audit.py)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from flashpay import db
from flashpay.chain import merkle, note
from flashpay.chain.publisher import Publisher, WitnessEndpoint
from flashpay.chain.receipt import build_receipt, parse_trust, verify_receipt
from flashpay.chain.service import DEFAULT_ORIGIN, ChainLog
from flashpay.chain.witness import AddResult, Witness, format_request
from flashpay.cli.main import app
from flashpay.clock import FakeClock
from flashpay.ledger import Ledger
from flashpay.ledger.types import Account

from .conftest import ACCOUNTS, post_chains

STARTUP_SECONDS_MAX = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WitnessProcess:
    name: str
    key_file: Path
    vkey: str
    state: Path
    port: int
    log_vkey: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flashpay.cli", "witness", "serve", "--key", str(self.key_file),
             "--log-key", self.log_vkey, "--state", str(self.state), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS_MAX
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/checkpoint", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"witness {self.name} did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def state_json(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(self.state.read_text())
        return result


def make_witnesses(tmp_path: Path, log_vkey: str, count: int) -> list[WitnessProcess]:
    witnesses = []
    for i in range(count):
        name = f"witness{i + 1}.bank-{i + 1}.example"
        skey, vkey = note.generate_key(name, note.COSIGNATURE_V1)
        key_file = tmp_path / f"w{i + 1}.key"
        key_file.write_text(skey + "\n")
        witnesses.append(
            WitnessProcess(name, key_file, vkey, tmp_path / f"w{i + 1}.json", free_port(), log_vkey)
        )
    for w in witnesses:
        w.start()
    for w in witnesses:
        w.wait_ready()
    return witnesses


@pytest.fixture
def network(sqlite_url: str) -> Iterator[tuple[Ledger, ChainLog]]:
    ledger = Ledger.open(sqlite_url, clock=FakeClock())
    ledger.create_accounts([Account(id=i, ledger=156, code=10) for i in ACCOUNTS])
    log = ChainLog.open(sqlite_url)
    yield ledger, log
    log.close()
    ledger.close()


def test_three_witnesses_two_of_three_kill_restart_catch_up_and_receipts(
    network: tuple[Ledger, ChainLog], tmp_path: Path, log_keys: tuple[str, str]
) -> None:
    ledger, log = network
    skey, vkey = log_keys
    witnesses = make_witnesses(tmp_path, vkey, 3)
    try:
        publisher = Publisher(
            log,
            signer=note.parse_signer(skey),
            witnesses=[WitnessEndpoint(w.url, note.parse_verifier(w.vkey)) for w in witnesses],
            quorum=2,
        )
        keys = tmp_path / "keys.txt"
        keys.write_text("\n".join([vkey, *(w.vkey for w in witnesses), "quorum 2"]) + "\n")
        trust = parse_trust(keys.read_text())

        posted = post_chains(ledger, 3)
        log.sync_from_ledger(ledger)
        first, outcomes = publisher.publish()
        assert [o.cosigned for o in outcomes] == [True, True, True]
        assert first.size == 3
        assert first.final_at_ns is not None
        assert len(note.verify(first.cosigned_note(), [w.vkey for w in witnesses]).sigs) == 3

        witnesses[2].kill()  # one member's witness goes down mid-run
        posted += post_chains(ledger, 2, first_id=300)
        log.sync_from_ledger(ledger)
        second, outcomes = publisher.publish()
        assert [o.cosigned for o in outcomes] == [True, True, False]
        assert outcomes[2].status is None  # unreachable
        assert second.final_at_ns is not None  # 2 of 3 is enough
        posted += post_chains(ledger, 1, first_id=400)
        log.sync_from_ledger(ledger)
        third, _ = publisher.publish()
        assert (third.size, third.final_at_ns is not None) == (6, True)
        assert witnesses[2].state_json()["size"] == 3  # what it cosigned before it died

        witnesses[2].start()  # restarted with its durable state: catches up from 3 to 6
        witnesses[2].wait_ready()
        caught_up, outcomes = publisher.publish()
        assert [o.witness for o in outcomes if o.cosigned] == [witnesses[2].name]
        assert {name for name, _ in caught_up.cosignatures} == {w.name for w in witnesses}
        assert witnesses[2].state_json()["size"] == 6

        # a receipt verifies offline with the keys alone, here and through the CLI
        receipt = build_receipt(log, posted[4].chain_id)
        assert receipt is not None
        verified = verify_receipt(receipt, trust)
        assert verified.leaf.leaf_index == 4
        assert verified.leaf.transfers[0].amount == 1001
        assert len(verified.cosigners) == 3
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps(receipt))
        runner = CliRunner()
        ok = runner.invoke(app, ["chain", "verify-receipt", str(path), "--keys", str(keys)])
        assert ok.exit_code == 0, ok.output
        assert "is leaf 4 of the tree of 6 leaves" in ok.output
        forged = dict(receipt, tree_size=5)
        path.write_text(json.dumps(forged))
        bad = runner.invoke(app, ["chain", "verify-receipt", str(path), "--keys", str(keys)])
        assert bad.exit_code == 1
        status = runner.invoke(app, ["chain", "status", "--db", log.url])
        assert "tree size 6" in status.output
        assert f"witness {witnesses[2].name}: cosigned up to 6" in status.output
        publisher.close()
    finally:
        for w in witnesses:
            w.kill()


def test_a_forked_log_is_refused_and_the_evidence_kept(
    network: tuple[Ledger, ChainLog], tmp_path: Path, log_keys: tuple[str, str]
) -> None:
    ledger, log = network
    skey, vkey = log_keys
    (witness,) = make_witnesses(tmp_path, vkey, 1)
    try:
        endpoint = WitnessEndpoint(witness.url, note.parse_verifier(witness.vkey))
        publisher = Publisher(log, signer=note.parse_signer(skey), witnesses=[endpoint], quorum=1)
        post_chains(ledger, 4)
        log.sync_from_ledger(ledger)
        honest, _ = publisher.publish()
        assert honest.final_at_ns is not None

        # The operator builds a second tree that rewrites leaf 2 and signs it with the log key.
        fork_url = f"sqlite:///{tmp_path / 'fork.db'}"
        db.upgrade(fork_url)
        fork = ChainLog.open(fork_url)
        leaves = [data for _, _, data in log.leaves(0, 10)]
        leaves[2] = leaves[2][:-1] + bytes([leaves[2][-1] ^ 1])
        fork.append_leaves([(i + 1, d) for i, d in enumerate([*leaves, b"x", b"y"])])
        for size, proof_from in ((4, 4), (6, 4)):  # the same size, then a bigger one
            body = fork.checkpoint_body(size)
            signed = note.sign(body.body(), skey)
            proof = fork.consistency_proof(proof_from, size)
            response = httpx.post(
                f"{witness.url}/add-checkpoint",
                content=format_request(proof_from, proof, signed).encode(),
            )
            assert response.status_code == 422, response.text
        fork.close()

        evidence = httpx.get(f"{witness.url}/evidence").json()["evidence"]
        assert len(evidence) == 2
        assert evidence[0]["cosigned_checkpoint"] == honest.note
        assert evidence[0]["presented_checkpoint"].split("\n")[1] == "4"
        assert note.verify(evidence[1]["presented_checkpoint"], [vkey])  # signed: proof
        state = witness.state_json()
        assert state["size"] == 4  # never moved to the forked tree
        assert len(state["evidence"]) == 2  # type: ignore[arg-type]
    finally:
        witness.kill()


def test_witness_refusals_in_order(tmp_path: Path, log_keys: tuple[str, str]) -> None:
    skey, vkey = log_keys
    wkey, _ = note.generate_key("w.example", note.COSIGNATURE_V1)
    witness = Witness(
        signer=note.parse_signer(wkey),
        log_verifier=note.parse_verifier(vkey),
        state_path=tmp_path / "state.json",
        clock=FakeClock(),
    )
    leaves = [bytes([i]) for i in range(8)]

    def signed(size: int, key: str = skey, origin: str = DEFAULT_ORIGIN) -> str:
        root = base64.b64encode(merkle.root_hash(leaves[:size])).decode()
        return note.sign(f"{origin}\n{size}\n{root}\n", key)

    assert witness.add_checkpoint("nonsense")[0] is AddResult.MALFORMED
    other_skey, _ = note.generate_key(DEFAULT_ORIGIN)
    assert witness.add_checkpoint(format_request(0, [], signed(4, other_skey)))[0] is (
        AddResult.BAD_SIGNATURE
    )
    # signed by the log's key but naming another log
    assert witness.add_checkpoint(format_request(0, [], signed(4, origin="other.example")))[0] is (
        AddResult.UNKNOWN_LOG
    )
    result, line = witness.add_checkpoint(format_request(0, [], signed(4)))
    assert result is AddResult.COSIGNED
    assert line.startswith("— w.example ")
    assert json.loads((tmp_path / "state.json").read_text())["size"] == 4
    # the log thinks the witness is at 2: 409 with the real size
    assert witness.add_checkpoint(format_request(2, [], signed(6))) == (
        AddResult.SIZE_MISMATCH,
        "4\n",
    )
    # rollback: an older, smaller checkpoint is refused
    assert witness.add_checkpoint(format_request(2, [], signed(2)))[0] is AddResult.SIZE_MISMATCH
    proof = merkle.consistency_proof(leaves, 4, 6)
    assert witness.add_checkpoint(format_request(4, proof, signed(6)))[0] is AddResult.COSIGNED
    assert witness.add_checkpoint(format_request(6, [], signed(4)))[0] is AddResult.MALFORMED
    # a witness restarted from its state file continues where it stopped
    again = Witness(
        signer=note.parse_signer(wkey),
        log_verifier=note.parse_verifier(vkey),
        state_path=tmp_path / "state.json",
    )
    assert again.state.size == 6
    assert again.state.root_hash == merkle.root_hash(leaves[:6])


def test_a_witness_behind_fetches_the_proof_from_the_log_url(
    tmp_path: Path, log_keys: tuple[str, str], sqlite_url: str
) -> None:
    skey, vkey = log_keys
    log = ChainLog.open(sqlite_url)
    log.append_leaves([(i + 1, bytes([i])) for i in range(9)])

    def log_api(request: httpx.Request) -> httpx.Response:  # the log's route, as a seam
        assert request.url.path == "/v1/chain/proof/consistency"
        first, second = int(request.url.params["first"]), int(request.url.params["second"])
        proof = log.consistency_proof(first, second)
        return httpx.Response(200, json={"proof": [base64.b64encode(h).decode() for h in proof]})

    wkey, _ = note.generate_key("w.example", note.COSIGNATURE_V1)
    witness = Witness(
        signer=note.parse_signer(wkey),
        log_verifier=note.parse_verifier(vkey),
        state_path=tmp_path / "state.json",
        log_url="http://log.test",
        http=httpx.Client(transport=httpx.MockTransport(log_api)),
    )
    for size in (3, 9):
        signed = note.sign(log.checkpoint_body(size).body(), skey)
        # the publisher believes the witness is at 0; the witness fetches 0->3, then 3->9
        result, _ = witness.add_checkpoint(format_request(0, [], signed))
        assert result is AddResult.COSIGNED
    assert witness.state.size == 9
    log.close()
