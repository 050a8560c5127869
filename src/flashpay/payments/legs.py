"""The ledger side of every payment kind: the legs of a chain, their ids, and posting them.

- a purchase (scan-to-pay, payment codes, a hold's capture, a refund's reversal): the six
  linked legs of ARCHITECTURE.md §4 with the MDR split of the merchant's scene
  (``purchase_legs``), zero legs left out (``chain_of``);
- a P2P transfer: one posting within a bank, three across banks (``transfer_chain``).

Ledger ids derive from the record's id (``ledger_ids``, ``transfer_ledger_ids``), so a retry
can never post twice; ``post_chains`` posts a batch's chains in as few ledger calls as the
ledger's batch size allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flashpay.cards.service import Card
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
    return [derive_id("flashpay.payment", f"{payment_id}:{what}:{n}") for n in range(count)]


def chain_id(platform: Platform, payment: Payment) -> int | None:
    """The ledger chain that paid the merchant (the audit log's key: the timestamp of the
    chain's first transfer), ``None`` before anything was posted."""
    what = "void" if payment.two_phase else "purchase"
    return chain_timestamp(platform, ledger_ids(payment.id, what))


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


def chain_refusal(results: Sequence[CreateTransferResult]) -> CreateTransferResult | None:
    """The ledger's answer that refused a chain (its first result that is not the echo of a
    linked event's failure), ``None`` when the ledger holds the chain (posted now or before)."""
    if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        return None
    return next(r for r in results if r is not CreateTransferResult.LINKED_EVENT_FAILED)
