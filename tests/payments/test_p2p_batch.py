"""P2P transfers in batches (``create_transfers``), on SQLite and PostgreSQL.

The promise under test: a batch answers each request exactly as ``create_transfer`` would have
had the requests come one after another — same statuses, decline reasons in the same precedence,
limits, PIN counters and balances — with a constant number of statements per batch. Two worlds
are built the same way; one takes the requests one by one, the other as one batch, and
everything observable is compared. Then: a validation error in the middle of a batch, a batch
that dies around its ledger post (recovery settles it), and two batches racing over one card on
PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from flashpay.books import check_books
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.service import CardStatus, card_balance, get_card, issue_card, set_card_status
from flashpay.clock import FakeClock
from flashpay.institutions.definition import default_definition
from flashpay.institutions.service import get_institution, load_network
from flashpay.keys import KeyRing
from flashpay.ledger import Transfer
from flashpay.ledger.check import check
from flashpay.money import Money
from flashpay.notify import RecordingNotifier
from flashpay.payments import legs, limits
from flashpay.payments.errors import PaymentError
from flashpay.payments.legs import ledger_calls
from flashpay.payments.models import p2p_transfers
from flashpay.payments.transfer_queries import list_transfers, recover_transfers
from flashpay.payments.transfer_records import (
    REQUESTS_PER_BATCH_MAX,
    DeclineReason,
    P2PRequest,
    P2PTransfer,
    TransferStatus,
)
from flashpay.payments.transfers import create_transfer, create_transfers
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.cards import set_card_frozen
from flashpay.wallet.models import wallet_users
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import register

from .crashing import CrashError, CrashingLedger

START_NS = 1_795_000_000 * 1_000_000_000  # 2026-11-18, Beijing afternoon (as conftest)
PASSWORD = "correct horse battery"
PIN = "135790"
WRONG_PIN = "135791"
YUAN = 100


# -- a second, identical world ----------------------------------------------------------------
@pytest.fixture
def twin_url(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Another fresh, migrated database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "twin.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    template_name: str = request.getfixturevalue("_postgres_template")
    name = f"flashpay_twin_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield f"{admin_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def twin(twin_url: str) -> Iterator[Platform]:
    """A platform over ``twin_url`` set up like conftest's ``platform``, its books checked."""
    opened = Platform.open(
        twin_url, clock=FakeClock(START_NS), keys=KeyRing.generate(), notifier=RecordingNotifier()
    )
    load_network(platform=opened, definition=default_definition())
    yield opened
    report = check(twin_url)
    assert report.ok, [str(p) for p in report.problems]
    assert check_books(platform=opened) == []
    opened.close()


# -- wallet users and cards -----------------------------------------------------------------
@dataclasses.dataclass
class Bound:
    wallet_card_id: int
    card_id: int
    number: CardNumber


@dataclasses.dataclass
class Member:
    user_id: int
    phone: str
    name: str
    id_number: str
    cards: list[Bound] = dataclasses.field(default_factory=list)


class Kit:
    """Wallet users with bound debit cards, made through the services in a fixed order (so two
    kits on two platforms build the same world, up to random card numbers and keys)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.people = 0

    def member(self, *, pin: bool = True) -> Member:
        self.people += 1
        n = self.people
        phone, name, id_number = f"1390000{n:04d}", f"Member {n}", f"11010119900101{n:03d}X"
        user = register(platform=self.platform, phone=phone, name=name, id_number=id_number,
                        password=PASSWORD)  # fmt: skip
        if pin:
            set_pin(platform=self.platform, user_id=user.id, pin=PIN, password=PASSWORD)
        return Member(user.id, phone, name, id_number)

    def issue(
        self, holder: Member, *, bank: str, prefix: str, balance: int
    ) -> tuple[CardNumber, int]:
        """A card the bank issues to ``holder``: (its number, its card id)."""
        issuer = get_institution(platform=self.platform, code=bank)
        assert issuer is not None
        number = generate_card_number(prefix)
        issued = issue_card(platform=self.platform, issuer=issuer, card=number, expiry="3012",
                            holder_name=holder.name, holder_id_number=holder.id_number,
                            phone=holder.phone, opening_balance=balance)  # fmt: skip
        return number, issued.card.id

    def card(self, holder: Member, *, bank: str, prefix: str, balance: int) -> Bound:
        number, _ = self.issue(holder, bank=bank, prefix=prefix, balance=balance)
        binding = start_binding(platform=self.platform, user_id=holder.user_id,
                                card_number=number, expiry="12/30")  # fmt: skip
        notifier = self.platform.notifier
        assert isinstance(notifier, RecordingNotifier)
        otp = notifier.last_code("card_binding", str(binding.id))
        bound = confirm_binding(platform=self.platform, user_id=holder.user_id,
                                binding_id=binding.id, otp=otp)  # fmt: skip
        card = Bound(bound.id, bound.card.id, number)
        holder.cards.append(card)
        return card

    def with_card(self, *, bank: str = "BOC", prefix: str = "621661", balance: int) -> Member:
        member = self.member()
        self.card(member, bank=bank, prefix=prefix, balance=balance)
        return member


def send(
    member: Member,
    amount: int,
    *,
    card: int = 0,
    pin: str = PIN,
    currency: str = "CNY",
    **to: Any,
) -> tuple[int, P2PRequest]:
    """(user, request) of ``amount`` minor units of ``currency`` from the member's
    ``card``-th card."""
    request = P2PRequest(
        from_wallet_card_id=member.cards[card].wallet_card_id,
        amount=Money.of(amount, currency),
        pin=pin,
        **to,
    )
    return member.user_id, request


def one_by_one(
    platform: Platform, requests: Sequence[tuple[int, P2PRequest]]
) -> list[P2PTransfer | PaymentError]:
    answers: list[P2PTransfer | PaymentError] = []
    for user_id, request in requests:
        try:
            answers.append(create_transfer(platform=platform, user_id=user_id, request=request))
        except PaymentError as error:
            answers.append(error)
    return answers


def outcome(answer: P2PTransfer | PaymentError) -> tuple[object, ...]:
    """What a caller sees of an answer, without the ids and card numbers that differ by world."""
    if isinstance(answer, PaymentError):
        return ("error", answer.code, str(answer))
    return (answer.status.value, answer.decline_reason and answer.decline_reason.value,
            answer.amount, answer.recipient_kind, answer.voucher is not None,
            answer.completed_at_ns is not None, answer.memo)  # fmt: skip


def available(platform: Platform, card_id: int) -> int:
    card = get_card(platform=platform, card_id=card_id)
    assert card is not None
    return card_balance(platform=platform, card=card).available


def used(platform: Platform, scope: str) -> int:
    return limits.used(platform=platform, scope=scope, day=limits.beijing_day(START_NS))


def observed(platform: Platform, members: Sequence[Member], others: Sequence[int]) -> object:
    """Everything the transfers changed, by role: every card's balance, every limit counter,
    every PIN state, and every ledger account that is not a card's (institution accounts, whose
    ids are the same in every world)."""
    with platform.engine.connect() as connection:
        pins = {
            int(row.id): (int(row.pin_failures), row.pin_locked_until_ns is not None)
            for row in connection.execute(sa.select(wallet_users))
        }
        card_accounts = {
            int(a)
            for a in connection.execute(sa.text("SELECT ledger_account_id FROM cards")).scalars()
        }
        every = [
            int(a) for a in connection.execute(sa.text("SELECT id FROM ledger_accounts")).scalars()
        ]
    institutions = {
        a.id: (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
        for a in platform.ledger.lookup_accounts(sorted(set(every) - card_accounts))
    }
    people = [
        (pins[m.user_id], used(platform, f"user:{m.user_id}"),
         [(available(platform, c.card_id), used(platform, f"card:{c.card_id}")) for c in m.cards])
        for m in members
    ]  # fmt: skip
    return people, [available(platform, card_id) for card_id in others], institutions


# -- a batch is the same requests one by one --------------------------------------------------
def mixed_world(platform: Platform) -> tuple[list[Member], list[int], list[tuple[int, P2PRequest]]]:
    """A dozen users and a batch that meets every outcome: same bank and cross bank, by phone and
    by card, each decline reason, malformed requests, the daily user and card limits exhausted
    inside the batch, a card drained by an earlier transfer of the batch, a PIN locked by the
    fifth wrong try of the batch, and a transfer the ledger refuses whose reservation a later
    one needs."""
    kit = Kit(platform)
    alice = kit.with_card(balance=1_000 * YUAN)
    bob = kit.with_card(prefix="621785", balance=0)  # same bank as Alice
    carol = kit.with_card(bank="ICBC", prefix="622202", balance=50 * YUAN)
    dave = kit.with_card(bank="CMB", prefix="622588", balance=500 * YUAN)
    set_card_frozen(platform=platform, user_id=dave.user_id,
                    wallet_card_id=dave.cards[0].wallet_card_id, frozen=True)  # fmt: skip
    erin = kit.with_card(balance=500 * YUAN)
    frank = kit.with_card(balance=100 * YUAN)  # too little for what he sends from it
    kit.card(frank, bank="BOC", prefix="621785", balance=50_000 * YUAN)
    kit.card(frank, bank="ICBC", prefix="622202", balance=50_000 * YUAN)
    kit.card(frank, bank="CMB", prefix="622588", balance=50_000 * YUAN)
    grace = kit.with_card(balance=300 * YUAN)
    heidi = kit.with_card(balance=100_000 * YUAN)
    ivan = kit.member(pin=False)
    kit.card(ivan, bank="BOC", prefix="621661", balance=100 * YUAN)
    judy = kit.with_card(bank="ICBC", prefix="622202", balance=0)
    closed = set_card_status(platform=platform, card_id=judy.cards[0].card_id,
                             status=CardStatus.CLOSED)  # fmt: skip
    assert closed is not None
    outsider = Member(0, "13700000001", "Outsider", "11010119900101999X")  # not a wallet user
    stranger, stranger_card_id = kit.issue(outsider, bank="ICBC", prefix="622202", balance=0)
    unknown = generate_card_number("622202").reveal()
    requests = [
        send(alice, 1_234, to_phone=bob.phone),  # same bank, by phone
        send(alice, 100 * YUAN, to_phone=carol.phone, memo="dinner"),  # cross bank
        send(alice, 5 * YUAN, to_card_number=stranger.reveal()),  # by card, not a wallet user
        send(alice, 1 * YUAN, to_phone="13999999999"),  # recipient_not_found
        send(alice, 1 * YUAN, to_card_number=unknown),  # recipient_not_found
        send(alice, 1 * YUAN, to_card_number=alice.cards[0].number.reveal()),  # same_card
        send(alice, limits.PER_TRANSFER_MAX + 1, to_phone=bob.phone),  # per transfer
        send(dave, 1 * YUAN, to_phone=alice.phone),  # card_frozen
        *(send(erin, 1 * YUAN, pin=WRONG_PIN, to_phone=alice.phone) for _ in range(5)),
        send(erin, 1 * YUAN, to_phone=alice.phone),  # the right PIN: pin_locked now
        send(ivan, 1 * YUAN, to_phone=alice.phone),  # pin_not_set
        send(alice, 1 * YUAN, to_phone=judy.phone),  # recipient_unavailable
        # Frank: the ledger refuses the first (¥100 on the card); one after another its
        # reservation is back before the third, which then fits the user's ¥100,000 a day.
        send(frank, 40_000 * YUAN, card=0, to_phone=bob.phone),  # insufficient_funds
        send(frank, 40_000 * YUAN, card=1, to_phone=carol.phone),  # completed (¥40,000 used)
        send(frank, 40_000 * YUAN, card=2, to_phone=bob.phone),  # completed (¥80,000)
        send(frank, 25_000 * YUAN, card=3, to_phone=bob.phone),  # the user's daily limit
        send(frank, 20_000 * YUAN, card=3, to_phone=bob.phone),  # exactly ¥100,000
        # Grace: the first drains her card for the second.
        send(grace, 200 * YUAN, to_phone=bob.phone),
        send(grace, 200 * YUAN, to_phone=carol.phone),  # insufficient_funds
        send(grace, 100 * YUAN, to_phone=bob.phone),  # exactly what is left
        # Heidi: the card's ¥50,000 a day.
        send(heidi, 30_000 * YUAN, to_phone=bob.phone),
        send(heidi, 30_000 * YUAN, to_phone=carol.phone),  # limit_exceeded (card)
        send(heidi, 20_000 * YUAN, to_phone=carol.phone),  # exactly ¥50,000
        send(alice, 0, to_phone=bob.phone),  # invalid_amount
        (alice.user_id, P2PRequest(bob.cards[0].wallet_card_id, Money.of(1 * YUAN), PIN,
                                   to_phone=carol.phone)),  # not Alice's card: not_found
        send(alice, 1 * YUAN, to_phone="555"),  # invalid_phone
        send(carol, 1 * YUAN, to_card_number=alice.cards[0].number.reveal()),
        send(erin, 1 * YUAN, to_phone=alice.phone),  # still locked
        send(bob, 1_234, to_phone=alice.phone),  # Bob sends on what he got in this batch
    ]  # fmt: skip
    members = [alice, bob, carol, dave, erin, frank, grace, heidi, ivan, judy]
    return members, [stranger_card_id], requests


EXPECTED = [
    ("completed", None),
    ("completed", None),
    ("completed", None),
    ("declined", "recipient_not_found"),
    ("declined", "recipient_not_found"),
    ("declined", "same_card"),
    ("declined", "limit_exceeded"),
    ("declined", "card_frozen"),
    *[("declined", "wrong_pin")] * 5,
    ("declined", "pin_locked"),
    ("declined", "pin_not_set"),
    ("declined", "recipient_unavailable"),
    ("declined", "insufficient_funds"),
    ("completed", None),
    ("completed", None),
    ("declined", "limit_exceeded"),
    ("completed", None),
    ("completed", None),
    ("declined", "insufficient_funds"),
    ("completed", None),
    ("completed", None),
    ("declined", "limit_exceeded"),
    ("completed", None),
    ("error", "invalid_amount"),
    ("error", "not_found"),
    ("error", "invalid_phone"),
    ("completed", None),
    ("declined", "pin_locked"),
    ("completed", None),
]


def test_a_batch_answers_what_one_by_one_answers(platform: Platform, twin: Platform) -> None:
    members_1, others_1, requests_1 = mixed_world(platform)
    members_b, others_b, requests_b = mixed_world(twin)
    sequential = one_by_one(platform, requests_1)
    batched = create_transfers(platform=twin, requests=requests_b)
    assert [outcome(a) for a in batched] == [outcome(a) for a in sequential]
    assert [outcome(a)[:2] for a in sequential] == EXPECTED
    assert observed(twin, members_b, others_b) == observed(platform, members_1, others_1)
    # The transfer ids grow in request order (lists are newest first by id).
    ids = [a.id for a in batched if isinstance(a, P2PTransfer)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_malformed_request_is_answered_in_its_place_and_the_others_go_on(
    platform: Platform,
) -> None:
    kit = Kit(platform)
    alice = kit.with_card(balance=1_000 * YUAN)
    bob = kit.with_card(bank="ICBC", prefix="622202", balance=0)
    requests = [send(alice, (n + 1) * YUAN, to_phone=bob.phone) for n in range(5)]
    requests[2] = send(alice, 3 * YUAN, to_phone=bob.phone, currency="USD")
    answers = create_transfers(platform=platform, requests=requests)
    error = answers[2]
    assert isinstance(error, PaymentError)
    assert error.code == "unsupported_currency"  # a 422 at the API (tests/api/test_transfers.py)
    posted = [a for n, a in enumerate(answers) if n != 2]
    assert all(isinstance(a, P2PTransfer) and a.status is TransferStatus.COMPLETED for a in posted)
    assert available(platform, bob.cards[0].card_id) == (1 + 2 + 4 + 5) * YUAN
    listed = list_transfers(platform=platform, user_id=alice.user_id)
    assert sorted(t.amount for t in listed) == [100, 200, 400, 500]  # nothing for the error


def test_a_batch_of_only_errors_records_nothing(platform: Platform) -> None:
    alice = Kit(platform).with_card(balance=1_000 * YUAN)
    answers = create_transfers(
        platform=platform,
        requests=[send(alice, -1, to_phone="13800000000"), send(alice, 1, to_phone="12")],
    )
    assert [a.code for a in answers if isinstance(a, PaymentError)] == [
        "invalid_amount",
        "invalid_phone",
    ]
    assert create_transfers(platform=platform, requests=[]) == []
    assert list_transfers(platform=platform, user_id=alice.user_id) == []


def test_statements_per_batch_do_not_grow_with_the_batch(platform: Platform) -> None:
    """The point of batching: the service's own statements are the same for 4 and for 40
    transfers (reads, one record transaction, one settling transaction)."""
    kit = Kit(platform)
    payers = [kit.with_card(balance=1_000 * YUAN) for _ in range(4)]
    payee = kit.with_card(bank="ICBC", prefix="622202", balance=0)
    create_transfer(platform=platform, user_id=payers[0].user_id,
                    request=send(payers[0], YUAN, to_phone=payee.phone)[1])  # fmt: skip
    statements: list[str] = []  # counted from here, with the institution codes cached

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    sa.event.listen(platform.engine, "before_cursor_execute", count)
    try:
        small = [send(payers[n % 4], YUAN, to_phone=payee.phone) for n in range(4)]
        create_transfers(platform=platform, requests=small)
        four = Counter(statements)
        statements.clear()
        large = [send(payers[n % 4], YUAN, to_phone=payee.phone) for n in range(40)]
        answers = create_transfers(platform=platform, requests=large)
        forty = Counter(statements)
    finally:
        sa.event.remove(platform.engine, "before_cursor_execute", count)
    assert all(isinstance(a, P2PTransfer) and a.status is TransferStatus.COMPLETED for a in answers)
    assert forty == four
    assert sum(four.values()) <= 10, four


def test_a_batch_bigger_than_a_ledger_call_is_split_and_answers_the_same(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = Kit(platform)
    alice = kit.with_card(balance=100 * YUAN)
    bob = kit.with_card(bank="ICBC", prefix="622202", balance=0)  # cross bank: 3 events each
    calls: list[int] = []
    real = platform.ledger

    class Counting:
        def create_transfers(self, transfers: Sequence[Transfer], **kwargs: Any) -> Any:
            calls.append(len(transfers))
            return real.create_transfers(transfers, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(legs, "BATCH_EVENTS_MAX", 7)  # two chains of three per call
    counting = dataclasses.replace(platform, ledger=Counting())
    answers = create_transfers(
        platform=counting, requests=[send(alice, 30 * YUAN, to_phone=bob.phone)] * 5
    )
    assert calls == [6, 6, 3]
    assert [a.decline_reason for a in answers if isinstance(a, P2PTransfer)] == [
        None,
        None,
        None,
        DeclineReason.INSUFFICIENT_FUNDS,  # the fourth ¥30 finds ¥10
        DeclineReason.INSUFFICIENT_FUNDS,
    ]
    assert available(platform, alice.cards[0].card_id) == 10 * YUAN


def test_ledger_calls_hold_whole_chains_in_order() -> None:
    chain = [object()]
    chains: list[Any] = [chain * 3, chain, chain * 3, chain * 3, chain]
    assert ledger_calls(chains, 4) == [[0, 1], [2], [3, 4]]
    assert ledger_calls(chains, 11) == [[0, 1, 2, 3, 4]]
    assert ledger_calls([], 4) == []


def test_more_than_the_batch_limit_is_refused(platform: Platform) -> None:
    request = (1, P2PRequest(1, Money.of(1), PIN, to_phone="13800000000"))
    with pytest.raises(ValueError, match="transfers in one batch"):
        create_transfers(platform=platform, requests=[request] * (REQUESTS_PER_BATCH_MAX + 1))


# -- crash and recovery -------------------------------------------------------------------------


def _statuses(platform: Platform, user_id: int) -> list[tuple[str, str | None]]:
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(p2p_transfers.c.status, p2p_transfers.c.decline_reason)
            .where(p2p_transfers.c.user_id == user_id)
            .order_by(p2p_transfers.c.id)
        ).all()
    return [(str(status), reason) for status, reason in rows]


@pytest.mark.parametrize("after_post", [False, True], ids=["before_post", "after_post"])
def test_recovery_settles_a_batch_that_died_after_its_record_transaction(
    platform: Platform, clock: FakeClock, after_post: bool
) -> None:
    kit = Kit(platform)
    alice = kit.with_card(balance=100 * YUAN)
    bob = kit.with_card(prefix="621785", balance=0)
    carol = kit.with_card(bank="ICBC", prefix="622202", balance=0)
    requests = [
        send(alice, 40 * YUAN, to_phone=bob.phone),
        send(alice, 50 * YUAN, to_phone=carol.phone),
        send(alice, 20 * YUAN, to_phone=bob.phone),  # more than is left: the ledger refuses it
        send(alice, 1 * YUAN, to_phone="13999999999"),  # declined before anything is recorded
    ]
    crashing = dataclasses.replace(
        platform, ledger=CrashingLedger(platform.ledger, after_post=after_post)
    )
    with pytest.raises(CrashError):
        create_transfers(platform=crashing, requests=requests)
    # The record transaction committed: three created (their limits reserved), one declined.
    assert _statuses(platform, alice.user_id) == [("created", None)] * 3 + [
        ("declined", "recipient_not_found")
    ]
    assert used(platform, f"user:{alice.user_id}") == 110 * YUAN
    clock.advance(61)
    assert recover_transfers(platform=platform) == 3
    if after_post:
        # What the ledger holds is completed; the refused chain never posted: declined.
        assert _statuses(platform, alice.user_id) == [
            ("completed", None),
            ("completed", None),
            ("declined", "processing_error"),
            ("declined", "recipient_not_found"),
        ]
        assert used(platform, f"user:{alice.user_id}") == 90 * YUAN
        assert available(platform, alice.cards[0].card_id) == 10 * YUAN
    else:
        assert _statuses(platform, alice.user_id) == [("declined", "processing_error")] * 3 + [
            ("declined", "recipient_not_found")
        ]
        assert used(platform, f"user:{alice.user_id}") == 0
        assert used(platform, f"card:{alice.cards[0].card_id}") == 0
        assert available(platform, alice.cards[0].card_id) == 100 * YUAN
    assert recover_transfers(platform=platform) == 0  # settled once
    # What is left to spend is what the ledger holds: ¥40 more goes through only if nothing
    # was posted before the crash (¥10 is left after it).
    [again] = create_transfers(platform=platform, requests=requests[:1])
    assert isinstance(again, P2PTransfer)
    assert again.status is (TransferStatus.DECLINED if after_post else TransferStatus.COMPLETED)


# -- concurrency on PostgreSQL ------------------------------------------------------------------
ROUNDS = 2  # two wrong PINs a round: 4 of the 5 that lock


@pytest.mark.postgres
def test_two_batches_at_once_over_one_card_post_exactly_what_fits(
    postgres_url: str,
) -> None:
    platform = Platform.open(
        postgres_url, clock=FakeClock(START_NS), keys=KeyRing.generate(),
        notifier=RecordingNotifier(),
    )  # fmt: skip
    try:
        load_network(platform=platform, definition=default_definition())
        kit = Kit(platform)
        alice = kit.with_card(balance=100 * YUAN)  # covers 10 of the 20 transfers below
        bob = kit.with_card(bank="ICBC", prefix="622202", balance=0)
        others = [kit.with_card(balance=100 * YUAN) for _ in range(16)]
        # Each batch also holds a wrong PIN of each other user (malformed: no hash, so the record
        # transactions of the two batches overlap), in the opposite order: both transactions
        # update the same wallet_users rows — a deadlock unless both lock them in one order.
        wrong = [send(o, 1 * YUAN, pin="x", to_phone=bob.phone) for o in others]
        answers: list[P2PTransfer | PaymentError] = []
        failures: list[BaseException] = []
        for _ in range(ROUNDS):
            mine = [send(alice, 10 * YUAN, to_phone=bob.phone) for _ in range(5)]
            batches = [mine[:2] + wrong + mine[2:], mine[:2] + wrong[::-1] + mine[2:]]
            barrier = threading.Barrier(len(batches))

            def run(batch: list[tuple[int, P2PRequest]], barrier: threading.Barrier) -> None:
                try:
                    barrier.wait()
                    answers.extend(create_transfers(platform=platform, requests=batch))
                except BaseException as exc:  # a deadlock would surface here
                    failures.append(exc)

            threads = [threading.Thread(target=run, args=(b, barrier)) for b in batches]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert failures == []
        from_alice = Counter(
            (a.status.value, a.decline_reason and a.decline_reason.value)
            for a in answers
            if isinstance(a, P2PTransfer) and a.user_id == alice.user_id
        )
        assert from_alice == {("completed", None): 10, ("declined", "insufficient_funds"): 10}
        assert available(platform, alice.cards[0].card_id) == 0
        assert available(platform, bob.cards[0].card_id) == 100 * YUAN
        assert used(platform, f"user:{alice.user_id}") == 100 * YUAN
        assert used(platform, f"card:{alice.cards[0].card_id}") == 100 * YUAN
        with platform.engine.connect() as connection:
            failures_by_user = {
                int(user_id): int(count)
                for user_id, count in connection.execute(
                    sa.select(wallet_users.c.id, wallet_users.c.pin_failures)
                )
            }
        # Two wrong PINs a round each (one per batch), none lost by the concurrent updates.
        assert [failures_by_user[o.user_id] for o in others] == [2 * ROUNDS] * len(others)
        report = check(postgres_url)
        assert report.ok, [str(p) for p in report.problems]
        assert check_books(platform=platform) == []
    finally:
        platform.close()
