"""The demo: it completes, its summary agrees with the ledger, and a seed fixes the run."""

from __future__ import annotations

import json
import subprocess
import sys

import sqlalchemy as sa

from flashpay import db
from flashpay.sim.books import FeeSplit, TransferCode
from flashpay.sim.demo import DemoOptions, run_demo

SMALL = DemoOptions(seed=3, users=150, merchants=30)


def test_demo_summary_matches_the_ledger(database_url):
    result = run_demo(database_url, SMALL)
    s = result.summary
    assert s["ledger_check"]["ok"], s["ledger_check"]["problems"]
    assert s["mirrors_agree"]
    assert s["payments"]["completed"] > 0
    assert set(s["by_scene"]) == {
        "bus", "campus", "canteen", "convenience_store", "food_market",
        "hospital", "parking", "subway", "supermarket", "vending",
    }  # fmt: skip
    assert "insufficient_funds" in s["declines"]
    assert s["retries_absorbed"] > 0
    engine = db.create_engine(database_url)
    with engine.connect() as conn:
        purchases = conn.execute(
            sa.text(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger_transfers "
                "WHERE code = :code AND debit_account_id >= 1000000"
            ),
            {"code": int(TransferCode.PURCHASE)},
        ).scalar_one()
        p2p_out = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM ledger_transfers WHERE code = :code "
                "AND debit_account_id >= 1000000"
            ),
            {"code": int(TransferCode.P2P)},
        ).scalar_one()
    engine.dispose()
    assert purchases == s["payments"]["volume_fen"]
    assert sum(v[1] for v in s["by_scene"].values()) == s["payments"]["volume_fen"]
    assert sum(v[0] for v in s["by_issuer"].values()) == s["payments"]["completed"]
    assert p2p_out == s["p2p"][0]
    fees = s["fees_fen"]
    assert fees["interchange"] + fees["network"] + fees["acquirer"] > 0


def test_same_seed_same_summary_other_seed_differs(tmp_path):
    first = run_demo(f"sqlite:///{tmp_path}/a.db", SMALL).summary
    second = run_demo(f"sqlite:///{tmp_path}/b.db", SMALL).summary
    other = run_demo(
        f"sqlite:///{tmp_path}/c.db", DemoOptions(seed=4, users=150, merchants=30)
    ).summary
    assert first == second
    assert first != other


def test_fee_split_reproduces_the_architecture_example():
    # ¥100.00 at MDR 0.60 %: interchange 0.45 %, network 0.065 % (rounded), acquirer the rest
    assert FeeSplit().split(10_000) == (45, 7, 8, 9_940)


def test_ledger_level_demo_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "demo", "--ledger", "--fast",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    written = json.loads((tmp_path / "demo-summary.json").read_text())
    assert written["summary"]["ledger_check"]["ok"]
    assert written["audit_log"]["final"] is True


def test_flashpay_demo_fast_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "demo", "--fast", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    written = json.loads((tmp_path / "demo-summary.json").read_text())
    summary = written["summary"]
    assert summary["ledger_check"]["ok"]
    assert summary["books_balance"]
    assert (tmp_path / "ground-truth.jsonl").exists()
    # The audit log holds every ledger chain, co-signed by the three witness processes.
    audit_log = written["audit_log"]
    assert audit_log["final"] is True
    assert len(audit_log["cosigned_by"]) == 3
    assert audit_log["leaves"] > 100
    verified = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "chain", "audit", "--data-dir", str(tmp_path),
         "--keys", audit_log["keys_file"]],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    check = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "ledger", "check", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stderr
