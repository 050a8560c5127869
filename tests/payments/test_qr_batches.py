"""QR payments in batches (issue 7), at the service level on SQLite and PostgreSQL.

``submit_payments`` must answer what the same requests made one after another answer, with a
constant number of statements whatever the batch size; ``settle_holds``, ``issue_codes`` and
``create_orders`` answer each request in its place. Two identical worlds (same users, cards,
balances, merchants, orders, codes issued in the same order) take the same requests one by one
and as one batch; their answers, ledger balances and limit counters are compared position by
position. Every world's ledger and books are checked after each test.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from flashpay.api.errors import refusal_status
from flashpay.books import check_books
from flashpay.clock import FakeClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.ledger import Transfer, TransferFlags
from flashpay.ledger import storage as ledger_storage
from flashpay.ledger.check import check
from flashpay.merchants.models import qr_orders
from flashpay.merchants.service import (
    Merchant,
    MerchantError,
    OrderRequest,
    Scene,
    Terminal,
    create_order,
    create_orders,
    get_order,
    onboard_merchant,
    static_payload,
    terminal_by_code,
)
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.payments import legs, limits
from flashpay.payments.attempts import (
    CollectRequest,
    DeclineReason,
    HoldSettlement,
    Payment,
    PaymentRequest,
    PaymentStatus,
    RefundRequest,
    ScanRequest,
)
from flashpay.payments.codes import issue_code, issue_codes
from flashpay.payments.errors import PaymentError
from flashpay.payments.holds import capture, settle_holds, void
from flashpay.payments.legs import purchase_legs
from flashpay.payments.models import limit_usage, payment_codes, payments
from flashpay.payments.queries import get_payment
from flashpay.payments.refunds import refund_many
from flashpay.payments.settings import set_payment_limits
from flashpay.payments.submit import submit_payments
from flashpay.platform import Platform
from flashpay.qr.payment_codes import IssuedCode
from flashpay.wallet.cards import set_card_frozen
from flashpay.wallet.models import wallet_users

from .test_recovery import PIN, Member, available, member

START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon
WRONG_PIN = f"{(int(PIN) + 1) % 10**6:06d}"
PIX = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
UNIONPAY_CPM = (
    "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQ"
    "gwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
)
BANKS = {"BOC": "621661", "ICBC": "622202"}
Status = PaymentStatus
Reason = DeclineReason


# -- worlds -------------------------------------------------------------------------------------
def _open(url: str) -> Platform:
    platform = Platform.open(
        url, clock=FakeClock(START_NS), keys=KeyRing.generate(), notifier=RecordingNotifier()
    )
    load_network(platform=platform, definition=default_definition())
    return platform


def _checked_close(platform: Platform) -> None:
    report = check(platform.database_url)
    assert report.ok, [str(p) for p in report.problems]
    assert check_books(platform=platform) == []
    platform.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Platform, Platform]]:
    """Two fresh platforms on the same kind of database: (one by one, batched)."""
    urls: list[str] = []
    admin = ""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        for name in ("one_by_one", "batched"):
            shutil.copyfile(template, tmp_path / f"{name}.db")
            urls.append(f"sqlite:///{tmp_path / name}.db")
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        pg_template: str = request.getfixturevalue("_postgres_template")
        base = admin.rpartition("/")[0]
        with psycopg.connect(admin, autocommit=True) as connection:
            for name in ("one", "batch"):
                db = f"flashpay_twin_{name}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                connection.execute(f'CREATE DATABASE "{db}" TEMPLATE "{pg_template}"')
                urls.append(f"{base}/{db}")
    opened = [_open(url) for url in urls]
    yield opened[0], opened[1]
    try:
        for platform in opened:
            _checked_close(platform)
    finally:
        if admin:
            with psycopg.connect(admin, autocommit=True) as connection:
                for url in urls:
                    db = url.rpartition("/")[2]
                    connection.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def pg_platform(postgres_url: str) -> Iterator[Platform]:
    platform = _open(postgres_url)
    yield platform
    _checked_close(platform)


def _clock(platform: Platform) -> FakeClock:
    assert isinstance(platform.clock, FakeClock)
    return platform.clock


def _shop(platform: Platform, name: str, scene: Scene, mcc: str) -> tuple[Merchant, Terminal]:
    ums = get_institution(platform=platform, code="UMS")
    assert ums is not None
    merchant = onboard_merchant(
        platform=platform, acquirer=ums, legal_name=f"{name} Co", display_name=name,
        city="Beijing", mcc=mcc, scene=scene,
    )  # fmt: skip
    terminal = terminal_by_code(platform=platform, merchant_id=merchant.id, code="T0001")
    assert terminal is not None
    return merchant, terminal


@dataclass
class Town:
    """What a world holds, by name, so that two worlds' requests can be built alike."""

    platform: Platform
    members: dict[str, Member] = field(default_factory=dict)
    shops: dict[str, tuple[Merchant, Terminal]] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)  # static payloads by shop
    orders: dict[str, str] = field(default_factory=dict)  # dynamic payloads by bill number
    codes: dict[str, IssuedCode] = field(default_factory=dict)  # payment codes by label

    def add_member(self, name: str, bank: str, balance: int) -> Member:
        n = len(self.members) + 1
        self.members[name] = member(
            self.platform, n, bank=bank, prefix=BANKS[bank], balance=balance
        )
        return self.members[name]

    def add_shop(self, name: str, scene: Scene, mcc: str) -> Merchant:
        merchant, terminal = self.shops[name] = _shop(self.platform, name, scene, mcc)
        self.static[name] = static_payload(platform=self.platform, merchant=merchant,
                                           terminal=terminal)  # fmt: skip
        return merchant

    def add_order(self, shop: str, amount: int, bill: str, expires_in_seconds: int = 900) -> None:
        merchant, terminal = self.shops[shop]
        _, self.orders[bill] = create_order(platform=self.platform, merchant=merchant,
                                            terminal=terminal, amount=amount, bill_number=bill,
                                            expires_in_seconds=expires_in_seconds)  # fmt: skip

    def add_code(self, label: str, who: str) -> IssuedCode:
        m = self.members[who]
        self.codes[label] = issue_code(platform=self.platform, user_id=m.user_id,
                                          wallet_card_id=m.wallet_card_id)  # fmt: skip
        return self.codes[label]

    def scan(
        self, who: str, payload: str, amount: int | None = None, pin: str | None = PIN
    ) -> ScanRequest:
        m = self.members[who]
        fen = None if amount is None else Money.of(amount)
        return ScanRequest(m.user_id, payload, m.wallet_card_id, fen, pin)

    def collect(
        self, shop: str, code: str, amount: int, *, capture: bool = True, hold: int = 3600
    ) -> CollectRequest:
        merchant, _ = self.shops[shop]
        return CollectRequest(merchant.id, code, Money.of(amount), capture=capture,
                              hold_seconds=hold)  # fmt: skip


Answer = Payment | PaymentError


def _one_by_one(platform: Platform, requests: Sequence[PaymentRequest]) -> list[Answer]:
    answers: list[Answer] = []
    for request in requests:
        answers.extend(submit_payments(platform=platform, requests=[request]))
    return answers


def _outcome(answer: Answer) -> tuple[object, ...]:
    """What must agree between two worlds (ids differ)."""
    if isinstance(answer, PaymentError):
        return ("error", answer.code, refusal_status(answer.code))
    return (answer.kind, answer.status, answer.decline_reason, answer.amount, answer.captured,
            answer.two_phase, answer.pin_verified, answer.merchant_id, answer.wallet_card_id,
            answer.order_id is not None, answer.voucher is not None)  # fmt: skip


def _short(answer: Answer) -> tuple[object, ...]:
    if isinstance(answer, PaymentError):
        return ("error", answer.code, refusal_status(answer.code))
    return (answer.status.value, answer.decline_reason and answer.decline_reason.value)


def _ledger_state(town: Town) -> dict[object, tuple[int, int, int, int]]:
    """Every account a payment of the town can touch, by a name common to both worlds."""
    platform = town.platform
    names: dict[int, object] = {}
    for who, m in town.members.items():
        card = _card(platform, m)
        names[card.ledger_account_id] = ("card", who)
        for shop, (merchant, _) in town.shops.items():
            names[merchant.ledger_account_id] = ("shop", shop)
            for debit, credit, _ in purchase_legs(platform, card, merchant, 1):
                names.setdefault(debit, debit)
                names.setdefault(credit, credit)
    accounts = platform.ledger.lookup_accounts(sorted(names))
    assert len(accounts) == len(names)
    return {
        names[a.id]: (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
        for a in accounts
    }


def _card(platform: Platform, m: Member) -> Any:
    from flashpay.cards.service import get_card

    card = get_card(platform=platform, card_id=m.card_id)
    assert card is not None
    return card


def _counters(platform: Platform) -> dict[tuple[str, str], int]:
    with platform.engine.connect() as connection:
        rows = connection.execute(sa.select(limit_usage)).all()
    return {(str(r.scope), str(r.day)): int(r.used) for r in rows if r.used}


def _pin_failures(platform: Platform) -> dict[int, tuple[int, int | None]]:
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(wallet_users.c.id, wallet_users.c.pin_failures,
                      wallet_users.c.pin_locked_until_ns)
        ).all()  # fmt: skip
    return {int(r.id): (int(r.pin_failures), r.pin_locked_until_ns) for r in rows}


def _same_people(one: Town, other: Town) -> None:
    """Both worlds were built alike: the same ids, so scopes and requests compare as they are."""
    ids = {name: (m.user_id, m.wallet_card_id, m.card_id) for name, m in one.members.items()}
    assert ids == {
        name: (m.user_id, m.wallet_card_id, m.card_id) for name, m in other.members.items()
    }
    assert {s: m.id for s, (m, _) in one.shops.items()} == {
        s: m.id for s, (m, _) in other.shops.items()
    }


# -- 1. a batch answers what the same requests one by one answer ---------------------------------
def _mixed_town(platform: Platform) -> Town:
    town = Town(platform)
    town.add_member("alice", "BOC", 1_000_000)  # ¥10,000
    town.add_member("bob", "ICBC", 10_000)  # ¥100: drained inside the batch
    carol = town.add_member("carol", "BOC", 100_000)  # frozen
    town.add_member("dave", "ICBC", 500_000)  # passes the static limit
    town.add_member("erin", "BOC", 500_000)  # shows payment codes
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    town.add_shop("Canteen", Scene.CANTEEN, "5814")
    town.add_shop("Bus", Scene.BUS, "4131")
    town.add_shop("Parking", Scene.PARKING, "7523")
    town.add_order("Wumart", 2_500, "D1")
    town.add_order("Canteen", 1_850, "D2")
    town.add_order("Wumart", 9_900, "D4")
    town.add_order("Canteen", 900, "LATE", expires_in_seconds=60)
    _clock(platform).advance(61)  # LATE has expired; the codes below are fresh
    for label in ("c1", "c2", "c3", "c4"):
        town.add_code(label, "erin")
    town.add_code("c5", "carol")
    set_card_frozen(platform=platform, user_id=carol.user_id, wallet_card_id=carol.wallet_card_id,
                    frozen=True)  # fmt: skip
    return town


def _mixed_requests(t: Town) -> list[tuple[PaymentRequest, tuple[object, ...]]]:
    """(request, expected (status, reason) or error) in the order they are made."""
    ok, done = Status.COMPLETED.value, None

    def no(reason: Reason) -> tuple[object, ...]:
        return (Status.DECLINED.value, reason.value)

    bob, alice = t.members["bob"], t.members["alice"]
    return [
        (t.scan("alice", t.static["Wumart"], 1_234), (ok, done)),
        (t.scan("alice", t.orders["D1"]), (ok, done)),
        (t.scan("alice", t.orders["D1"]), no(Reason.ORDER_ALREADY_PAID)),  # the same order twice
        (t.scan("alice", t.static["Wumart"], 500, pin=WRONG_PIN), no(Reason.WRONG_PIN)),
        (t.scan("alice", t.orders["D2"], pin=None), (ok, done)),  # password-free
        (t.scan("alice", t.orders["LATE"]), no(Reason.ORDER_EXPIRED)),
        (t.scan("alice", PIX, 100), no(Reason.FOREIGN_CODE)),
        (t.scan("alice", t.static["Wumart"], 150_000, pin=None), no(Reason.PIN_REQUIRED)),
        (t.scan("carol", t.static["Wumart"], 1_000), no(Reason.CARD_FROZEN)),
        (t.scan("bob", t.static["Canteen"], 8_000), (ok, done)),
        (t.scan("bob", t.static["Canteen"], 3_000), no(Reason.INSUFFICIENT_FUNDS)),
        (t.scan("bob", t.static["Canteen"], 2_000), (ok, done)),  # what is left: exactly ¥20
        (t.scan("dave", t.static["Wumart"], 30_000), (ok, done)),
        (t.scan("dave", t.static["Canteen"], 15_000), (ok, done)),
        (t.scan("dave", t.static["Wumart"], 6_000), no(Reason.LIMIT_EXCEEDED)),  # ¥510 > ¥500
        (t.scan("dave", t.static["Wumart"], 5_000), (ok, done)),  # ¥500 exactly
        (t.collect("Bus", t.codes["c1"].qr_payload, 200), (ok, done)),
        (t.collect("Bus", t.codes["c1"].qr_payload, 200), no(Reason.CODE_ALREADY_USED)),
        (t.collect("Bus", t.codes["c1"].numeric, 200), no(Reason.CODE_ALREADY_USED)),
        (t.collect("Bus", t.codes["c2"].numeric, 300), (ok, done)),
        (
            t.collect("Parking", t.codes["c3"].qr_payload, 5_000, capture=False),
            (Status.AUTHORIZED.value, done),
        ),
        (t.collect("Wumart", t.codes["c4"].qr_payload, 120_000), no(Reason.PIN_REQUIRED)),
        (t.collect("Bus", UNIONPAY_CPM, 200), no(Reason.FOREIGN_CODE)),
        (t.collect("Bus", "6200000000000000003", 200), no(Reason.INVALID_CODE)),
        (t.scan("alice", t.static["Canteen"], 20_000), (ok, done)),  # static: ¥212.34
        (t.scan("alice", t.static["Canteen"], 30_000), no(Reason.LIMIT_EXCEEDED)),  # > ¥500
        (t.scan("alice", t.orders["D4"], pin=None), (ok, done)),
        (t.scan("bob", t.static["Canteen"], 100), no(Reason.INSUFFICIENT_FUNDS)),  # drained
        (t.collect("Wumart", t.codes["c4"].qr_payload, 500), (ok, done)),  # c4 was not used
        (t.collect("Bus", t.codes["c5"].qr_payload, 200), no(Reason.CARD_FROZEN)),
        (
            ScanRequest(alice.user_id, t.static["Wumart"], bob.wallet_card_id, Money.of(100), PIN),
            ("error", "not_found", 404),
        ),
        (t.collect("Parking", t.codes["c2"].numeric, 100), no(Reason.CODE_ALREADY_USED)),
    ]


def test_a_batch_answers_what_the_same_requests_one_by_one_answer(
    twins: tuple[Platform, Platform],
) -> None:
    one, batch = (_mixed_town(p) for p in twins)
    _same_people(one, batch)
    mixed_one, mixed_batch = _mixed_requests(one), _mixed_requests(batch)
    expected = [e for _, e in mixed_one]

    sequential = _one_by_one(one.platform, [r for r, _ in mixed_one])
    batched = submit_payments(platform=batch.platform, requests=[r for r, _ in mixed_batch])

    assert [_short(a) for a in sequential] == expected
    assert [_outcome(a) for a in batched] == [_outcome(a) for a in sequential]
    assert _ledger_state(batch) == _ledger_state(one)
    assert _counters(batch.platform) == _counters(one.platform)
    assert _pin_failures(batch.platform) == _pin_failures(one.platform)
    # And the balances are what the completed payments add up to.
    assert available(batch.platform, batch.members["bob"].card_id) == 0
    erin = batch.members["erin"].card_id
    assert available(batch.platform, erin) == 500_000 - 200 - 300 - 5_000 - 500


def test_pin_tries_in_a_batch_count_as_one_by_one(twins: tuple[Platform, Platform]) -> None:
    """A wrong PIN then the right one clears the count; the fifth wrong PIN in a row locks the
    PIN for the requests after it in the same batch (else one batch could try any number of
    PINs against the state read before it)."""
    towns = []
    for platform in twins:
        town = Town(platform)
        town.add_member("alice", "BOC", 100_000)
        town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
        towns.append(town)
    one, batch = towns
    _same_people(one, batch)

    def tries(t: Town) -> list[PaymentRequest]:
        pins = [WRONG_PIN, PIN, WRONG_PIN, PIN, *[WRONG_PIN] * 5, PIN]
        return [t.scan("alice", t.static["Wumart"], 100, pin=pin) for pin in pins]

    sequential = _one_by_one(one.platform, tries(one))
    batched = submit_payments(platform=batch.platform, requests=tries(batch))
    wrong = (Status.DECLINED.value, Reason.WRONG_PIN.value)
    paid = (Status.COMPLETED.value, None)
    locked = (Status.DECLINED.value, Reason.PIN_LOCKED.value)
    assert [_short(a) for a in sequential] == [wrong, paid, wrong, paid, *[wrong] * 5, locked]
    assert [_outcome(a) for a in batched] == [_outcome(a) for a in sequential]
    alice = batch.members["alice"].user_id
    failures, locked_until = _pin_failures(batch.platform)[alice]
    assert (failures, locked_until) == _pin_failures(one.platform)[alice]
    assert failures == 0
    assert locked_until is not None
    assert available(batch.platform, batch.members["alice"].card_id) == 100_000 - 200


def test_a_ledger_declined_payment_frees_its_order_and_limits_when_the_batch_completes(
    twins: tuple[Platform, Platform],
) -> None:
    towns = []
    for platform in twins:
        town = Town(platform)
        town.add_member("alice", "BOC", 100_000)
        town.add_member("bob", "ICBC", 30_000)  # ¥300
        town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
        town.add_order("Wumart", 50_000, "BIG")  # ¥500: more than bob has
        towns.append(town)
    one, batch = towns

    def requests(t: Town) -> list[PaymentRequest]:
        return [
            t.scan("bob", t.orders["BIG"]),  # insufficient funds: the order opens again
            t.scan("alice", t.orders["BIG"]),
            t.scan("bob", t.static["Wumart"], 40_000),  # insufficient funds: static ¥400 back
            t.scan("bob", t.static["Wumart"], 20_000),  # ¥200 of the ¥500 static limit
        ]

    sequential = _one_by_one(one.platform, requests(one))
    no_funds = (Status.DECLINED.value, Reason.INSUFFICIENT_FUNDS.value)
    paid = (Status.COMPLETED.value, None)
    assert [_short(a) for a in sequential] == [no_funds, paid, no_funds, paid]
    # In a batch the ledger answers after every claim was decided (as concurrent requests see
    # it): bob's order and his static limit are still held when alice's and his next payment are
    # decided, and given back when the batch completes (docs/reference/payments.md, "Batches").
    batched = submit_payments(platform=batch.platform, requests=requests(batch))
    held = [
        (Status.DECLINED.value, Reason.ORDER_ALREADY_PAID.value),
        (Status.DECLINED.value, Reason.LIMIT_EXCEEDED.value),
    ]
    assert [_short(a) for a in batched] == [no_funds, held[0], no_funds, held[1]]
    again = submit_payments(platform=batch.platform, requests=requests(batch)[1::2])
    assert [_short(a) for a in again] == [paid, paid]  # given back: a retry is paid


# -- 2. a request that cannot be carried out answers its error in its place ---------------------
def test_errors_answer_in_place_and_the_rest_is_paid(platform: Platform) -> None:
    town = Town(platform)
    alice = town.add_member("alice", "BOC", 100_000)
    bob = town.add_member("bob", "ICBC", 100_000)
    shop = town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    town.add_order("Wumart", 1_000, "D1")
    code = town.add_code("c1", "alice")
    wumart = town.static["Wumart"]
    requests: list[PaymentRequest] = [
        town.scan("alice", wumart, 100),
        ScanRequest(alice.user_id, wumart, bob.wallet_card_id, Money.of(100), PIN),  # not her card
        town.scan("bob", wumart, 200),
        town.scan("bob", wumart, 0),  # invalid amount
        town.scan("alice", wumart, None),  # a static code needs the amount
        town.scan("alice", town.orders["D1"], 999),  # a dynamic code carries its own
        CollectRequest(shop.id, code.qr_payload, Money.of(-5)),
        CollectRequest(shop.id, code.qr_payload, Money.of(100), terminal_code="T0099"),
        CollectRequest(10**9, code.qr_payload, Money.of(100)),  # no such merchant
        CollectRequest(shop.id, code.qr_payload, Money.of(100), capture=False, hold_seconds=10),
        ScanRequest(alice.user_id, wumart, 10**9, Money.of(100), PIN),  # no such card at all
        town.collect("Wumart", code.numeric, 300),  # the code is still unused: paid
        town.scan("alice", town.orders["D1"]),
    ]
    answers = submit_payments(platform=platform, requests=requests)
    errors = {
        n: (a.code, refusal_status(a.code))
        for n, a in enumerate(answers)
        if isinstance(a, PaymentError)
    }
    assert errors == {
        1: ("not_found", 404),
        3: ("invalid_amount", 422),
        4: ("amount_required", 422),
        5: ("amount_mismatch", 422),
        6: ("invalid_amount", 422),
        7: ("unknown_terminal", 422),
        8: ("not_found", 404),
        9: ("invalid_hold", 422),
        10: ("not_found", 404),
    }
    paid = [a for a in answers if isinstance(a, Payment)]
    assert [(a.status, a.amount, a.wallet_card_id) for a in paid] == [
        (Status.COMPLETED, 100, alice.wallet_card_id),
        (Status.COMPLETED, 200, bob.wallet_card_id),
        (Status.COMPLETED, 300, alice.wallet_card_id),
        (Status.COMPLETED, 1_000, alice.wallet_card_id),
    ]
    assert available(platform, alice.card_id) == 100_000 - 100 - 300 - 1_000
    assert available(platform, bob.card_id) == 100_000 - 200
    with platform.engine.connect() as connection:
        recorded = connection.execute(sa.select(sa.func.count()).select_from(payments)).scalar()
    assert recorded == len(paid)  # nothing is recorded for a refused request


# -- 3. a constant number of statements ---------------------------------------------------------
class _CountingCursor:
    def __init__(self, cursor: Any, count: Callable[[], None]) -> None:
        self._cursor, self._count = cursor, count

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._cursor.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._cursor.executemany(*args, **kwargs)

    def __enter__(self) -> _CountingCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._cursor.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _CountingConnection(_CountingCursor):
    """The ledger's raw DBAPI connection, counting what it is asked to execute."""

    def cursor(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        return _CountingCursor(self._cursor.cursor(*args, **kwargs), self._count)


@contextmanager
def _statements(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count the SQL statements sent through the platform's engine and the ledger's own."""
    counts = {"engine": 0, "ledger": 0}

    def on_engine(*_: object) -> None:
        counts["engine"] += 1

    def on_ledger() -> None:
        counts["ledger"] += 1

    real_connection = platform.ledger._connection
    real_in_transaction = ledger_storage._in_transaction

    @contextmanager
    def counted() -> Iterator[Any]:
        with real_connection() as raw:
            yield _CountingConnection(raw, on_ledger)

    def in_transaction(conn: Any) -> bool:
        raw = conn._cursor if isinstance(conn, _CountingConnection) else conn
        return real_in_transaction(raw)

    assert platform.ledger.engine is not platform.engine  # the ledger has its own: count both
    with monkeypatch.context() as patch:
        patch.setattr(platform.ledger, "_connection", counted)
        patch.setattr(ledger_storage, "_in_transaction", in_transaction)
        sa.event.listen(platform.engine, "before_cursor_execute", on_engine)
        try:
            yield counts
        finally:
            sa.event.remove(platform.engine, "before_cursor_execute", on_engine)


def _similar_batch(town: Town, size: int, tag: str) -> list[PaymentRequest]:
    """``size`` payments cycling through static, dynamic, CPM payload and CPM numeric, paid by
    five members, none declined; orders and codes are made beforehand."""
    names = sorted(town.members)
    merchant, terminal = town.shops["Wumart"]
    made = create_orders(platform=town.platform, requests=[
        OrderRequest(merchant, terminal, 300 + n, f"{tag}-{n}") for n in range(size)
    ])  # fmt: skip
    issued = issue_codes(platform=town.platform, requests=[
        (town.members[names[n % 5]].user_id, town.members[names[n % 5]].wallet_card_id)
        for n in range(size)
    ])  # fmt: skip
    requests: list[PaymentRequest] = []
    for n in range(size):
        who = names[n % 5]
        order, code = made[n], issued[n]
        assert not isinstance(order, MerchantError)
        assert not isinstance(code, PaymentError)
        requests.append([
            town.scan(who, town.static["Wumart"], 100 + n),
            town.scan(who, order[1]),
            town.collect("Wumart", code.qr_payload, 200 + n),
            town.collect("Wumart", code.numeric, 200 + n),
        ][n % 4])  # fmt: skip
    return requests


def test_a_batch_costs_the_same_statements_whatever_its_size(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = Town(platform)
    for n in range(5):
        town.add_member(f"m{n}", "BOC" if n % 2 else "ICBC", 1_000_000)
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    counted: dict[int, dict[str, int]] = {}
    for size in (5, 5, 50):  # the first warms the caches (institution codes, static accounts)
        requests = _similar_batch(town, size, f"B{len(counted)}{size}")
        with _statements(platform, monkeypatch) as counts:
            answers = submit_payments(platform=platform, requests=requests)
        assert [a.status for a in answers if isinstance(a, Payment)] == [Status.COMPLETED] * size
        counted[size] = counts
    small, large = counted[5], counted[50]
    assert small["engine"] > 0  # the counters see both connections
    assert small["ledger"] > 0
    assert large["engine"] - small["engine"] <= 2, counted
    assert large["ledger"] - small["ledger"] <= 2, counted


def test_a_batch_larger_than_a_ledger_batch_is_split_between_chains(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = Town(platform)
    bob = town.add_member("bob", "ICBC", 5_000)  # five payments of ¥10
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    posted: list[list[Transfer]] = []
    real = platform.ledger.create_transfers

    def recording(transfers: Sequence[Transfer], **kwargs: Any) -> Any:
        posted.append(list(transfers))
        return real(transfers, **kwargs)

    monkeypatch.setattr(legs, "BATCH_EVENTS_MAX", 13)  # two chains of six legs a ledger batch
    monkeypatch.setattr(platform.ledger, "create_transfers", recording)
    answers = submit_payments(
        platform=platform, requests=[town.scan("bob", town.static["Wumart"], 1_000)] * 7
    )
    assert [_short(a) for a in answers] == [(Status.COMPLETED.value, None)] * 5 + [
        (Status.DECLINED.value, Reason.INSUFFICIENT_FUNDS.value)
    ] * 2
    # Two chains a ledger batch, within its size; no chain is cut: every batch ends a chain.
    chains = [sum(1 for t in batch if not t.flags & TransferFlags.LINKED) for batch in posted]
    assert chains == [2, 2, 2, 1]
    for batch in posted:
        assert len(batch) <= 13
        assert not batch[-1].flags & TransferFlags.LINKED
    assert available(platform, bob.card_id) == 0


# -- 4. a dynamic order declined for its limits stays open --------------------------------------
@pytest.mark.parametrize("same_batch", [False, True], ids=["afterwards", "same_batch"])
def test_a_limit_declined_order_stays_open_for_another_card(
    platform: Platform, same_batch: bool
) -> None:
    town = Town(platform)
    alice = town.add_member("alice", "BOC", 100_000)
    bob = town.add_member("bob", "ICBC", 100_000)
    merchant = town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    set_payment_limits(platform=platform, user_id=alice.user_id, free_per_payment=100,
                          qr_daily_limit=10_000)  # ¥100 a day  # fmt: skip
    town.add_order("Wumart", 15_000, "BIG")
    first = town.scan("alice", town.orders["BIG"])
    second = town.scan("bob", town.orders["BIG"])
    if same_batch:
        declined, paid = submit_payments(platform=platform, requests=[first, second])
    else:
        [declined] = submit_payments(platform=platform, requests=[first])
        assert isinstance(declined, Payment)
        assert declined.order_id is not None
        order = get_order(platform=platform, merchant_id=merchant.id, order_id=declined.order_id)
        assert order is not None
        assert (order.status, order.payment_id) == ("open", None)
        [paid] = submit_payments(platform=platform, requests=[second])
    assert isinstance(declined, Payment)
    assert isinstance(paid, Payment)
    assert (declined.status, declined.decline_reason) == (Status.DECLINED, Reason.LIMIT_EXCEEDED)
    assert (paid.status, paid.wallet_card_id) == (Status.COMPLETED, bob.wallet_card_id)
    assert paid.order_id is not None
    order = get_order(platform=platform, merchant_id=merchant.id, order_id=paid.order_id)
    assert order is not None
    assert (order.status, order.payment_id) == ("paid", paid.id)
    assert available(platform, alice.card_id) == 100_000
    assert available(platform, bob.card_id) == 100_000 - 15_000
    day = limits.beijing_day(START_NS)
    assert limits.used(platform=platform, scope=f"qr:user:{alice.user_id}", day=day) == 0


# -- 5. settle_holds ----------------------------------------------------------------------------
def _hold_town(platform: Platform) -> tuple[Town, list[int]]:
    town = Town(platform)
    town.add_member("erin", "BOC", 100_000)
    town.add_member("fred", "ICBC", 100_000)
    town.add_shop("Parking", Scene.PARKING, "7523")
    town.add_shop("Hotel", Scene.SUPERMARKET, "7011")
    holds = [("erin", "Parking", 5_000), ("erin", "Parking", 2_000), ("fred", "Hotel", 30_000),
             ("fred", "Parking", 4_000), ("erin", "Hotel", 10_000)]  # fmt: skip
    requests = []
    for n, (who, shop, amount) in enumerate(holds):
        code = town.add_code(f"h{n}", who)
        requests.append(town.collect(shop, code.qr_payload, amount, capture=False))
    answers = submit_payments(platform=platform, requests=requests)
    ids = []
    for answer in answers:
        assert isinstance(answer, Payment)
        assert answer.status is Status.AUTHORIZED
        ids.append(answer.id)
    return town, ids


def _settlements(town: Town, ids: list[int]) -> list[HoldSettlement]:
    parking, hotel = town.shops["Parking"][0].id, town.shops["Hotel"][0].id
    return [
        HoldSettlement(parking, ids[0], Money.of(5_000)),  # full capture
        HoldSettlement(parking, ids[1], Money.of(0)),  # void
        HoldSettlement(hotel, ids[2], Money.of(12_345)),  # partial capture
        HoldSettlement(parking, ids[0], Money.of(100)),  # the same payment again: 409
        HoldSettlement(parking, ids[3], Money.of(4_001)),  # more than authorized: 422
        HoldSettlement(hotel, ids[3], Money.of(100)),  # another merchant's payment: 404
        HoldSettlement(parking, ids[3], Money.of(1)),  # then a valid one: the smallest capture
        HoldSettlement(hotel, ids[4], Money.of(10_000)),
        HoldSettlement(hotel, ids[4], Money.of(0)),  # voiding a payment being captured: 409
    ]


def _settle_one_by_one(platform: Platform, requests: list[HoldSettlement]) -> list[Answer]:
    answers: list[Answer] = []
    for r in requests:
        try:
            if r.amount.amount_minor:
                answers.append(capture(platform=platform, merchant_id=r.merchant_id,
                                          payment_id=r.payment_id, amount=r.amount))  # fmt: skip
            else:
                answers.append(void(platform=platform, merchant_id=r.merchant_id,
                                       payment_id=r.payment_id))  # fmt: skip
        except PaymentError as exc:
            answers.append(exc)
    return answers


def test_settle_holds_in_a_batch_matches_settling_one_by_one(
    twins: tuple[Platform, Platform],
) -> None:
    (one, one_ids), (batch, batch_ids) = (_hold_town(p) for p in twins)
    _same_people(one, batch)
    sequential = _settle_one_by_one(one.platform, _settlements(one, one_ids))
    batched = settle_holds(platform=batch.platform, requests=_settlements(batch, batch_ids))
    done, voided = Status.COMPLETED, Status.VOIDED
    assert [
        ("error", a.code, refusal_status(a.code))
        if isinstance(a, PaymentError)
        else (a.status, a.captured)
        for a in batched
    ] == [
        (done, 5_000), (voided, 0), (done, 12_345), ("error", "not_authorized", 409),
        ("error", "invalid_amount", 422), ("error", "not_found", 404), (done, 1),
        (done, 10_000), ("error", "not_authorized", 409),
    ]  # fmt: skip
    assert [_outcome(a) for a in batched] == [_outcome(a) for a in sequential]
    for n, payment_id in enumerate(batch_ids):  # the records say what the answers said
        merchant = batch.shops["Parking" if n in (0, 1, 3) else "Hotel"][0].id
        stored = get_payment(platform=batch.platform, payment_id=payment_id,
                                merchant_id=merchant)  # fmt: skip
        assert stored is not None
        assert stored.captured == [5_000, 0, 12_345, 1, 10_000][n]
    assert _ledger_state(batch) == _ledger_state(one)
    assert _counters(batch.platform) == _counters(one.platform)
    erin, fred = batch.members["erin"], batch.members["fred"]
    assert available(batch.platform, erin.card_id) == 100_000 - 5_000 - 10_000
    assert available(batch.platform, fred.card_id) == 100_000 - 12_345 - 1
    day = limits.beijing_day(START_NS)
    # What was not captured went back to the limits: only the captured amounts count.
    used = limits.used(platform=batch.platform, scope=f"qr:user:{fred.user_id}", day=day)
    assert used == 12_345 + 1


# -- 6. issue_codes -----------------------------------------------------------------------------
def test_issue_codes_in_a_batch_take_consecutive_counters(platform: Platform) -> None:
    town = Town(platform)
    alice = town.add_member("alice", "BOC", 100_000)
    bob = town.add_member("bob", "ICBC", 100_000)
    town.add_shop("Bus", Scene.BUS, "4131")
    first = town.add_code("first", "alice")
    a, b = (alice.user_id, alice.wallet_card_id), (bob.user_id, bob.wallet_card_id)
    answers = issue_codes(
        platform=platform, requests=[a, b, a, (bob.user_id, alice.wallet_card_id), a, (a[0], 10**9)]
    )
    refused = {n: (x.code, refusal_status(x.code)) for n, x in enumerate(answers)
               if isinstance(x, PaymentError)}  # fmt: skip
    assert refused == {3: ("not_found", 404), 5: ("not_found", 404)}
    alices = [answers[0], answers[2], answers[4]]
    assert all(isinstance(x, IssuedCode) for x in alices)
    issued = [x for x in alices if isinstance(x, IssuedCode)]
    assert [x.code.atc for x in issued] == [first.code.atc + n for n in (1, 2, 3)]
    assert len({x.numeric for x in issued}) == 3
    bobs = answers[1]
    assert isinstance(bobs, IssuedCode)
    assert bobs.code.token != first.code.token
    with platform.engine.connect() as connection:
        recorded = connection.execute(
            sa.select(payment_codes.c.atc).where(payment_codes.c.token == first.code.token)
        ).scalars()
        assert sorted(recorded) == [first.code.atc + n for n in range(4)]
    # Each is usable once: the payload and the numeric form are the same code.
    codes = [first, *issued, bobs]
    once = submit_payments(platform=platform, requests=[
        town.collect("Bus", c.qr_payload if n % 2 else c.numeric, 200)
        for n, c in enumerate(codes)
    ])  # fmt: skip
    assert [_short(x) for x in once] == [(Status.COMPLETED.value, None)] * 5
    twice = submit_payments(platform=platform, requests=[
        town.collect("Bus", c.numeric if n % 2 else c.qr_payload, 200)
        for n, c in enumerate(codes)
    ])  # fmt: skip
    assert [_short(x) for x in twice] == [
        (Status.DECLINED.value, Reason.CODE_ALREADY_USED.value)
    ] * 5
    assert available(platform, alice.card_id) == 100_000 - 4 * 200


# -- 7. create_orders ---------------------------------------------------------------------------
def test_create_orders_refuses_duplicate_bills_in_place(platform: Platform) -> None:
    town = Town(platform)
    town.add_member("alice", "BOC", 100_000)
    wumart, canteen = (town.add_shop(n, s, m) for n, s, m in (
        ("Wumart", Scene.SUPERMARKET, "5411"), ("Canteen", Scene.CANTEEN, "5814")
    ))  # fmt: skip
    town.add_order("Wumart", 1_000, "B1")
    w, c = town.shops["Wumart"][1], town.shops["Canteen"][1]
    answers = create_orders(platform=platform, requests=[
        OrderRequest(wumart, w, 2_000, "B2"),
        OrderRequest(wumart, w, 3_000, "B1"),  # in the database already
        OrderRequest(wumart, w, 4_000, "B3"),
        OrderRequest(wumart, w, 5_000, "B2"),  # earlier in the batch
        OrderRequest(canteen, c, 6_000, "B1"),  # another merchant's bill numbers are its own
        OrderRequest(wumart, w, 0, "B4"),
        OrderRequest(wumart, w, 7_000, "B4"),  # the refused one above did not take B4
    ])  # fmt: skip
    refused = {n: (a.code, refusal_status(a.code)) for n, a in enumerate(answers)
               if isinstance(a, MerchantError)}  # fmt: skip
    assert refused == {
        1: ("duplicate_bill_number", 409),
        3: ("duplicate_bill_number", 409),
        5: ("invalid_amount", 422),
    }
    made = {n: a for n, a in enumerate(answers) if not isinstance(a, MerchantError)}
    assert {n: (o.merchant_id, o.bill_number, o.amount) for n, (o, _) in made.items()} == {
        0: (wumart.id, "B2", 2_000),
        2: (wumart.id, "B3", 4_000),
        4: (canteen.id, "B1", 6_000),
        6: (wumart.id, "B4", 7_000),
    }
    for order, _ in made.values():
        stored = get_order(platform=platform, merchant_id=order.merchant_id, order_id=order.id)
        assert stored == order
    with platform.engine.connect() as connection:
        rows = connection.execute(sa.select(qr_orders.c.merchant_id, qr_orders.c.bill_number,
                                            qr_orders.c.amount)).all()  # fmt: skip
    assert sorted((int(m), str(b), int(a)) for m, b, a in rows) == sorted([
        (wumart.id, "B1", 1_000), (wumart.id, "B2", 2_000), (wumart.id, "B3", 4_000),
        (canteen.id, "B1", 6_000), (wumart.id, "B4", 7_000),
    ])  # fmt: skip
    # The payloads pay their own orders.
    paid = submit_payments(platform=platform, requests=[
        town.scan("alice", payload) for _, payload in made.values()
    ])  # fmt: skip
    assert [(x.status, x.amount) for x in paid if isinstance(x, Payment)] == [
        (Status.COMPLETED, 2_000), (Status.COMPLETED, 4_000), (Status.COMPLETED, 6_000),
        (Status.COMPLETED, 7_000),
    ]  # fmt: skip


# -- 8. concurrent batches (PostgreSQL) ---------------------------------------------------------
def _race(platform: Platform, batches: list[list[PaymentRequest]]) -> list[list[Answer]]:
    """Submit the batches at once, one thread each; their answers."""
    start = threading.Barrier(len(batches))
    results: list[list[Answer] | BaseException | None] = [None] * len(batches)

    def run(n: int) -> None:
        try:
            start.wait(timeout=30)
            results[n] = submit_payments(platform=platform, requests=batches[n])
        except BaseException as exc:  # handed to the test below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a batch did not finish"
    answers: list[list[Answer]] = []
    for result in results:
        assert isinstance(result, list), result
        answers.append(result)
    return answers


@pytest.mark.postgres
@pytest.mark.parametrize("rounds", [3])
def test_concurrent_batches_pay_each_code_and_order_once(
    pg_platform: Platform, rounds: int
) -> None:
    platform = pg_platform
    town = Town(platform)
    payers = [town.add_member(f"p{n}", "BOC" if n % 2 else "ICBC", 1_000_000) for n in range(6)]
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    town.add_shop("Bus", Scene.BUS, "4131")
    for r in range(rounds):
        bills = [f"R{r}-{n}" for n in range(10)]
        for n, bill in enumerate(bills):
            town.add_order("Wumart", 1_000 + n, bill)
        codes = [town.add_code(f"r{r}c{n}", f"p{n % 3}") for n in range(10)]
        # The same orders and codes, paid by other cards and in the other order.
        first = [town.scan(f"p{n % 3}", town.orders[bill]) for n, bill in enumerate(bills)]
        first += [town.collect("Bus", c.qr_payload, 200) for c in codes]
        second = [town.scan(f"p{3 + n % 3}", town.orders[b]) for n, b in enumerate(bills)]
        second += [town.collect("Wumart", c.numeric, 300) for c in codes]
        second.reverse()
        a, b = _race(platform, [first, second])
        b.reverse()
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            assert isinstance(x, Payment)
            assert isinstance(y, Payment)
            outcomes = sorted([_short(x), _short(y)], key=str)
            lost = Reason.ORDER_ALREADY_PAID if n < 10 else Reason.CODE_ALREADY_USED
            assert outcomes == sorted(
                [(Status.COMPLETED.value, None), (Status.DECLINED.value, lost.value)], key=str
            ), (n, x, y)
            winner = x if x.status is Status.COMPLETED else y
            with platform.engine.connect() as connection:
                if n < 10:
                    stored = connection.execute(
                        sa.select(qr_orders.c.status, qr_orders.c.payment_id)
                        .where(qr_orders.c.id == winner.order_id)
                    ).one()  # fmt: skip
                    assert tuple(stored) == ("paid", winner.id)
                else:
                    code = codes[n - 10].code
                    used_by = connection.execute(
                        sa.select(payment_codes.c.payment_id).where(
                            payment_codes.c.token == code.token, payment_codes.c.atc == code.atc
                        )
                    ).scalar()
                    assert used_by == winner.id
    spent = sum(1_000_000 - available(platform, p.card_id) for p in payers)
    orders_total = rounds * sum(1_000 + n for n in range(10))
    with platform.engine.connect() as connection:
        codes_total = connection.execute(
            sa.select(sa.func.sum(payments.c.amount)).where(
                payments.c.status == "completed", payments.c.kind == "cpm"
            )
        ).scalar()
    assert spent == orders_total + int(codes_total or 0)


@pytest.mark.postgres
def test_concurrent_batches_draining_one_card(pg_platform: Platform) -> None:
    platform = pg_platform
    town = Town(platform)
    alice = town.add_member("alice", "BOC", 20_000)  # ¥200: twenty payments of ¥10
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    town.add_shop("Bus", Scene.BUS, "4131")
    codes = [town.add_code(f"c{n}", "alice") for n in range(30)]
    first = [town.scan("alice", town.static["Wumart"], 1_000) for _ in range(15)]
    second = [town.collect("Bus", c.qr_payload, 1_000) for c in codes[:15]]
    third = [town.collect("Wumart", c.numeric, 1_000) for c in codes[15:]]
    answers = [x for batch in _race(platform, [first, second, third]) for x in batch]
    outcomes = Counter(_short(x) for x in answers)
    assert outcomes == {
        (Status.COMPLETED.value, None): 20,
        (Status.DECLINED.value, Reason.INSUFFICIENT_FUNDS.value): 25,
    }
    assert available(platform, alice.card_id) == 0
    card = _card(platform, alice)
    [account] = platform.ledger.lookup_accounts([card.ledger_account_id])
    assert account.credits_posted - account.debits_posted == 0  # never below zero
    day = limits.beijing_day(START_NS)
    assert limits.used(platform=platform, scope=f"qr:user:{alice.user_id}", day=day) == 20_000
    assert limits.used(platform=platform, scope=f"card:{card.id}", day=day) == 20_000


@pytest.mark.postgres
def test_concurrent_batches_of_other_payers_pay_each_order_once(pg_platform: Platform) -> None:
    """Payers with no limit counter in common: the batches meet only at the orders' rows."""
    platform = pg_platform
    town = Town(platform)
    for n in range(8):
        town.add_member(f"p{n}", "BOC" if n % 2 else "ICBC", 1_000_000)
    town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    bills = [f"O{n}" for n in range(20)]
    for n, bill in enumerate(bills):
        town.add_order("Wumart", 500 + n, bill)
    first = [town.scan(f"p{n % 4}", town.orders[b], pin=None) for n, b in enumerate(bills)]
    second = [town.scan(f"p{4 + n % 4}", town.orders[b], pin=None) for n, b in enumerate(bills)]
    a, b = _race(platform, [first, list(reversed(second))])
    b.reverse()
    winners = []
    for x, y in zip(a, b, strict=True):
        assert sorted([_short(x), _short(y)], key=str) == sorted(
            [(Status.COMPLETED.value, None),
             (Status.DECLINED.value, Reason.ORDER_ALREADY_PAID.value)], key=str,
        )  # fmt: skip
        winners.append(x if isinstance(x, Payment) and x.status is Status.COMPLETED else y)
    with platform.engine.connect() as connection:
        stored = dict(
            connection.execute(sa.select(qr_orders.c.bill_number, qr_orders.c.payment_id)).all()
        )
    assert stored == {bill: w.id for bill, w in zip(bills, winners, strict=True)}
    spent = sum(1_000_000 - available(platform, m.card_id) for m in town.members.values())
    assert spent == sum(500 + n for n in range(20))


@pytest.mark.postgres
def test_concurrent_refunds_of_one_payment_each_move_their_money(pg_platform: Platform) -> None:
    """Refund numbers are taken under the payment's row lock: two merchants' terminals refunding
    one payment at once get distinct ledger ids, so each refund moves its own money and
    together they cannot pass what was paid."""
    platform = pg_platform
    town = Town(platform)
    alice = town.add_member("alice", "BOC", 100_000)
    shop = town.add_shop("Wumart", Scene.SUPERMARKET, "5411")
    [paid] = submit_payments(
        platform=platform, requests=[town.scan("alice", town.static["Wumart"], 30_000, PIN)]
    )
    assert isinstance(paid, Payment)
    start = threading.Barrier(4)
    answers: list[object] = [None] * 4

    def refund(n: int) -> None:
        start.wait(timeout=30)
        request = RefundRequest(shop.id, paid.id, Money.of(10_000))
        answers[n] = refund_many(platform=platform, requests=[request])[0]

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    refunded = [a for a in answers if isinstance(a, Payment)]
    refused = [a for a in answers if isinstance(a, PaymentError)]
    assert len(refunded) == 3
    assert [e.code for e in refused] == ["refund_exceeds_payment"]
    assert available(platform, alice.card_id) == 100_000  # all 30,000 came back, once each
    final = get_payment(platform=platform, payment_id=paid.id, user_id=alice.user_id)
    assert final is not None
    assert (final.status, final.refunded) == (Status.REFUNDED, 30_000)
