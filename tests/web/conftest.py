"""Fixtures for the browser tests: one real ``flashpay serve`` over a fresh SQLite database with
the default network, a bank, an acquirer's merchant (with a discount campaign it funds), an audit
log witness (its own process) and one headless Chromium (Debian's, at ``/usr/bin/chromium``).

Chromium must be installed (``make test`` installs it): without it these tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from api_testkit import Server, free_port, start_server

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.chain import note
from flashpay.chain.publisher import Publisher, WitnessEndpoint
from flashpay.chain.service import ChainLog
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.platform import Platform

CHROMIUM = "/usr/bin/chromium"
MOBILE = {"width": 390, "height": 844}
SCREENS = Path(os.environ.get("FLASHPAY_SCREENSHOTS", "build/screens"))
ORIGIN = "flashpay.example/audit-log"


@dataclass
class Network:
    """The running world the pages are tested against."""

    server: Server
    platform: Platform
    chain_log: ChainLog
    publisher: Publisher
    keys: dict[str, str]
    merchant: dict[str, Any]
    url: str
    timings: dict[str, float] = field(default_factory=dict)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, timeout=30)

    def issue_card(self, *, phone: str, name: str, id_number: str, pan: str) -> None:
        body = {
            "card_number": pan,
            "expiry": "12/30",
            "holder_name": name,
            "holder_id_number": id_number,
            "phone": phone,
            "opening_balance": "1000.00",
        }
        with self.api() as client:
            issued = client.post(
                "/v1/issuer/cards", json=body, headers={"X-Api-Key": self.keys["BOC"]}
            )
        assert issued.status_code == 201, issued.text

    def publish(self) -> None:
        """What the network's publisher does on its schedule: the ledger's new chains into the
        audit log, a checkpoint signed and co-signed by the witness."""
        self.chain_log.sync_from_ledger(self.platform.ledger)
        self.publisher.publish()


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


@pytest.fixture(scope="module")
def network(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    home = tmp_path_factory.mktemp("web")
    shutil.copyfile(_sqlite_template, home / "flashpay.db")
    url = f"sqlite:///{home / 'flashpay.db'}"
    platform = Platform.open(url, keys=KeyRing.load(home))
    load_network(platform=platform, definition=default_definition())
    keys: dict[str, str] = {}
    for code in ("BOC", "UMS"):
        institution = get_institution(platform=platform, code=code)
        assert institution is not None
        keys[code] = create_api_key(
            platform=platform, kind=PrincipalKind.INSTITUTION, principal_id=institution.id
        ).key
    cup = get_institution(platform=platform, code="CUP")
    assert cup is not None
    keys["admin"] = create_api_key(
        platform=platform, kind=PrincipalKind.INSTITUTION, principal_id=cup.id, network_admin=True
    ).key

    # The audit log: its key, one witness in its own process, the keys file the pages verify with.
    log_signer, log_verifier = note.generate_key(ORIGIN)
    witness_signer, witness_verifier = note.generate_key(
        "witness.bank-a.example", note.COSIGNATURE_V1
    )
    (home / "w.key").write_text(witness_signer)
    witness_port = free_port()
    witness = subprocess.Popen(
        [sys.executable, "-m", "flashpay.cli", "witness", "serve", "--key", str(home / "w.key"),
         "--log-key", log_verifier, "--state", str(home / "w.json"), "--port", str(witness_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    keys_file = home / "audit-keys.txt"
    keys_file.write_text(f"{log_verifier}\n{witness_verifier}\nquorum 1\n")
    server = start_server(
        url, home, workers=1, settings={"FLASHPAY_AUDIT_KEYS": str(keys_file)},
        extra_args=("--no-access-log",),
    )  # fmt: skip
    _wait_for(f"http://127.0.0.1:{witness_port}/checkpoint")
    chain_log = ChainLog.open(url, origin=ORIGIN)
    publisher = Publisher(
        chain_log,
        signer=note.parse_signer(log_signer),
        witnesses=[
            WitnessEndpoint(
                f"http://127.0.0.1:{witness_port}", note.parse_verifier(witness_verifier)
            )
        ],
        quorum=1,
    )  # fmt: skip
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        signed = client.post(
            "/v1/acquirer/merchants",
            json={"legal_name": "Wumart Co., Ltd.", "display_name": "Wumart", "city": "Beijing",
                  "mcc": "5411", "scene": "supermarket"},
            headers={"X-Api-Key": keys["UMS"]},
        )  # fmt: skip
        assert signed.status_code == 201, signed.text
        merchant = signed.json()
        now = datetime.now(UTC)
        campaign = client.post(
            "/v1/promotions/campaigns",
            json={"name": "Wumart ¥5 off ¥20", "starts_at": (now - timedelta(days=1)).isoformat(),
                  "ends_at": (now + timedelta(days=30)).isoformat(),
                  "eligibility": {"merchant_ids": [merchant["id"]]},
                  "benefit": {"kind": "amount_off", "off_minor": 500, "threshold_minor": 2000},
                  "budget": {"money_minor": 100_000, "uses": 100}},
            headers={"X-Api-Key": merchant["api_key"]},
        )  # fmt: skip
        assert campaign.status_code == 201, campaign.text
        activated = client.post(
            f"/v1/promotions/campaigns/{campaign.json()['id']}/activate",
            headers={"X-Api-Key": merchant["api_key"]},
        )
        assert activated.status_code == 200, activated.text
        for page in ("/wallet", "/pos", "/console", "/static/common.js"):
            assert client.get(page).status_code == 200  # a server in service is warm
    world = Network(server, platform, chain_log, publisher, keys, merchant, url)
    yield world
    timings = json.dumps(world.timings, indent=1, sort_keys=True)
    print(f"\nbrowser timings (ms): {timings}")
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / "timings.json").write_text(timings + "\n")
    server.stop()
    witness.terminate()
    witness.wait(timeout=10)
    publisher.close()
    chain_log.close()
    platform.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (Debian's package: no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make chromium` (apt-get install chromium) installs it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screens() -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    return SCREENS
