"""The demo through the services: its summary agrees with the platform's records, the books
balance, the ground truth is written, and a seed fixes the outcome."""

from __future__ import annotations

import json
from dataclasses import replace

import sqlalchemy as sa

from flashpay.db import create_engine
from flashpay.sim.live import LiveOptions, run_live

SMALL = LiveOptions(seed=5, users=25, merchants=20, transit=False)  # transit: its own test


def test_live_demo_summary_matches_the_records(database_url, tmp_path):
    # Without the theme month: the clearing identities below hold for undiscounted payments
    # (a discount moves money between funders; test_the_theme_month_runs checks that day).
    result = run_live(database_url, replace(SMALL, promotions=False), data_directory=tmp_path,
                      audit=False)  # fmt: skip
    s = result.summary
    assert s["ledger_check"]["ok"], s["ledger_check"]["problems"]
    assert s["books_balance"], s["book_problems"]
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = dict(
                connection.execute(
                    sa.text("SELECT status, count(*) FROM payments GROUP BY status")
                ).all()
            )
            transfers = connection.execute(sa.text("SELECT count(*) FROM p2p_transfers")).scalar()
            bound = connection.execute(sa.text("SELECT count(*) FROM wallet_cards")).scalar()
            merchants = connection.execute(sa.text("SELECT count(*) FROM merchants")).scalar()
    finally:
        engine.dispose()
    assert sum(rows.values()) == s["payments"]["attempted"]
    statuses = {k: v for k, v in s["payments"]["outcomes"].items() if k != "parking_captured"}
    # Refunds, captures and expiries move a payment on after the summary counted its outcome.
    assert sum(rows.values()) == sum(statuses.values())
    assert rows.get("declined", 0) == statuses.get("declined", 0)
    assert transfers == sum(s["transfers"].values())
    assert s["payments_and_transfers"] == s["payments"]["attempted"] + transfers
    assert bound == s["cards"]
    assert merchants == SMALL.merchants
    assert set(s["payments"]["by_mode"]) >= {"cpm", "mpm_static", "mpm_dynamic"}
    # Some payments went through the HTTP API; every retry with the same key was replayed
    # byte for byte, and none was paid twice (the records above count each payment once).
    http = s["http"]
    assert http["payments"] > 0
    assert http["retries_replayed_identically"] == http["retries_with_the_same_key"]
    # Clearing: what the issuers and acquirers are owed and owe nets out to the network's fees.
    positions = {r["institution"]: r for r in s["net_positions"]}
    assert sum(r["net_fen"] for r in positions.values()) == 0
    assert positions["CUP"]["net_fen"] == positions["CUP"]["income_fen"] > 0
    paid = sum(v["volume_fen"] for v in s["scenes"].values())
    assert sum(s["paid_by_issuer_fen"].values()) == paid > 0
    # The summary's volume is what the ledger holds: every fen paid (less refunds) went to an
    # acquirer (its net position), the network's fee or an issuer's interchange (§4), to the fen.
    acquirers = sum(r["net_fen"] for r in positions.values() if r["role"] == "acquirer")
    earned = sum(r["income_fen"] for r in positions.values() if r["role"] != "acquirer")
    assert acquirers + earned == paid - s["refunds"]["volume_fen"]
    truth = (tmp_path / "ground-truth.jsonl").read_text().splitlines()
    assert len(truth) == s["payments"]["attempted"] + transfers
    assert {json.loads(line)["kind"] for line in truth} >= {"purchase", "p2p"}


def test_same_seed_same_summary_other_seed_differs(tmp_path):
    runs = []
    for n, seed in enumerate((5, 5, 6)):
        # Without the theme month: its random discounts are keyed by the network's draw key,
        # which each data directory's key ring makes anew (the same keys draw the same).
        options = LiveOptions(seed=seed, users=SMALL.users, merchants=SMALL.merchants,
                              promotions=False)  # fmt: skip
        directory = tmp_path / str(n)
        directory.mkdir()
        runs.append(
            run_live(f"sqlite:///{directory}/x.db", options, data_directory=directory,
                     audit=False).summary
        )  # fmt: skip
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_the_theme_month_runs_with_budgets_that_run_out(tmp_path):
    s = run_live(f"sqlite:///{tmp_path}/theme.db", SMALL, data_directory=tmp_path,
                 audit=False).summary  # fmt: skip
    assert s["ledger_check"]["ok"], s["ledger_check"]["problems"]
    assert s["books_balance"], s["book_problems"]
    campaigns = s["promotions"]
    assert len(campaigns) == 4
    assert sum(c["uses"] for c in campaigns) > 0
    assert any(c["exhausted"] for c in campaigns)
    for c in campaigns:
        assert c["budget_fen"] is None or c["spent_fen"] <= c["budget_fen"]
        assert c["budget_uses"] is None or c["uses"] <= c["budget_uses"]
