"""``flashpay pay`` from a terminal: a payment code shown by one command is collected by another,
and a merchant's static code is paid by scanning — real processes on one SQLite database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import issue_card
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.merchants.service import Scene, onboard_merchant, static_payload, terminal_by_code
from flashpay.notify import RecordingNotifier
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

PASSWORD = "terminal password"


def _cli(*args: str, data_dir) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "pay", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_show_a_code_collect_it_and_scan_a_static_code(tmp_path, sqlite_url):
    data_dir = tmp_path / "data"
    db = data_dir / "flashpay.db"
    data_dir.mkdir()
    shutil.copyfile(sqlite_url.removeprefix("sqlite:///"), db)  # a migrated, empty database
    notifier = RecordingNotifier()
    platform = Platform.open(f"sqlite:///{db}", data_directory=data_dir, notifier=notifier)
    load_network(platform=platform, definition=default_definition())
    boc = get_institution(platform=platform, code="BOC")
    ums = get_institution(platform=platform, code="UMS")
    user = register(platform=platform, phone="13800001234", name="Li Lei",
                           id_number="110101199001011234", password=PASSWORD)  # fmt: skip
    set_pin(platform=platform, user_id=user.id, pin="135790", password=PASSWORD)
    pan = generate_card_number("621661", 16)
    issue_card(platform=platform, issuer=boc, card=pan, expiry="3012", holder_name="Li Lei",
               holder_id_number="110101199001011234", phone="13800001234",
               opening_balance=10_000)  # fmt: skip
    binding = start_binding(platform=platform, user_id=user.id,
                                   card_number=pan, expiry="12/30")  # fmt: skip
    otp = notifier.last_code("card_binding", str(binding.id))
    card = confirm_binding(platform=platform, user_id=user.id, binding_id=binding.id, otp=otp)
    shop = onboard_merchant(platform=platform, acquirer=ums, legal_name="Lawson Co",
                            display_name="Lawson", city="Shanghai", mcc="5499",
                            scene=Scene.CONVENIENCE_STORE)  # fmt: skip
    terminal = terminal_by_code(platform=platform, merchant_id=shop.id, code="T0001")
    assert terminal is not None
    payload = static_payload(platform=platform, merchant=shop, terminal=terminal)
    platform.close()

    user_args = ["--phone", "13800001234", "--password", PASSWORD, "--card", str(card.id)]
    shown = _cli("code", *user_args, data_dir=data_dir)
    assert shown.returncode == 0, shown.stderr
    code = json.loads(shown.stdout.strip().splitlines()[-1])
    collected = _cli("collect", code["numeric"], "--merchant", str(shop.id), "--amount", "12.50",
                     data_dir=data_dir)  # fmt: skip
    assert collected.returncode == 0, collected.stderr
    assert json.loads(collected.stdout)["status"] == "completed"
    replay = _cli("collect", code["qr_payload"], "--merchant", str(shop.id), "--amount", "12.50",
                  data_dir=data_dir)  # fmt: skip
    assert replay.returncode == 1
    assert json.loads(replay.stdout)["decline_reason"] == "code_already_used"
    scanned = _cli("scan", payload, *user_args, "--amount", "3.20", "--pin", "135790",
                   data_dir=data_dir)  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    assert json.loads(scanned.stdout)["merchant"] == "Lawson"
    wrong = _cli("scan", payload, "--phone", "13800001234", "--password", "nope", "--card", "1",
                 "--amount", "1", data_dir=data_dir)  # fmt: skip
    assert wrong.returncode == 2
