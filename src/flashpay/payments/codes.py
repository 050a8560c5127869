"""Payment codes (CPM): issuing the one-time codes a user shows at a terminal.

Each code is the next counter (ATC) of its card's network token, recorded so the network can
find its numeric form and refuse a second use (the claim is in ``unit_of_work``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite

from flashpay.clock import NS_PER_SECOND
from flashpay.institutions.definition import CardType
from flashpay.payments.errors import (
    PaymentError,
    PaymentRefusal,
)
from flashpay.payments.models import (
    payment_codes,
    token_counters,
)
from flashpay.payments.payer import Payer, payers
from flashpay.platform import Platform
from flashpay.qr import payment_codes as codes


def issue_codes(
    *, platform: Platform, requests: Sequence[tuple[int, int]]
) -> list[codes.IssuedCode | PaymentError]:
    """One-time payment codes (valid 60 s) for a batch of (user id, wallet card id): each the
    next counter of its card's token, recorded so the network can find its numeric form and
    refuse a second use — one transaction and two statements for the batch. A card that is not
    in the user's wallet answers a 404 ``PaymentError`` in its place."""
    by_card, _ = payers(platform=platform, wallet_card_ids={card for _, card in requests})
    owners: list[Payer | None] = []
    wanted: Counter[str] = Counter()
    for user_id, wallet_card_id in requests:
        payer = by_card.get(wallet_card_id)
        if payer is not None and payer.user_id != user_id:
            payer = None
        owners.append(payer)
        if payer is not None:
            wanted[payer.token] += 1
    now_s = platform.clock.now_ns() // NS_PER_SECOND
    answers: list[codes.IssuedCode | PaymentError] = []
    rows = []
    with platform.engine.begin() as connection:
        # Each token's counter moves once by its count in the batch (a token appears once per
        # statement: an upsert may not touch a row twice); its codes take the values before.
        insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert
        atc: dict[str, int] = {}
        if wanted:
            statement = insert(token_counters)
            statement = statement.on_conflict_do_update(
                index_elements=[token_counters.c.token],
                set_={"atc": token_counters.c.atc + statement.excluded.atc},
            ).returning(token_counters.c.token, token_counters.c.atc)
            # executemany of one cached statement (SQLAlchemy's insertmanyvalues), not a
            # multi-row VALUES that would be compiled anew for every batch size.
            counted = [{"token": t, "atc": n} for t, n in sorted(wanted.items())]
            for token, last in connection.execute(statement, counted):
                atc[str(token)] = int(last) - wanted[str(token)]
        for (user_id, wallet_card_id), payer in zip(requests, owners, strict=True):
            if payer is None:
                answers.append(
                    PaymentError(PaymentRefusal.NOT_FOUND, "no such card in this wallet")
                )
                continue
            atc[payer.token] += 1
            issued = codes.issue_payment_code(
                token=payer.token,
                token_expiry=payer.card.expiry,
                key=codes.token_key(platform.keys.payment_code_master, payer.token),
                lookup_key=platform.keys.payment_code_lookup,
                atc=atc[payer.token] % 0x10000,
                now_s=now_s,
                credit=payer.card.card_type is CardType.CREDIT,
            )
            answers.append(issued)
            rows.append({
                "token": payer.token, "atc": issued.code.atc, "numeric": issued.numeric,
                "user_id": user_id, "wallet_card_id": wallet_card_id, "issued_at": now_s,
                "key_version": 1, "unpredictable": issued.code.unpredictable_number,
                "cryptogram": issued.code.cryptogram,
                "credit": issued.code.aid == codes.AID_CREDIT, "used_at_ns": None,
                "payment_id": None,
            })  # fmt: skip
        if rows:
            connection.execute(payment_codes.insert(), rows)
    return answers


def issue_code(*, platform: Platform, user_id: int, wallet_card_id: int) -> codes.IssuedCode:
    """One payment code (a batch of one; see ``issue_codes``)."""
    [answer] = issue_codes(platform=platform, requests=[(user_id, wallet_card_id)])
    if isinstance(answer, PaymentError):
        raise answer
    return answer
