"""A Hypothesis state machine drives the ledger against a small in-memory reference model.

Random plain, pending, linked and retried transfers, posts (full and partial), voids and clock
moves among six accounts (a funding account, three overdraft-protected accounts, a credit line,
a hot merchant). After every step the ledger's balances must equal the model's and
``ledger.check`` must find nothing wrong. Runs on SQLite and PostgreSQL, a fresh database per
example.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from flashpay.clock import FakeClock
from flashpay.ledger import (
    Account,
    AccountFlags,
    CreateTransferResult,
    Ledger,
    Transfer,
    TransferFlags,
    check,
)

R = CreateTransferResult
F = TransferFlags
CNY = 156
FUNDING, A1, A2, A3, LINE, HOT = 1, 2, 3, 4, 5, 6
PROTECTED = (A1, A2, A3)
LINE_LIMIT = 1_000
ACCOUNTS = (FUNDING, A1, A2, A3, LINE, HOT)
NS = 1_000_000_000


@dataclass
class ModelPending:
    debit: int
    credit: int
    amount: int
    created_s: int
    timeout_s: int
    state: str = "pending"


class LedgerModel(RuleBasedStateMachine):
    make_url: Callable[[], str]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.url = type(self).make_url()
        self.ledger = Ledger.open(self.url, clock=self.clock)
        self.balances = {a: [0, 0, 0, 0] for a in ACCOUNTS}  # dp, dpo, cp, cpo
        self.pendings: dict[int, ModelPending] = {}
        self.posted: list[list[Transfer]] = []  # committed batches, retried whole
        self.ids = itertools.count(100)
        self.now_s = 0

    def teardown(self) -> None:
        self.ledger.close()

    @initialize()
    def open_accounts(self) -> None:
        d = AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
        accounts = [Account(FUNDING, CNY, 1), Account(HOT, CNY, 2)]
        accounts += [Account(a, CNY, 3, flags=d) for a in PROTECTED]
        accounts.append(Account(LINE, CNY, 4, flags=d, credit_limit=LINE_LIMIT))
        assert set(self.ledger.create_accounts(accounts)) == {"ok"}

    # -- the model's rules ------------------------------------------------------------------
    def _fits(self, debit: int, amount: int, extra: dict[int, int]) -> bool:
        if debit in (FUNDING, HOT):
            return True
        dp, dpo, _, cpo = self.balances[debit]
        limit = LINE_LIMIT if debit == LINE else 0
        return dp + dpo + extra.get(debit, 0) + amount <= cpo + limit

    def _expected(self, debit: int, credit: int, amount: int, extra: dict[int, int]) -> R:
        if debit == credit:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        return R.OK if self._fits(debit, amount, extra) else R.EXCEEDS_CREDITS

    def _apply(self, debit: int, credit: int, amount: int, *, pending: bool) -> None:
        self.balances[debit][0 if pending else 1] += amount
        self.balances[credit][2 if pending else 3] += amount

    def _expire_due(self) -> None:
        for record in self.pendings.values():
            if (
                record.state == "pending"
                and record.timeout_s
                and (self.now_s - record.created_s > record.timeout_s)
            ):
                record.state = "expired"
                self.balances[record.debit][0] -= record.amount
                self.balances[record.credit][2] -= record.amount

    # -- rules ---------------------------------------------------------------------------------
    @rule(
        debit=st.sampled_from(ACCOUNTS),
        credit=st.sampled_from(ACCOUNTS),
        amount=st.integers(1, 1_500),
    )
    def transfer(self, debit: int, credit: int, amount: int) -> None:
        self._expire_due()
        expected = self._expected(debit, credit, amount, {})
        transfer = Transfer(next(self.ids), debit, credit, amount, CNY, 1)
        assert self.ledger.create_transfers([transfer]) == [expected]
        if expected == R.OK:
            self._apply(debit, credit, amount, pending=False)
            self.posted.append([transfer])

    @rule(
        debit=st.sampled_from(ACCOUNTS),
        credit=st.sampled_from(ACCOUNTS),
        amount=st.integers(1, 1_500),
        timeout_s=st.sampled_from([0, 1, 3, 5]),
    )
    def hold(self, debit: int, credit: int, amount: int, timeout_s: int) -> None:
        self._expire_due()
        expected = self._expected(debit, credit, amount, {})
        transfer = Transfer(
            next(self.ids),
            debit,
            credit,
            amount,
            CNY,
            1,
            flags=F.PENDING,
            timeout_seconds=timeout_s,
        )
        assert self.ledger.create_transfers([transfer]) == [expected]
        if expected == R.OK:
            self._apply(debit, credit, amount, pending=True)
            self.pendings[transfer.id] = ModelPending(debit, credit, amount, self.now_s, timeout_s)

    @precondition(lambda self: self.pendings)
    @rule(data=st.data(), post=st.booleans(), partial=st.booleans())
    def resolve(self, data: st.DataObject, post: bool, partial: bool) -> None:
        self._expire_due()
        pid = data.draw(st.sampled_from(sorted(self.pendings)))
        record = self.pendings[pid]
        amount = max(1, record.amount // 2) if (post and partial) else 0
        flags = F.POST_PENDING_TRANSFER if post else F.VOID_PENDING_TRANSFER
        transfer = Transfer(next(self.ids), 0, 0, amount, 0, 0, flags=flags, pending_id=pid)
        expected = {
            "pending": R.OK,
            "posted": R.PENDING_TRANSFER_ALREADY_POSTED,
            "voided": R.PENDING_TRANSFER_ALREADY_VOIDED,
            "expired": R.PENDING_TRANSFER_EXPIRED,
        }[record.state]
        assert self.ledger.create_transfers([transfer]) == [expected]
        if expected == R.OK:
            self.balances[record.debit][0] -= record.amount
            self.balances[record.credit][2] -= record.amount
            if post:
                self._apply(record.debit, record.credit, amount or record.amount, pending=False)
            record.state = "posted" if post else "voided"

    @rule(
        debit=st.sampled_from((*PROTECTED, LINE)),
        first=st.integers(1, 1_500),
        second=st.integers(1, 1_500),
    )
    def linked_pair(self, debit: int, first: int, second: int) -> None:
        """Two debits from one account, all or nothing."""
        self._expire_due()
        ok = self._fits(debit, first, {}) and self._fits(debit, second, {debit: first})
        batch = [
            Transfer(next(self.ids), debit, HOT, first, CNY, 1, flags=F.LINKED),
            Transfer(next(self.ids), debit, HOT, second, CNY, 1),
        ]
        results = self.ledger.create_transfers(batch)
        if ok:
            assert results == [R.OK, R.OK]
            self._apply(debit, HOT, first, pending=False)
            self._apply(debit, HOT, second, pending=False)
            self.posted.append(batch)
        else:
            assert R.OK not in results
            assert R.LINKED_EVENT_FAILED in results

    @precondition(lambda self: self.posted)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        batch = data.draw(st.sampled_from(self.posted))
        assert self.ledger.create_transfers(batch) == [R.EXISTS] * len(batch)

    @rule(seconds=st.sampled_from([2, 4]))
    def wait(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.now_s += seconds

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def balances_match_the_model(self) -> None:
        self._expire_due()
        stored = {a.id: a for a in self.ledger.lookup_accounts(list(ACCOUNTS))}
        if not stored:
            return  # before the accounts are opened
        for account_id, (dp, dpo, cp, cpo) in self.balances.items():
            a = stored[account_id]
            assert (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted) == (
                dp,
                dpo,
                cp,
                cpo,
            ), account_id
        for account_id in PROTECTED:
            assert stored[account_id].debits_posted <= stored[account_id].credits_posted

    @invariant()
    def checker_finds_nothing(self) -> None:
        report = check(self.url)
        assert report.ok, report.problems


MODEL_SETTINGS = settings(
    max_examples=10,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def test_model_sqlite(request, tmp_path):
    template = request.getfixturevalue("_sqlite_template")

    def make_url() -> str:
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"

    machine = type("SqliteLedgerModel", (LedgerModel,), {"make_url": staticmethod(make_url)})
    run_state_machine_as_test(machine, settings=MODEL_SETTINGS)


@pytest.mark.postgres
def test_model_postgresql(postgres_admin_url, request):
    template = request.getfixturevalue("_postgres_template")
    created: list[str] = []

    def make_url() -> str:
        name = f"flashpay_model_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        created.append(name)
        return postgres_admin_url.rsplit("/", 1)[0] + "/" + name

    machine = type("PostgresLedgerModel", (LedgerModel,), {"make_url": staticmethod(make_url)})
    try:
        run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
