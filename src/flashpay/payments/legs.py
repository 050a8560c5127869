"""The ledger side of every payment kind: the legs of a chain, their ids, and posting them.

- a purchase (scan-to-pay, payment codes, a hold's capture, a refund's reversal): the six
  linked legs of ARCHITECTURE.md §4 with the MDR split of the merchant's scene
  (``purchase_legs``), zero legs left out (``chain_of``);
- a discounted purchase: the six legs for the full amount, and per funder's share of the
  discount up to three legs that carry it from the funder's ``promotion_expense`` through the
  network to the card (``discount_legs``, decision 0019), in one chain (``priced_chain``);
- a P2P transfer: one posting within a bank, three across banks (``transfer_chain``).

Ledger ids derive from the record's id (``ledger_ids``, ``transfer_ledger_ids``), so a retry
can never post twice; ``post_chains`` posts a batch's chains in as few ledger calls as the
ledger's batch size allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flashpay.cards.service import Card
from flashpay.errors import invariant
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.service import institution_code, network_code
from flashpay.ledger import BATCH_EVENTS_MAX, CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id
from flashpay.merchants.fees import FeeSplit
from flashpay.merchants.service import Merchant
from flashpay.payments.attempts import Payment
from flashpay.payments.plans import Share
from flashpay.payments.receipts import chain_timestamp
from flashpay.platform import Platform


def purchase_legs(
    platform: Platform, card: Card, merchant: Merchant, amount: int
) -> list[tuple[int, int, int]]:
    """(debit, credit, amount) of the six §4 legs for ``amount``, zero legs included."""
    fees: FeeSplit = merchant.fees
    interchange, network_fee, acquirer_income, merchant_net = fees.split(amount)
    issuer = institution_code(platform=platform, institution_id=card.issuer_id)
    acquirer = institution_code(platform=platform, institution_id=merchant.acquirer_id)
    network = network_code(platform=platform)
    a = AccountCode
    card_account = card.ledger_account_id
    to_network = amount - interchange
    receivable = institution_account_id(network, a.ISSUER_RECEIVABLE, issuer)
    acquirer_receivable = institution_account_id(acquirer, a.ACQUIRER_NETWORK_RECEIVABLE)
    return [
        (card_account, institution_account_id(issuer, a.INTERCHANGE_INCOME), interchange),
        (card_account, institution_account_id(issuer, a.NETWORK_PAYABLE), to_network),
        (receivable, institution_account_id(network, a.ACQUIRER_PAYABLE, acquirer),
         to_network - network_fee),
        (receivable, institution_account_id(network, a.FEE_INCOME), network_fee),
        (acquirer_receivable, merchant.ledger_account_id, merchant_net),
        (acquirer_receivable, institution_account_id(acquirer, a.MDR_INCOME), acquirer_income),
    ]  # fmt: skip


Leg = tuple[int, int, int]  # (debit account, credit account, amount)
DISCOUNT_SLOTS = 3  # ledger ids per share of a discount: to the card, the network, the funder


def discount_legs(
    platform: Platform, card: Card, merchant: Merchant, share: Share, amount: int
) -> list[Leg]:
    """The three legs (zero ones included) that pay ``amount`` of a discount from ``share``'s
    funder to the card, through the network, each institution's books balanced on their own:

    - the card's issuer credits the card from its ``promotion_expense`` when it funds the
      campaign itself, else from its ``network_receivable`` (the network owes it the discount);
    - the network credits that issuer's ``issuer_payable`` (the mirror of the issuer's
      ``network_receivable``) from its ``promotion_expense``, or from what it owes the funder:
      another issuer's ``issuer_receivable``, the acquirer's ``acquirer_payable``;
    - the funder pays: another issuer from its ``promotion_expense`` to its
      ``network_payable``; an acquirer from its ``promotion_expense`` to its
      ``network_receivable`` (the network owes it less); a merchant from its own account at its
      acquirer (``merchant_payable``: the merchant is credited the full amount less MDR by the
      purchase legs and pays its discount back in the same chain).
    """
    a = AccountCode
    issuer = institution_code(platform=platform, institution_id=card.issuer_id)
    network = network_code(platform=platform)
    kind, funder_id = share.funder_kind, share.funder_id
    if kind == "issuer" and funder_id == card.issuer_id:
        return [(institution_account_id(issuer, a.PROMOTION_EXPENSE), card.ledger_account_id,
                 amount), (0, 0, 0), (0, 0, 0)]  # fmt: skip
    to_card = (institution_account_id(issuer, a.NETWORK_RECEIVABLE), card.ledger_account_id, amount)
    payable = institution_account_id(network, a.ISSUER_PAYABLE, issuer)
    if kind == "network":
        source = institution_account_id(network, a.PROMOTION_EXPENSE)
        return [to_card, (source, payable, amount), (0, 0, 0)]
    if kind == "issuer":
        other = institution_code(platform=platform, institution_id=funder_id)
        return [
            to_card,
            (institution_account_id(network, a.ISSUER_RECEIVABLE, other), payable, amount),
            (institution_account_id(other, a.PROMOTION_EXPENSE),
             institution_account_id(other, a.NETWORK_PAYABLE), amount),
        ]  # fmt: skip
    acquirer_id = funder_id if kind == "acquirer" else merchant.acquirer_id
    invariant(
        kind == "acquirer" or (kind == "merchant" and funder_id == merchant.id),
        f"a {kind} funder {funder_id} cannot fund a payment to merchant {merchant.id}",
    )
    acquirer = institution_code(platform=platform, institution_id=acquirer_id)
    source = (
        institution_account_id(acquirer, a.PROMOTION_EXPENSE)
        if kind == "acquirer"
        else merchant.ledger_account_id
    )
    return [
        to_card,
        (institution_account_id(network, a.ACQUIRER_PAYABLE, acquirer), payable, amount),
        (source, institution_account_id(acquirer, a.ACQUIRER_NETWORK_RECEIVABLE), amount),
    ]


def priced_chain(
    purchase: Sequence[Leg],
    discounts: Sequence[tuple[Share, Sequence[Leg]]],
    ids: Sequence[int],
    code: TransferCode,
    payment_id: int,
    *,
    refund: bool = False,
) -> list[Transfer]:
    """One linked chain of the purchase legs (ids 0–5) and each share's discount legs (ids
    ``6 + 3·k + j``), zero legs left out, in an order that never overdraws on the way:

    - a purchase credits the card with the discount first (so a debit card holding just the
      amount less the discount pays), then the six legs, then the network's and the funder's
      legs (after the merchant's credit: a merchant-funded discount is paid from it);
    - a refund (``refund``: the legs given are already reversed) first reverses the six legs
      (the card is credited), then the discount legs.

    The legs that credit (or, reversed, debit) the card carry ``TransferCode.PROMOTION`` — the
    audit-log leaf's discount is their sum — the network's and the funder's legs
    ``PROMOTION_FUNDING``; every discount leg carries its campaign id in ``user_data_32``."""
    invariant(len(ids) >= 6 + DISCOUNT_SLOTS * len(discounts), "too few ledger ids")
    placed: list[tuple[int, Leg, TransferCode, int]] = []  # (id slot, leg, code, campaign)
    cards = [(6 + DISCOUNT_SLOTS * k, legs[0], TransferCode.PROMOTION, s.campaign_id)
             for k, (s, legs) in enumerate(discounts)]  # fmt: skip
    rest = [
        (6 + DISCOUNT_SLOTS * k + j, legs[j], TransferCode.PROMOTION_FUNDING, s.campaign_id)
        for k, (s, legs) in enumerate(discounts)
        for j in range(1, DISCOUNT_SLOTS)
    ]
    own = [(n, leg, code, 0) for n, leg in enumerate(purchase)]
    placed = own + cards + rest if refund else cards + own + rest
    kept = [item for item in placed if item[1][2] > 0]
    out = []
    for i, (slot, (debit, credit, amount), leg_code, campaign) in enumerate(kept):
        link = TransferFlags.LINKED if i < len(kept) - 1 else TransferFlags.NONE
        out.append(
            Transfer(ids[slot], debit, credit, amount, LEDGER_CNY, leg_code, flags=link,
                     user_data_32=campaign, user_data_64=payment_id)
        )  # fmt: skip
    return out


def chain_of(
    legs: list[tuple[int, int, int]],
    ids: list[int],
    code: TransferCode,
    payment_id: int,
    *,
    flags: TransferFlags = TransferFlags.NONE,
    timeout: int = 0,
    linked_tail: bool = False,
) -> list[Transfer]:
    kept = [(n, leg) for n, leg in enumerate(legs) if leg[2] > 0]
    out = []
    for i, (n, (debit, credit, amount)) in enumerate(kept):
        last = i == len(kept) - 1
        link = TransferFlags.LINKED if (not last or linked_tail) else TransferFlags.NONE
        out.append(
            Transfer(
                ids[n],
                debit,
                credit,
                amount,
                LEDGER_CNY,
                code,
                flags=flags | link,
                timeout_seconds=timeout,
                user_data_64=payment_id,
            )
        )
    return out


def ledger_ids(payment_id: int, what: str, count: int = 6) -> list[int]:
    """The ledger ids of one of a payment's chains: six for the purchase legs, and
    ``DISCOUNT_SLOTS`` more per share of a discount (the first six do not depend on ``count``,
    so a fence on them covers a discounted chain too)."""
    return [derive_id("flashpay.payment", f"{payment_id}:{what}:{n}") for n in range(count)]


def chain_id(platform: Platform, payment: Payment) -> int | None:
    """The ledger chain that paid the merchant (the audit log's key: the timestamp of the
    chain's first transfer), ``None`` before anything was posted."""
    what = "void" if payment.two_phase else "purchase"
    # A discounted chain opens with its discount legs (``priced_chain``): their ids count too,
    # or the key would be a later leg's timestamp and the receipt never find its checkpoint.
    count = 6 + DISCOUNT_SLOTS * len(payment.promotions)
    return chain_timestamp(platform, ledger_ids(payment.id, what, count))


def transfer_chain(
    platform: Platform, transfer_id: int, amount: int, sender: Card, receiver: Card
) -> list[Transfer]:
    ids = transfer_ledger_ids(transfer_id)
    code = TransferCode.P2P
    if sender.issuer_id == receiver.issuer_id:
        return [
            Transfer(ids[0], sender.ledger_account_id, receiver.ledger_account_id, amount,
                     LEDGER_CNY, code, user_data_64=transfer_id)
        ]  # fmt: skip
    sending = institution_code(platform=platform, institution_id=sender.issuer_id)
    receiving = institution_code(platform=platform, institution_id=receiver.issuer_id)
    network = network_code(platform=platform)
    legs = [
        (sender.ledger_account_id, institution_account_id(sending, AccountCode.NETWORK_PAYABLE)),
        (
            institution_account_id(network, AccountCode.ISSUER_RECEIVABLE, sending),
            institution_account_id(network, AccountCode.ISSUER_PAYABLE, receiving),
        ),
        (
            institution_account_id(receiving, AccountCode.NETWORK_RECEIVABLE),
            receiver.ledger_account_id,
        ),
    ]
    return [
        Transfer(ids[n], debit, credit, amount, LEDGER_CNY, code,
                 flags=TransferFlags.LINKED if n < 2 else TransferFlags.NONE,
                 user_data_64=transfer_id)
        for n, (debit, credit) in enumerate(legs)
    ]  # fmt: skip


def transfer_ledger_ids(transfer_id: int) -> list[int]:
    """The ledger ids a transfer's chain uses: the first (the only one, same bank), then two."""
    return [first_posting_id(transfer_id)] + [
        derive_id("flashpay.p2p", f"{transfer_id}:{leg}") for leg in (1, 2)
    ]


def first_posting_id(transfer_id: int) -> int:
    return derive_id("flashpay.p2p", f"{transfer_id}:0")


def ledger_chain_id(*, platform: Platform, transfer_id: int) -> int | None:
    """The ledger chain of a posted transfer (the audit log's key: the timestamp the ledger gave
    its first posting), ``None`` if nothing was posted."""
    return chain_timestamp(platform, [first_posting_id(transfer_id)])


def ledger_calls(chains: Sequence[Sequence[Transfer]], events_max: int) -> list[list[int]]:
    """The chains (by index) of each ledger call: in order, whole chains, at most
    ``events_max`` events per call."""
    calls: list[list[int]] = []
    events = events_max
    for n, chain in enumerate(chains):
        if events + len(chain) > events_max:
            calls.append([])
            events = 0
        calls[-1].append(n)
        events += len(chain)
    return calls


def post_chains(
    platform: Platform, chains: Sequence[Sequence[Transfer]], commitments: Mapping[int, bytes]
) -> list[list[CreateTransferResult]]:
    """Each chain's results, in as few ledger calls as the ledger's batch size allows (a chain
    is never split across two); ``commitments`` by each chain's first transfer id."""
    results: list[list[CreateTransferResult]] = []
    for call in ledger_calls(chains, BATCH_EVENTS_MAX):
        posted = platform.ledger.create_transfers(
            [t for n in call for t in chains[n]],
            commitments={chains[n][0].id: commitments[chains[n][0].id] for n in call},
        )
        start = 0
        for n in call:
            results.append(list(posted[start : start + len(chains[n])]))
            start += len(chains[n])
    return results


_HELD = (CreateTransferResult.OK, CreateTransferResult.EXISTS)  # the ledger holds the transfer


def chain_refusal(results: Sequence[CreateTransferResult]) -> CreateTransferResult | None:
    """The ledger's answer that refused a chain (its first result that is not the echo of a
    linked event's failure), ``None`` when the ledger holds the chain (posted now or before)."""
    # one pass, no generators: this runs for every chain of every payment
    linked = None
    for r in results:
        if r is CreateTransferResult.LINKED_EVENT_FAILED:
            linked = r
        elif r not in _HELD:
            return r
    return linked  # only echoes (a ledger always names the cause, so not seen): still refused
