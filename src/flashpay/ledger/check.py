"""``check(url)``: recompute every balance from the transfers and check invariants 1–5.

ARCHITECTURE.md §7:
1. per ledger, the sum of all debits equals the sum of all credits (posted and pending);
2. every account's stored balances (row plus deltas) equal what its transfers add up to, with
   expired and voided pending transfers released and posted ones moved to posted;
3. no account flagged ``DEBITS_MUST_NOT_EXCEED_CREDITS`` has debits above credits plus its credit
   limit (likewise the mirror flag);
4. a transfer id exists at most once (primary key, and no two transfers share a timestamp);
5. a pending transfer resolves at most once: at most one post or void references it, and its
   state agrees with that.

Each problem is a value naming the invariant and the account or transfer. Other domains extend
the report (e.g. institutions: each institution's books balance, mirrors agree) by appending their
own ``Problem``s.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from flashpay import db
from flashpay.ledger.types import AccountFlags, PendingState, TransferFlags

PROBLEMS_SHOWN_MAX = 1000


@dataclass(frozen=True, slots=True)
class Problem:
    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.detail}"


@dataclass(slots=True)
class CheckReport:
    accounts: int = 0
    transfers: int = 0
    ledgers: dict[int, tuple[int, int]] = field(default_factory=dict)  # ledger -> (debits, credits)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, invariant: str, subject: str, detail: str) -> None:
        self.problems.append(Problem(invariant, subject, detail))


def check(url: str) -> CheckReport:
    """Check the ledger at ``url``; reads everything once (it is an offline audit)."""
    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            return _check(connection)
    finally:
        engine.dispose()


def _check(connection: sa.Connection) -> CheckReport:
    report = CheckReport()
    q = connection.execute
    accounts = {
        r[0]: r
        for r in q(
            sa.text(
                "SELECT id, ledger, flags, credit_limit, debits_pending, debits_posted, "
                "credits_pending, credits_posted FROM ledger_accounts"
            )
        )
    }
    report.accounts = len(accounts)
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in q(
        sa.text(
            "SELECT account_id, SUM(debits_pending), SUM(debits_posted), SUM(credits_pending), "
            "SUM(credits_posted) FROM ledger_balance_deltas GROUP BY account_id"
        )
    ):
        deltas[r[0]] = [int(r[1]), int(r[2]), int(r[3]), int(r[4])]
    states = {r[0]: PendingState(r[1]) for r in q(sa.text("SELECT id, state FROM ledger_pending"))}
    expected: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    resolutions: dict[int, list[int]] = defaultdict(list)
    pending_amounts: dict[int, tuple[int, int, int]] = {}
    timestamps: set[int] = set()
    transfers = q(
        sa.text(
            "SELECT id, debit_account_id, credit_account_id, amount, pending_id, flags, "
            "timestamp, ledger FROM ledger_transfers ORDER BY timestamp"
        )
    ).fetchall()
    report.transfers = len(transfers)
    for tid, debit_id, credit_id, amount, pending_id, flags, timestamp, _ledger in transfers:
        if timestamp in timestamps:
            report.add("4", f"transfer {tid}", f"timestamp {timestamp} used twice")
        timestamps.add(timestamp)
        for aid in (debit_id, credit_id):
            if aid not in accounts:
                report.add("2", f"transfer {tid}", f"account {aid} does not exist")
        f = TransferFlags(flags)
        if f & TransferFlags.PENDING:
            pending_amounts[tid] = (debit_id, credit_id, amount)
            expected[debit_id][0] += amount
            expected[credit_id][2] += amount
        elif f & (TransferFlags.POST_PENDING_TRANSFER | TransferFlags.VOID_PENDING_TRANSFER):
            resolutions[pending_id].append(tid)
            original = pending_amounts.get(pending_id)
            if original is None:
                report.add("5", f"transfer {tid}", f"resolves unknown pending {pending_id}")
                continue
            expected[original[0]][0] -= original[2]
            expected[original[1]][2] -= original[2]
            if f & TransferFlags.POST_PENDING_TRANSFER:
                expected[debit_id][1] += amount
                expected[credit_id][3] += amount
        else:
            expected[debit_id][1] += amount
            expected[credit_id][3] += amount
    for pid, (debit_id, credit_id, amount) in pending_amounts.items():
        state = states.get(pid)
        resolved_by = resolutions.get(pid, [])
        if state is None:
            report.add("5", f"pending {pid}", "no pending state row")
            continue
        if len(resolved_by) > 1:
            report.add("5", f"pending {pid}", f"resolved {len(resolved_by)} times: {resolved_by}")
        if state == PendingState.EXPIRED:
            if resolved_by:
                report.add("5", f"pending {pid}", "expired but also posted or voided")
            expected[debit_id][0] -= amount
            expected[credit_id][2] -= amount
        elif state == PendingState.PENDING and resolved_by:
            report.add("5", f"pending {pid}", "still pending but has a post or void")
        elif state in (PendingState.POSTED, PendingState.VOIDED) and not resolved_by:
            report.add("5", f"pending {pid}", f"state {int(state)} without a transfer")
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for aid, (_, ledger, flags, limit, dp, dpo, cp, cpo) in accounts.items():
        d = deltas.get(aid, [0, 0, 0, 0])
        stored = [dp + d[0], dpo + d[1], cp + d[2], cpo + d[3]]
        want = expected.get(aid, [0, 0, 0, 0])
        if stored != want:
            report.add(
                "2",
                f"account {aid}",
                "stored (dp, dpo, cp, cpo) "
                f"{tuple(stored)} != recomputed from transfers {tuple(want)}",
            )
        af = AccountFlags(flags)
        if af & AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS and stored[0] + stored[1] > (
            stored[3] + limit
        ):
            report.add("3", f"account {aid}", "debits exceed credits plus credit limit")
        if af & AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS and stored[2] + stored[3] > (
            stored[1] + limit
        ):
            report.add("3", f"account {aid}", "credits exceed debits plus limit")
        totals[ledger][0] += stored[0] + stored[1]
        totals[ledger][1] += stored[2] + stored[3]
    for ledger, (debits, credits) in sorted(totals.items()):
        report.ledgers[ledger] = (debits, credits)
        if debits != credits:
            report.add("1", f"ledger {ledger}", f"debits {debits} != credits {credits}")
    return report
