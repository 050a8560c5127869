"""The demo's transit day (SQLite and PostgreSQL): its summary agrees with the transit tables,
caps were applied, forgotten tap-outs were charged the max fare, the rider whose card was
emptied failed the debit, was deny-listed and refused at a gate, and the books still balance.
(The gates here are in-process; the gate processes are tested in tests/transit.)"""

from __future__ import annotations

import sqlalchemy as sa

from flashpay.db import create_engine
from flashpay.sim.live import LiveOptions, run_live


def test_the_transit_day_is_in_the_summary_and_the_books(database_url, tmp_path):
    options = LiveOptions(seed=5, users=25, merchants=20, promotions=False)
    s = run_live(database_url, options, data_directory=tmp_path, audit=False).summary
    assert s["ledger_check"]["ok"], s["ledger_check"]["problems"]
    assert s["books_balance"], s["book_problems"]
    t = s["transit"]
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            taps = connection.execute(sa.text("SELECT count(*) FROM transit_taps")).scalar()
            trips = dict(
                connection.execute(
                    sa.text("SELECT status, count(*) FROM transit_trips GROUP BY status")
                ).all()
            )
            fares, caps = connection.execute(
                sa.text("SELECT sum(fare_minor), sum(cap_discount_minor) FROM transit_trips")
            ).one()
            debits = dict(
                connection.execute(
                    sa.text("SELECT status, sum(amount_minor) FROM transit_debits GROUP BY status")
                ).all()
            )
            max_fares = connection.execute(
                sa.text(
                    "SELECT count(*) FROM transit_trips WHERE status = 'no_tap_out' AND "
                    "network = 'subway' AND fare_minor + cap_discount_minor = 900"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert taps == t["taps"] > 0
    assert trips == t["by_status"]
    assert trips["complete"] > 0
    assert trips["bus"] > 0
    assert trips["no_tap_out"] > 0
    assert max_fares > 0  # a forgotten tap-out costs the network's max fare (before caps)
    assert fares == t["fares_fen"]
    assert caps == t["caps_applied_fen"] > 0  # the travellers hit the daily cap
    assert debits.get("posted", 0) == t["debits_posted_fen"] > 0
    assert debits.get("failed", 0) == t["unpaid_fen"] > 0  # the emptied card
    assert t["unpaid"] >= 1
    assert t["deny_listed"] >= 1
    assert t["taps_refused"].get("ride_token_deny_listed", 0) >= 1
