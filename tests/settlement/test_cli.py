"""``flashpay settlement close|settle|report|reconcile|payout`` as a user runs them (real processes,
SQLite and PostgreSQL; the system clock, so the first window ends at the latest cut-off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flashpay.platform import Platform

from .world import World


def flashpay(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    return subprocess.run([sys.executable, "-m", "flashpay.cli", "settlement", *args],
                          capture_output=True, text=True, timeout=120, env=environment,
                          check=False)  # fmt: skip


def test_close_settle_report_reconcile(service_platform: Platform, tmp_path: Path) -> None:
    w = World(service_platform)
    w.person("ann", "BOC")
    w.shop("Wumart", "UMS")
    w.pay("ann", "Wumart", 8_800)
    where = ["--db", service_platform.database_url, "--data-dir", str(tmp_path)]
    closed = flashpay("close", *where)
    assert closed.returncode == 0, closed.stderr
    assert "closed" in closed.stdout
    assert flashpay("close", *where).stdout == ""  # nothing more is due
    settled = flashpay("settle", *where)
    assert settled.returncode == 0, settled.stderr
    assert "settled" in settled.stdout
    report = flashpay("report", "--json", *where)
    [window] = json.loads(report.stdout)
    assert window["state"] == "settled"
    assert sum(window["positions"].values()) == 0
    assert window["positions"]["UMS"] == 8_800 - 40 - 6  # 0.45 % interchange, 0.065 % fee
    record = tmp_path / "settlement" / str(window["window"]) / "UMS.clearing.csv"
    clean = flashpay("reconcile", str(window["window"]), "UMS", str(record), *where)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip() == "0 breaks"
    changed = tmp_path / "theirs.csv"
    lines = record.read_text().splitlines()
    assert lines[1].endswith(",8800,40,6,8754")
    changed.write_text(lines[0] + "\n" + lines[1].removesuffix("8754") + "8755\n")
    broken = flashpay("reconcile", str(window["window"]), "UMS", str(changed), *where)
    assert broken.returncode == 3
    assert "amount_mismatch" in broken.stdout
    # Merchant payouts of the settled window: T+1, net of the MDR; a rerun pays nothing twice.
    paid = flashpay("payout", "--json", *where)
    assert paid.returncode == 0, paid.stderr
    [payout] = json.loads(paid.stdout)
    mdr = 8_800 - w.shops["Wumart"][0].fees.split(8_800)[3]
    assert (payout["acquirer"], payout["payments_fen"], payout["fees_fen"]) == ("UMS", 8_800, mdr)
    assert payout["payout_fen"] == 8_800 - mdr
    assert json.loads(flashpay("payout", "--json", *where).stdout) == [payout]
    table = flashpay("payout", "--window", str(window["window"]), *where)
    assert table.returncode == 0
    assert str(8_800 - mdr) in table.stdout
