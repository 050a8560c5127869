"""``issue_cards``: an issuer's card file recorded in one go, on SQLite and PostgreSQL.

Every request is validated first; then one ledger batch opens the accounts, one posts the opening
deposits and one transaction inserts the records. All or nothing: a refusal names the request's
index and nothing of the batch is written. Idempotent for the same number and details, like
``issue_card`` (a batch of one).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber, generate_card_number
from flashpay.cards.service import (
    ISSUE_BATCH_MAX,
    CardError,
    CardIssue,
    card_balance,
    compute_cvv,
    find_card,
    get_card,
    issue_card,
    issue_cards,
)
from flashpay.institutions.definition import CardType
from flashpay.institutions.service import Institution, get_institution
from flashpay.ledger import Ledger
from flashpay.ledger.ids import derive_id
from flashpay.platform import Platform

PHONE = "13800000001"
ID_NUMBER = "11010119900101001X"


def boc(platform: Platform) -> Institution:
    found = get_institution(platform=platform, code="BOC")
    assert found is not None
    return found


def card(prefix: str = "621661", **terms: Any) -> CardIssue:
    """A request for a fresh number in ``prefix``: a ¥100.00 debit card unless told."""
    fields: dict[str, Any] = {
        "card": generate_card_number(prefix),
        "expiry": "3012",
        "holder_name": "Li Wei",
        "holder_id_number": ID_NUMBER,
        "phone": PHONE,
        "opening_balance": 100_00,
    }
    fields.update(terms)
    return CardIssue(**fields)


def credit(prefix: str = "625907", limit: int = 8_000_00) -> CardIssue:
    return card(prefix, credit_limit=limit, opening_balance=0)


class CountingLedger:
    """The real ledger, counting the calls that write (a seam, not a mock: everything runs)."""

    def __init__(self, ledger: Ledger, *, crash_after_deposits: bool = False) -> None:
        self.ledger = ledger
        self.calls: Counter[str] = Counter()
        self.crash_after_deposits = crash_after_deposits

    def create_accounts(self, accounts: Sequence[Any]) -> Any:
        self.calls["create_accounts"] += 1
        return self.ledger.create_accounts(accounts)

    def create_transfers(self, transfers: Sequence[Any], **kwargs: Any) -> Any:
        self.calls["create_transfers"] += 1
        results = self.ledger.create_transfers(transfers, **kwargs)
        if self.crash_after_deposits:
            raise RuntimeError("the process died after the ledger posted")
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def counting(platform: Platform, **options: Any) -> tuple[Platform, CountingLedger]:
    ledger = CountingLedger(platform.ledger, **options)
    return dataclasses.replace(platform, ledger=ledger), ledger  # type: ignore[arg-type]


def recorded_cards(platform: Platform) -> int:
    with platform.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(cards)).scalar_one())


def written(platform: Platform, requests: Sequence[CardIssue]) -> list[str]:
    """Which of ``requests`` left a trace: a card record or a ledger account."""
    traces = []
    for n, request in enumerate(requests):
        if find_card(platform=platform, card=request.card) is not None:
            traces.append(f"{n}: card")
    accounts = platform.ledger.lookup_accounts(
        [_account_id(platform, request.card) for request in requests]
    )
    traces += [f"account {a.id}" for a in accounts]
    return traces


def _account_id(platform: Platform, number: CardNumber) -> int:
    """The card's ledger account id, derived from its fingerprint as ``issue_cards`` does."""
    return derive_id(
        "flashpay.card-account", platform.keys.fingerprint("pan", number.reveal()).hex()
    )


def test_a_card_file_is_recorded_with_one_ledger_batch_each(service_platform):
    platform, ledger = counting(service_platform)
    requests = [
        card(opening_balance=250_00),
        credit(limit=8_000_00),
        card("621785", opening_balance=0),  # another BOC debit range, an empty account
        card("6259070", credit_limit=500_00, opening_balance=0, statement_day=5),  # longest BIN
        card(opening_balance=1),
    ]
    issued = issue_cards(platform=platform, issuer=boc(platform), requests=requests)
    assert ledger.calls == {"create_accounts": 1, "create_transfers": 1}
    assert [i.card.masked for i in issued] == [r.card.masked for r in requests]
    assert [i.card.card_type for i in issued] == [
        CardType.DEBIT,
        CardType.CREDIT,
        CardType.DEBIT,
        CardType.CREDIT,
        CardType.DEBIT,
    ]
    assert len({i.card.id for i in issued}) == len(requests)
    for request, one in zip(requests, issued, strict=True):
        assert one.cvv == compute_cvv(platform, request.card, request.expiry)
        # Built from what was written, not read back — and the same as a read.
        assert get_card(platform=platform, card_id=one.card.id) == one.card
        balance = card_balance(platform=platform, card=one.card)
        if one.card.card_type is CardType.DEBIT:
            assert balance.available == request.opening_balance
        else:
            assert (balance.credit_limit, balance.available) == (request.credit_limit,) * 2
    assert issued[3].card.statement_day == 5
    # The same file again: the same cards, nothing opened or deposited twice.
    again = issue_cards(platform=platform, issuer=boc(platform), requests=requests)
    assert again == issued
    assert ledger.calls["create_transfers"] == 1  # nothing left to deposit: no ledger call
    assert card_balance(platform=platform, card=issued[0].card).available == 250_00
    assert recorded_cards(platform) == len(requests)


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (lambda: card("411111"), "unknown_bin"),
        (lambda: card("623123"), "unknown_bin"),  # the network's token BIN is no issuer's
        (lambda: card("622202"), "bin_not_yours"),  # ICBC's
        (lambda: credit(limit=0), "invalid_credit_limit"),
        (lambda: card(credit_limit=10_00), "invalid_amount"),
        (lambda: card(opening_balance=-1), "invalid_amount"),
        (lambda: card("625907", credit_limit=10_00, opening_balance=5_00), "invalid_amount"),
    ],
    ids=[
        "unknown_bin",
        "token_bin",
        "another_issuers_bin",
        "credit_without_limit",
        "debit_with_limit",
        "negative_balance",
        "credit_with_balance",
    ],
)
def test_one_bad_request_refuses_the_whole_batch(service_platform, bad, code):
    platform = service_platform
    requests = [card(), credit(), bad(), card()]
    with pytest.raises(CardError) as refused:
        issue_cards(platform=platform, issuer=boc(platform), requests=requests)
    assert (refused.value.code, refused.value.index) == (code, 2)
    assert str(refused.value).startswith("requests[2]: ")
    assert written(platform, requests) == []
    # Without it, the rest goes through.
    good = [requests[0], requests[1], requests[3]]
    assert len(issue_cards(platform=platform, issuer=boc(platform), requests=good)) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"expiry": "3011"},
        {"phone": "13912340000"},
        {"opening_balance": 251_00},
        {"opening_balance": 0},  # recorded with a deposit: another opening balance
    ],
    ids=["expiry", "phone", "opening_balance", "no_opening_balance"],
)
def test_a_known_number_with_other_terms_refuses_the_batch_before_any_write(
    service_platform, change
):
    platform = service_platform
    known = card(opening_balance=250_00)
    [first] = issue_cards(platform=platform, issuer=boc(platform), requests=[known])
    fresh = card()
    requests = [fresh, dataclasses.replace(known, **change)]
    with pytest.raises(CardError) as refused:
        issue_cards(platform=platform, issuer=boc(platform), requests=requests)
    assert (refused.value.code, refused.value.index) == ("card_exists", 1)
    assert written(platform, [fresh]) == []  # the good request was not written either
    assert card_balance(platform=platform, card=first.card).available == 250_00


def test_a_credit_line_or_an_empty_deposit_cannot_be_re_recorded_with_other_money(
    service_platform,
):
    platform = service_platform
    line = credit(limit=800_00)
    empty = card(opening_balance=0)
    [line_card, empty_card] = issue_cards(
        platform=platform, issuer=boc(platform), requests=[line, empty]
    )
    for changed in (
        dataclasses.replace(line, credit_limit=900_00),
        # Recording the number again must not be a way to put money on a card.
        dataclasses.replace(empty, opening_balance=250_00),
    ):
        with pytest.raises(CardError) as refused:
            issue_cards(platform=platform, issuer=boc(platform), requests=[changed])
        assert (refused.value.code, refused.value.index) == ("card_exists", 0)
    assert card_balance(platform=platform, card=line_card.card).credit_limit == 800_00
    assert card_balance(platform=platform, card=empty_card.card).available == 0


def test_the_same_number_twice_in_one_batch(service_platform):
    platform = service_platform
    twice = card(opening_balance=70_00)
    one, other = issue_cards(platform=platform, issuer=boc(platform), requests=[twice, twice])
    assert one == other
    assert recorded_cards(platform) == 1
    assert card_balance(platform=platform, card=one.card).available == 70_00  # deposited once
    differing = card()
    with pytest.raises(CardError) as refused:
        issue_cards(
            platform=platform,
            issuer=boc(platform),
            requests=[differing, dataclasses.replace(differing, phone="13912340000")],
        )
    assert (refused.value.code, refused.value.index) == ("card_exists", 1)
    assert written(platform, [differing]) == []


def test_a_batch_cut_short_after_the_ledger_is_completed_by_the_retry(service_platform):
    platform = service_platform
    requests = [card(opening_balance=30_00), credit()]
    crashing, _ = counting(platform, crash_after_deposits=True)
    with pytest.raises(RuntimeError, match="died"):
        issue_cards(platform=crashing, issuer=boc(platform), requests=requests)
    assert recorded_cards(platform) == 0  # accounts and a deposit, but no card records yet
    issued = issue_cards(platform=platform, issuer=boc(platform), requests=requests)
    assert recorded_cards(platform) == 2
    assert card_balance(platform=platform, card=issued[0].card).available == 30_00  # once


def test_issue_card_is_a_batch_of_one_whose_refusal_names_no_index(service_platform):
    platform = service_platform
    request = card(opening_balance=12_34)
    single = issue_card(
        platform=platform,
        issuer=boc(platform),
        card=request.card,
        expiry=request.expiry,
        holder_name=request.holder_name,
        holder_id_number=request.holder_id_number,
        phone=request.phone,
        opening_balance=request.opening_balance,
    )
    assert issue_cards(platform=platform, issuer=boc(platform), requests=[request]) == [single]
    with pytest.raises(CardError) as refused:
        issue_card(
            platform=platform,
            issuer=boc(platform),
            card=generate_card_number("622202"),
            expiry="3012",
            holder_name="Li Wei",
            holder_id_number=ID_NUMBER,
            phone=PHONE,
        )
    assert (refused.value.code, refused.value.index) == ("bin_not_yours", None)
    assert str(refused.value) == "this BIN belongs to another issuer"


def test_a_batch_has_a_limit(service_platform):
    platform = service_platform
    request = card()
    with pytest.raises(CardError) as refused:
        issue_cards(
            platform=platform, issuer=boc(platform), requests=[request] * (ISSUE_BATCH_MAX + 1)
        )
    assert refused.value.code == "batch_too_large"
    assert written(platform, [request]) == []
    assert issue_cards(platform=platform, issuer=boc(platform), requests=[]) == []


def test_the_id_number_stays_out_of_a_request_s_repr():
    request = card()
    assert ID_NUMBER not in repr(request)
    assert request.card.reveal() not in repr(request)
