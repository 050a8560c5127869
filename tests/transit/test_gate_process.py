"""Gates as real processes (issue 17): kill -9 during taps and during an upload, the network down
all day then up; every tap answered "open" is uploaded exactly once; a failed debit refuses the
rider at the gate after its next refresh. SQLite and PostgreSQL, real ``flashpay serve``."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.books import check_books
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import load_network
from flashpay.keys import KeyRing
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.transit import codes
from flashpay.transit.credentials import issue_credential
from flashpay.transit.debits import DebitStatus
from flashpay.transit.definition import load_definition
from flashpay.transit.denylist import gate_trust
from flashpay.transit.models import transit_taps
from flashpay.transit.settle import settle
from flashpay.wallet.payers import bound_cards
from payments.test_recovery import member

from .conftest import Rider, operators
from .processes import Process, free_port, start_gate, start_network

pytestmark = pytest.mark.slow


def trust_json(platform: Platform) -> dict[str, object]:
    snap = gate_trust(platform=platform)
    return {
        "network_id": snap.network_id.hex(),
        "network_keys": {str(k): v.hex() for k, v in snap.network_keys.items()},
        "deny_version": snap.deny.version,
        "deny_digest": snap.deny.digest.hex(),
        "denied_tokens": list(snap.denied_tokens),
        "revoked_serials": list(snap.revoked_serials),
    }


def tap(gate: Process, rider: Rider) -> dict[str, object] | None:
    """The gate's answer, ``None`` when the gate died before answering."""
    code = rider.code(int(time.time()))
    try:
        return httpx.post(gate.base_url + "/tap", content=codes.to_qr_text(code), timeout=5).json()
    except httpx.HTTPError:
        return None


def test_kill9_during_taps_and_uploads_then_network_up(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "network"
    data_dir.mkdir()
    platform = Platform.open(
        database_url, keys=KeyRing.load(data_dir), notifier=RecordingNotifier()
    )
    load_network(platform=platform, definition=default_definition())
    subway, _bus = operators(platform)
    key = create_api_key(platform=platform, kind=PrincipalKind.MERCHANT, principal_id=subway.id).key
    definition = load_definition()
    riders = []
    for n, balance in enumerate([20_000, 20_000, 20_000, 300]):
        m = member(platform, 700 + n, bank="BOC", prefix="621661", balance=balance)
        with platform.engine.connect() as connection:
            [bound] = bound_cards(connection, wallet_card_ids=[m.wallet_card_id])
        device = Ed25519PrivateKey.generate()
        issued = issue_credential(
            platform=platform,
            definition=definition,
            token=bound.token,
            device_public_key=codes.public_bytes(device.public_key()),
            ride_credit_limit_minor=5000,
            user_id=m.user_id,
        )
        riders.append(Rider(bound.token, m.card_id, m.user_id, device, issued.credential))
    network_port = free_port()  # nothing listens yet: the network is down all day
    network_url = f"http://127.0.0.1:{network_port}"
    dirs = {"G-IN": tmp_path / "gate-in", "G-OUT": tmp_path / "gate-out"}
    for directory in dirs.values():  # provisioned once, before the day
        directory.mkdir()
        (directory / "trust.json").write_text(json.dumps(trust_json(platform)))
    ports = {g: free_port() for g in dirs}

    def gate(gate_id: str, **kw: int) -> Process:
        station, kind = ("S01", "in") if gate_id == "G-IN" else ("S04", "out")
        return start_gate(
            gate_id,
            station,
            kind,
            dirs[gate_id],
            network=network_url,
            api_key=key,
            port=ports[gate_id],
            **kw,
        )

    gates = {g: gate(g) for g in dirs}
    rng = random.Random(17)
    opened: dict[str, int] = dict.fromkeys(dirs, 0)
    try:
        for _trip in range(6):
            for gate_id in ("G-IN", "G-OUT"):
                for rider in riders:
                    answer = tap(gates[gate_id], rider)
                    if answer is not None and answer["open"]:
                        opened[gate_id] += 1
                    if rng.random() < 0.15:  # kill -9 mid-day, then the gate comes back
                        gates[gate_id].kill9()
                        gates[gate_id] = gate(gate_id)
        status = {g: httpx.get(p.base_url + "/status").json() for g, p in gates.items()}
        assert all(s["uploaded"] == 0 and not s["online"] for s in status.values())
        assert {g: s["seq"] for g, s in status.items()} == opened
        # the network comes up; kill the gates while they upload in small batches
        server = start_network(database_url, data_dir, port=network_port)
        try:
            for gate_id in dirs:
                gates[gate_id].kill9()
                gates[gate_id] = gate(gate_id, upload_batch=3)
                time.sleep(0.3)
                gates[gate_id].kill9()
                gates[gate_id] = gate(gate_id, upload_batch=3)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = {g: httpx.get(p.base_url + "/status").json() for g, p in gates.items()}
                if all(s["uploaded"] == s["seq"] for s in status.values()):
                    break
                time.sleep(0.2)
            with platform.engine.connect() as connection:
                stored = {
                    g: connection.execute(
                        transit_taps.select().where(transit_taps.c.gate_id == g)
                    ).all()
                    for g in dirs
                }
            for gate_id in dirs:  # every tap answered "open" is there once, nothing else
                seqs = sorted(int(r.seq) for r in stored[gate_id])
                assert seqs == list(range(1, opened[gate_id] + 1)), gate_id
            report = settle(platform=platform, definition=definition)
            assert report.trips == opened["G-IN"]
            failed = [d for d in report.debits if d.status is DebitStatus.FAILED]
            assert [d.token for d in failed] == [riders[3].token]  # ¥3 cannot pay 6 × ¥7
            # after the next refresh the gate refuses the rider whose debit failed
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if httpx.get(gates["G-IN"].base_url + "/status").json()["deny_version"] == 1:
                    break
                time.sleep(0.2)
            answer = tap(gates["G-IN"], riders[3])
            assert answer == {"open": False, "reason": "ride_token_deny_listed"}
            assert tap(gates["G-IN"], riders[0]) == {"open": True, "seq": opened["G-IN"] + 1}
        finally:
            server.stop()
    finally:
        for process in gates.values():
            process.stop()
    assert check_books(platform=platform) == []
    platform.close()
