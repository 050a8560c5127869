"""``flashpay ledger check`` finds tampering and exits non-zero; a clean ledger passes."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from flashpay import db
from flashpay.ledger import Account, AccountFlags, Transfer, TransferFlags, check


def _books(ledger):
    d = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    ledger.create_accounts([Account(1, 156, 1), Account(2, 156, 2, flags=d), Account(3, 156, 3)])
    ledger.create_transfers(
        [
            Transfer(10, 1, 2, 500, 156, 1),
            Transfer(11, 2, 3, 200, 156, 1, flags=TransferFlags.PENDING),
            Transfer(12, 0, 0, 0, 0, 0, flags=TransferFlags.POST_PENDING_TRANSFER, pending_id=11),
        ]
    )


def _cli(url):
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "ledger", "check", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tamper(url, sql):
    engine = db.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def test_clean_ledger_passes(ledger, database_url):
    _books(ledger)
    assert check(database_url).ok
    assert _cli(database_url).returncode == 0


def test_edited_amount_is_found(ledger, database_url):
    _books(ledger)
    _tamper(database_url, "UPDATE ledger_transfers SET amount = 499 WHERE id = 10")
    report = check(database_url)
    assert {p.invariant for p in report.problems} >= {"2"}
    assert any("account 1" in p.subject for p in report.problems)
    result = _cli(database_url)
    assert result.returncode == 1
    assert "account 1" in result.stderr


def test_overdrawn_protected_account_is_found(ledger, database_url):
    _books(ledger)
    _tamper(
        database_url, "UPDATE ledger_accounts SET debits_posted = debits_posted + 900 WHERE id = 2"
    )
    _tamper(
        database_url,
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 900 WHERE id = 1",
    )
    invariants = {p.invariant for p in check(database_url).problems}
    assert "3" in invariants


def test_pending_resolved_twice_is_found(ledger, database_url):
    _books(ledger)
    _tamper(
        database_url,
        "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, "
        "pending_id, user_data_128, user_data_64, user_data_32, timeout_seconds, ledger, code, "
        "flags, timestamp, chain_id) SELECT 13, 2, 3, 0, 11, user_data_128, 0, 0, 0, 156, 1, 8, "
        "timestamp + 1000, timestamp + 1000 FROM ledger_transfers WHERE id = 12",
    )
    invariants = {p.invariant for p in check(database_url).problems}
    assert "5" in invariants
