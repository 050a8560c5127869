"""``enrol_cards``: an issuer puts the cards of customers who asked for it into their wallets in
bulk (issuer enrolment), on SQLite and PostgreSQL — the wallet found by the phone the issuer has
on file, the same checks as a binding, all or nothing, idempotent, under the lock a binding
takes."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.service import CardIssue, CardStatus, issue_cards, set_card_status
from flashpay.institutions.service import Institution, get_institution
from flashpay.passwords import DEMO_PASSWORD_POLICY
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.cards import WalletCard, get_wallet_card, list_wallet_cards
from flashpay.wallet.enrolment import ENROL_BATCH_MAX, enrol_cards
from flashpay.wallet.errors import WalletError
from flashpay.wallet.models import wallet_bindings, wallet_cards, wallet_users
from flashpay.wallet.policy import CARDS_MAX
from flashpay.wallet.registration import get_user, register

PASSWORD = "correct horse battery"


@dataclasses.dataclass(frozen=True)
class Holder:
    user_id: int
    phone: str
    name: str
    id_number: str


def institution(platform: Platform, code: str) -> Institution:
    found = get_institution(platform=platform, code=code)
    assert found is not None
    return found


def demo(platform: Platform) -> Platform:
    return dataclasses.replace(platform, password_policy=DEMO_PASSWORD_POLICY)


def holder(platform: Platform, n: int, name: str = "Li Wei") -> Holder:
    phone, id_number = f"1380000{n:04d}", f"1101011990010{n:04d}X"
    user = register(
        platform=demo(platform), phone=phone, name=name, id_number=id_number, password=PASSWORD
    )
    return Holder(user.id, phone, name, id_number)


def cards_of(
    platform: Platform,
    person: Holder,
    count: int = 1,
    *,
    bank: str = "BOC",
    prefix: str = "621661",
    **terms: Any,
) -> list[int]:
    """``bank`` issues ``count`` debit cards to ``person``; their card ids."""
    fields: dict[str, Any] = {
        "expiry": "3012",
        "holder_name": person.name,
        "holder_id_number": person.id_number,
        "phone": person.phone,
        "opening_balance": 10_00,
    }
    fields.update(terms)
    requests = [CardIssue(card=generate_card_number(prefix), **fields) for _ in range(count)]
    issued = issue_cards(platform=platform, issuer=institution(platform, bank), requests=requests)
    return [one.card.id for one in issued]


def rows(platform: Platform, table: sa.Table) -> list[Any]:
    with platform.engine.connect() as connection:
        return list(connection.execute(sa.select(table).order_by(*table.primary_key.columns)))


@contextmanager
def statements(platform: Platform) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    sa.event.listen(platform.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(platform.engine, "before_cursor_execute", record)


def bind_in_app(platform: Platform, person: Holder, card_number: str) -> WalletCard:
    binding = start_binding(
        platform=platform,
        user_id=person.user_id,
        card_number=CardNumber.parse(card_number),
        expiry="12/30",
    )
    otp = platform.notifier.last_code("card_binding", str(binding.id))  # type: ignore[attr-defined]
    return confirm_binding(
        platform=platform, user_id=person.user_id, binding_id=binding.id, otp=otp
    )


def test_a_bank_enrols_its_cardholders_cards(service_platform):
    platform = service_platform
    boc = institution(platform, "BOC")
    li, wang, zhao = holder(platform, 1), holder(platform, 2, "Wang Fang"), holder(platform, 3)
    # Zhao bound an ICBC card in the app already: it stays the default.
    icbc_number = generate_card_number("622202").reveal()
    issue_cards(
        platform=platform,
        issuer=institution(platform, "ICBC"),
        requests=[
            CardIssue(
                card=CardNumber.parse(icbc_number),
                expiry="3012",
                holder_name=zhao.name,
                holder_id_number=zhao.id_number,
                phone=zhao.phone,
            )
        ],
    )
    in_app = bind_in_app(platform, zhao, icbc_number)
    card_ids = cards_of(platform, li, 2) + cards_of(platform, wang) + cards_of(platform, zhao)
    with statements(platform) as sent:
        enrolled = enrol_cards(platform=platform, issuer=boc, card_ids=card_ids)
    assert [w.card.id for w in enrolled] == card_ids
    assert [w.user_id for w in enrolled] == [li.user_id, li.user_id, wang.user_id, zhao.user_id]
    assert [w.is_default for w in enrolled] == [True, False, True, False]
    assert {w.issuer_code for w in enrolled} == {"BOC"}
    assert len({w.token for w in enrolled} | {in_app.token}) == 5
    for one in enrolled:  # built from what was written: the same as a read
        assert one == get_wallet_card(platform=platform, user_id=one.user_id, wallet_card_id=one.id)
    assert list_wallet_cards(platform=platform, user_id=zhao.user_id) == [
        in_app,
        enrolled[3],
    ]
    for person in (li, wang, zhao):
        user = get_user(platform=platform, user_id=person.user_id)
        assert user is not None
        assert user.real_name_verified
    bindings = rows(platform, wallet_bindings)
    assert [(b.channel, b.status) for b in bindings] == [("app", "confirmed")] + [
        ("issuer", "confirmed")
    ] * 4
    # One statement per step, however many cards: reads, the holders' lock, the writes.
    more = [cards_of(platform, holder(platform, 10 + n))[0] for n in range(12)]
    with statements(platform) as many:
        enrol_cards(platform=platform, issuer=boc, card_ids=more)
    assert len(many) == len(sent) <= 10, many


def test_enrolling_again_changes_nothing(service_platform):
    platform = service_platform
    boc = institution(platform, "BOC")
    li = holder(platform, 1)
    card_ids = cards_of(platform, li, 2)
    first = enrol_cards(platform=platform, issuer=boc, card_ids=card_ids)
    # The same file again, and a card twice in one batch: the wallet cards they are.
    again = enrol_cards(
        platform=platform, issuer=boc, card_ids=[card_ids[1], card_ids[0], card_ids[1]]
    )
    assert again == [first[1], first[0], first[1]]
    assert len(rows(platform, wallet_cards)) == 2
    assert len(rows(platform, wallet_bindings)) == 2
    # A card bound in the app is returned too, not bound twice.
    number = generate_card_number("621661").reveal()
    [issued] = issue_cards(
        platform=platform,
        issuer=boc,
        requests=[
            CardIssue(
                card=CardNumber.parse(number),
                expiry="3012",
                holder_name=li.name,
                holder_id_number=li.id_number,
                phone=li.phone,
            )
        ],
    )
    in_app = bind_in_app(platform, li, number)
    assert enrol_cards(platform=platform, issuer=boc, card_ids=[issued.card.id]) == [in_app]


def refusal_cases(platform: Platform) -> list[tuple[str, list[int], str]]:
    """(name, card ids whose third is refused, code)."""
    li = holder(platform, 1)
    good = cards_of(platform, li, 2)
    nobody = Holder(0, "13999999999", "Nobody", "11010119900101999X")
    closed = cards_of(platform, li)[0]
    set_card_status(platform=platform, card_id=closed, status=CardStatus.CLOSED)
    crowded = holder(platform, 2, "Wang Fang")
    full = cards_of(platform, crowded, CARDS_MAX - 1)
    enrol_cards(platform=platform, issuer=institution(platform, "BOC"), card_ids=full)
    return [
        ("no_such_card", [*good, 999_999], "not_found"),
        ("another_issuers_card", [*good, *cards_of(platform, li, bank="ICBC", prefix="622202")],
         "not_found"),
        ("expired", [*good, *cards_of(platform, li, expiry="2601")], "card_expired"),
        ("closed", [*good, closed], "card_closed"),
        ("no_wallet_with_its_phone", [*good, *cards_of(platform, nobody)], "wallet_not_found"),
        ("another_holder", [*good, *cards_of(platform, li, holder_name="Li Wen")],
         "real_name_mismatch"),
        ("sixteenth_card", [*cards_of(platform, crowded, 2), good[0]], "too_many_cards"),
    ]  # fmt: skip


def test_a_refused_card_refuses_the_batch_and_writes_nothing(service_platform):
    platform = service_platform
    boc = institution(platform, "BOC")
    for name, card_ids, code in refusal_cases(platform):
        before = (rows(platform, wallet_cards), rows(platform, wallet_bindings))
        versions = rows(platform, wallet_users)
        with pytest.raises(WalletError) as refused:
            enrol_cards(platform=platform, issuer=boc, card_ids=card_ids)
        index = 1 if name == "sixteenth_card" else 2
        assert (refused.value.code, refused.value.index) == (code, index), name
        assert str(refused.value).startswith(f"card_ids[{index}]: "), name
        assert (rows(platform, wallet_cards), rows(platform, wallet_bindings)) == before, name
        assert rows(platform, wallet_users) == versions, name  # not even the lock's bump


def test_a_batch_has_a_limit(service_platform):
    platform = service_platform
    with pytest.raises(WalletError) as refused:
        enrol_cards(
            platform=platform,
            issuer=institution(platform, "BOC"),
            card_ids=[1] * (ENROL_BATCH_MAX + 1),
        )
    assert refused.value.code == "batch_too_large"
    assert enrol_cards(platform=platform, issuer=institution(platform, "BOC"), card_ids=[]) == []


def test_an_enrolment_and_a_binding_cannot_both_take_the_fifteenth_place(service_platform):
    platform = service_platform
    boc = institution(platform, "BOC")
    li = holder(platform, 1)
    enrol_cards(platform=platform, issuer=boc, card_ids=cards_of(platform, li, 14))
    number = generate_card_number("621661").reveal()
    issue_cards(
        platform=platform,
        issuer=boc,
        requests=[
            CardIssue(
                card=CardNumber.parse(number),
                expiry="3012",
                holder_name=li.name,
                holder_id_number=li.id_number,
                phone=li.phone,
            )
        ],
    )
    binding = start_binding(
        platform=platform,
        user_id=li.user_id,
        card_number=CardNumber.parse(number),
        expiry="12/30",
    )
    otp = platform.notifier.last_code("card_binding", str(binding.id))
    pushed = cards_of(platform, li)
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def confirm() -> None:
        start.wait()
        try:
            confirm_binding(platform=platform, user_id=li.user_id, binding_id=binding.id, otp=otp)
            outcomes["app"] = "bound"
        except WalletError as exc:
            outcomes["app"] = exc.code

    def enrol() -> None:
        start.wait()
        try:
            enrol_cards(platform=platform, issuer=boc, card_ids=pushed)
            outcomes["issuer"] = "bound"
        except WalletError as exc:
            outcomes["issuer"] = exc.code

    threads = [threading.Thread(target=confirm), threading.Thread(target=enrol)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["bound", "too_many_cards"], outcomes
    assert len(list_wallet_cards(platform=platform, user_id=li.user_id)) == CARDS_MAX
