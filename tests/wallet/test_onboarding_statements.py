"""Onboarding a user and binding a card cost a fixed, small number of SQL statements — the
budget that lets an operator bring thousands of users on board through the same services (issue
7) — and what ``confirm_binding`` returns without reading it back is what a read gives."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from flashpay.cards.numbers import generate_card_number
from flashpay.cards.service import CardIssue, issue_cards
from flashpay.institutions.service import get_institution
from flashpay.passwords import DEMO_PASSWORD_POLICY
from flashpay.platform import Platform
from flashpay.wallet.binding import confirm_binding, start_binding
from flashpay.wallet.cards import get_wallet_card, list_wallet_cards
from flashpay.wallet.pin import set_pin
from flashpay.wallet.registration import User, get_user, register

PASSWORD = "correct horse battery"
ID_NUMBER = "11010119900101001X"
PHONE = "13800000001"


@contextmanager
def statements(platform: Platform) -> Iterator[list[str]]:
    """The SQL statements ``platform`` sends while the block runs."""
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    sa.event.listen(platform.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(platform.engine, "before_cursor_execute", record)


def test_the_statements_of_onboarding(service_platform):
    platform = dataclasses.replace(service_platform, password_policy=DEMO_PASSWORD_POLICY)
    boc = get_institution(platform=platform, code="BOC")
    assert boc is not None
    numbers = [generate_card_number("621661") for _ in range(3)]
    issue_cards(
        platform=platform,
        issuer=boc,
        requests=[
            CardIssue(n, "3012", "Li Wei", ID_NUMBER, PHONE, opening_balance=100) for n in numbers
        ],
    )
    with statements(platform) as sent:
        user = register(
            platform=platform, phone=PHONE, name="Li Wei", id_number=ID_NUMBER, password=PASSWORD
        )
    assert len(sent) == 1, sent
    with statements(platform) as sent:
        set_pin(platform=platform, user_id=user.id, pin="135790", password=PASSWORD)
    # The password's hash, its attempt counter locked and read, then charged, then cleared (the
    # password was right), and the PIN's hash.
    assert len(sent) == 5, sent
    bound = []
    for n, number in enumerate(numbers):
        with statements(platform) as sent:
            binding = start_binding(
                platform=platform, user_id=user.id, card_number=number, expiry="12/30"
            )
        # One read per owner for the checks (the BIN from institutions, the card from cards,
        # the real name and the room from the wallet), the day's counts of starts, the binding,
        # its code's hash.
        assert len(sent) == 6, sent
        otp = platform.notifier.last_code("card_binding", str(binding.id))  # type: ignore[attr-defined]
        with statements(platform) as sent:
            card = confirm_binding(
                platform=platform, user_id=user.id, binding_id=binding.id, otp=otp
            )
        # The user's row lock, the wallet's read, the binding, the card (from cards), its
        # issuer and the network's token BIN (from institutions), the token, the wallet card —
        # and, for the first card only, the real-name flag.
        assert len(sent) == (9 if n == 0 else 8), sent
        assert card == get_wallet_card(platform=platform, user_id=user.id, wallet_card_id=card.id)
        assert card.is_default == (n == 0)
        bound.append(card)
    with statements(platform) as sent:
        listed = list_wallet_cards(platform=platform, user_id=user.id)
    # The wallet's rows, their card records and the issuers: one query each, whatever the count.
    assert len(sent) == 3, sent
    assert listed == bound
    assert get_user(platform=platform, user_id=user.id) == User(
        user.id, PHONE, "Li Wei", real_name_verified=True, pin_set=True
    )
