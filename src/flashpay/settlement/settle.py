"""Settle a closed window: one linked chain through the settlement bank, once.

The chain (``plan_settlement``, pure), in this order:

1. each cleared account (a mirror between a member and the network, in either's books) with net
   debit ``d`` in the window is brought back by ``d`` against its owner's ``settlement_deposit``
   — the network's mirrors against the network's deposit, a member's against its own;
2. at the settlement bank, each member's position ``p`` moves between its
   ``settlement_account[member]`` and ``settlement_clearing``: a debtor's account is debited, a
   creditor's credited. The positions sum to zero, so the clearing account ends where it began.

Afterwards each mirror holds only what later windows added, each member's deposit has moved by
its position, and every institution's books still balance. Transfer ids derive from the window id
and the leg's number, and the chain's commitment is the window's results digest (so the audit
log's leaf for it binds the figures). Killed after the ledger posted it and before the window
was marked, a rerun posts the same ids (the ledger answers ``exists``) and marks it: one chain,
never two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from flashpay.errors import invariant
from flashpay.institutions.chart import LEDGER_CNY, TransferCode
from flashpay.ledger import CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id
from flashpay.ledger.windows import chain_timestamps
from flashpay.platform import Platform
from flashpay.settlement.chart import SettlementChart, settlement_chart
from flashpay.settlement.errors import SettlementError, SettlementRefusal
from flashpay.settlement.models import settlement_windows
from flashpay.settlement.positions import Position
from flashpay.settlement.queries import Window, window_by_id, window_moves, window_positions

LEGS_MAX = 8190  # the ledger's batch size: one settlement chain per window


def plan_settlement(
    chart: SettlementChart,
    moves: Sequence[tuple[int, str, int]],
    figures: Sequence[Position],
) -> list[tuple[int, int, int]]:
    """(debit, credit, amount) legs of the window's settlement chain (module docstring)."""
    legs: list[tuple[int, int, int]] = []
    for account, owner, d in moves:
        deposit = chart.member(owner).deposit
        legs.append((deposit, account, d) if d > 0 else (account, deposit, -d))
    for p in figures:
        bank = chart.member(p.member).bank_account
        if p.net_fen > 0:
            legs.append((chart.clearing, bank, p.net_fen))
        elif p.net_fen < 0:
            legs.append((bank, chart.clearing, -p.net_fen))
    invariant(len(legs) <= LEGS_MAX, "a settlement chain fits one ledger batch")
    return [leg for leg in legs if leg[2] > 0]


def settlement_transfers(window_id: int, legs: Sequence[tuple[int, int, int]]) -> list[Transfer]:
    ids = [derive_id("flashpay.settlement", f"{window_id}:{n}") for n in range(len(legs))]
    return [
        Transfer(ids[n], debit, credit, amount, LEDGER_CNY, TransferCode.SETTLEMENT,
                 flags=TransferFlags.LINKED if n < len(legs) - 1 else TransferFlags.NONE,
                 user_data_64=window_id)
        for n, (debit, credit, amount) in enumerate(legs)
    ]  # fmt: skip


def settle_window(*, platform: Platform, window_id: int) -> Window:
    """Settle a closed window (idempotent: a settled one is returned as it is)."""
    chart = settlement_chart(platform=platform)
    with platform.engine.connect() as connection:
        window = window_by_id(connection, window_id)
        if window is None:
            raise SettlementError(SettlementRefusal.WINDOW_NOT_FOUND, f"no window {window_id}")
        if window.state == "settled":
            return window
        moves = window_moves(connection, window_id)
        figures = window_positions(connection, window_id)
    transfers = settlement_transfers(window_id, plan_settlement(chart, moves, figures))
    chain_id: int | None = None
    if transfers:
        results = platform.ledger.create_transfers(
            transfers, commitments={transfers[0].id: bytes.fromhex(window.results_digest)}
        )
        ok = (CreateTransferResult.OK, CreateTransferResult.EXISTS)
        bad = [r for r in results if r not in ok]
        if bad:
            raise SettlementError(
                SettlementRefusal.SETTLEMENT_REFUSED,
                f"the ledger refused the settlement chain: {sorted(set(bad))}",
            )
        with platform.engine.connect() as connection:
            stamps = chain_timestamps(connection, transfer_ids=[transfers[0].id])
        chain_id = stamps[transfers[0].id]
    with platform.engine.begin() as connection:
        connection.execute(
            settlement_windows.update()
            .where(settlement_windows.c.id == window_id, settlement_windows.c.state == "closed")
            .values(state="settled", settled_at_ns=platform.clock.now_ns(),
                    settlement_chain_id=chain_id)
        )  # fmt: skip
        # commit point: the window is settled
    with platform.engine.connect() as connection:
        done = window_by_id(connection, window_id)
    assert done is not None
    return done


def settle_closed(*, platform: Platform) -> list[Window]:
    """Settle every closed window, oldest first."""
    with platform.engine.connect() as connection:
        ids = [
            int(r.id)
            for r in connection.execute(
                sa.select(settlement_windows.c.id)
                .where(settlement_windows.c.state == "closed")
                .order_by(settlement_windows.c.end_ns)
            )
        ]
    return [settle_window(platform=platform, window_id=i) for i in ids]
