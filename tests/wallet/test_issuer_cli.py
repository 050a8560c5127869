"""``flashpay issuer enrol FILE --institution ID``: a bank enrols the cards of its card file from a
terminal — a real process on SQLite and PostgreSQL; and the card file's format."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import CardIssue, issue_cards
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import Institution, get_institution, load_network
from flashpay.notify import RecordingNotifier
from flashpay.passwords import DEMO_PASSWORD_POLICY
from flashpay.platform import Platform
from flashpay.wallet.cards import list_wallet_cards
from flashpay.wallet.enrolment import ENROL_BATCH_MAX
from flashpay.wallet.issuer_cli import CardFileError, parse_card_file
from flashpay.wallet.registration import register

PASSWORD = "correct horse battery"


def _institution(platform: Platform, code: str) -> Institution:
    found = get_institution(platform=platform, code=code)
    assert found is not None
    return found


def _cli(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    env["COLUMNS"] = "200"  # one table row a line
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "issuer", "enrol", *args, "--db", database_url,
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.fixture
def bank(database_url, tmp_path):
    """The default network, one wallet user with two BOC cards and one ICBC card: (platform,
    data dir, BOC card ids, the ICBC card id)."""
    platform = Platform.open(database_url, data_directory=tmp_path, notifier=RecordingNotifier(),
                             password_policy=DEMO_PASSWORD_POLICY)  # fmt: skip
    load_network(platform=platform, definition=default_definition())
    holder = {"holder_name": "Li Wei", "holder_id_number": "110101199001011234",
              "phone": "13800001234", "expiry": "3012", "opening_balance": 5_00}  # fmt: skip
    user = register(platform=platform, phone="13800001234", name="Li Wei",
                           id_number="110101199001011234", password=PASSWORD)  # fmt: skip
    boc = issue_cards(platform=platform, issuer=_institution(platform, "BOC"), requests=[
        CardIssue(card=generate_card_number("621661"), **holder) for _ in range(2)
    ])  # fmt: skip
    [icbc] = issue_cards(platform=platform, issuer=_institution(platform, "ICBC"), requests=[
        CardIssue(card=generate_card_number("622202", 19), **holder)
    ])  # fmt: skip
    yield platform, tmp_path, [c.card.id for c in boc], icbc.card.id, user.id
    platform.close()


def test_a_bank_enrols_its_card_file(bank, database_url):
    platform, data_dir, (first, second), _, user_id = bank
    boc = _institution(platform, "BOC")
    card_file = data_dir / "cards.csv"
    card_file.write_text(f"card_id,note\n# campus programme\n{first},new\n\n{second},new\n")

    done = _cli(database_url, data_dir, str(card_file), "--institution", str(boc.id))

    assert done.returncode == 0, done.stderr
    assert "2 cards of BOC are in their holders' wallets" in done.stdout
    assert "621661******" in done.stdout
    in_wallet = list_wallet_cards(platform=platform, user_id=user_id)
    assert sorted(c.card.id for c in in_wallet) == [first, second]
    again = _cli(database_url, data_dir, str(card_file), "--institution", str(boc.id))
    assert again.returncode == 0, again.stderr  # sending the file again is harmless
    assert len(list_wallet_cards(platform=platform, user_id=user_id)) == 2


def test_a_refused_card_is_reported_by_line_and_nothing_is_enrolled(bank, database_url):
    platform, data_dir, (first, _), icbc_card, user_id = bank
    boc = _institution(platform, "BOC")
    card_file = data_dir / "cards.txt"
    card_file.write_text(f"{first}\n# the next one is ICBC's\n{icbc_card}\n")

    refused = _cli(database_url, data_dir, str(card_file), "--institution", str(boc.id))

    assert refused.returncode == 1
    assert "refused (not_found): line 3, card_ids[1]: no such card of yours" in refused.stderr
    assert "nothing was enrolled" in refused.stderr
    assert list_wallet_cards(platform=platform, user_id=user_id) == []


def test_only_an_issuer_enrols(bank, database_url):
    platform, data_dir, (first, _), _, _ = bank
    card_file = data_dir / "cards.txt"
    card_file.write_text(f"{first}\n")
    acquirer = _institution(platform, "UMS")
    refused = _cli(database_url, data_dir, str(card_file), "--institution", str(acquirer.id))
    assert refused.returncode == 2
    assert f"institution {acquirer.id} is not an issuer" in refused.stderr
    unknown = _cli(database_url, data_dir, str(card_file), "--institution", "999999")
    assert unknown.returncode == 2


def test_a_bad_file_is_refused_before_the_database_is_touched(sqlite_url, tmp_path):
    card_file = tmp_path / "cards.txt"
    card_file.write_text("12\nsix\n")
    refused = _cli(sqlite_url, tmp_path, str(card_file), "--institution", "2")
    assert refused.returncode == 2
    assert "line 2: 'six' is not a card id" in refused.stderr


@pytest.mark.parametrize(
    ("text", "card_ids", "lines"),
    [
        pytest.param("1\n2\n3\n", (1, 2, 3), (1, 2, 3), id="one id a line"),
        pytest.param("card_id,holder\n7,Li\n9,Wang\n", (7, 9), (2, 3), id="CSV with a header"),
        pytest.param("# bank file\n\n 5 \n", (5,), (3,), id="comments, blanks, spaces"),
        pytest.param("4\n4\n", (4, 4), (1, 2), id="a card twice: the service answers both"),
    ],
)
def test_card_file_format(text, card_ids, lines):
    parsed = parse_card_file(text)
    assert parsed.card_ids == card_ids
    assert parsed.line_numbers == lines


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("", "no card ids", id="empty"),
        pytest.param("# nothing\n", "no card ids", id="only comments"),
        pytest.param("1\n0\n", "line 2: '0' is not a card id", id="zero"),
        pytest.param("1\n-4\n", "line 2: '-4' is not a card id", id="negative"),
        pytest.param("1\ncard_id\n", "line 2: 'card_id' is not a card id", id="a late header"),
        pytest.param(f"{2**63}\n", "line 1", id="beyond BIGINT"),
        pytest.param(
            "1\n" * (ENROL_BATCH_MAX + 1),
            f"at most {ENROL_BATCH_MAX}",
            id="one card too many",
        ),
    ],
)
def test_card_file_problems(text, problem):
    with pytest.raises(CardFileError, match=problem):
        parse_card_file(text)
