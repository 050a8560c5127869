"""`flashpay demo --fast` as a user runs it: it completes, proves the books and the audit log."""

from __future__ import annotations

import json
import subprocess
import sys


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

    # Run again in the same directory, smaller: the demo deletes its database and starts a new,
    # shorter log; its witnesses are new identities and co-sign it instead of refusing it as a
    # roll-back of the first run's log (their state files are from the first run).
    again = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "demo", "--fast", "--no-transit", "--no-promotions",
         "--users", "20", "--seed", "3", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    second = json.loads((tmp_path / "demo-summary.json").read_text())["audit_log"]
    assert second["leaves"] < audit_log["leaves"]
    assert second["final"] is True
    assert len(second["cosigned_by"]) == 3
