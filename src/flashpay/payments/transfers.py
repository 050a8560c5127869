"""P2P transfers: from a bound card to another wallet user (by phone) or to any card number.

One linked chain of ledger postings per transfer (``flashpay.payments.legs.transfer_chain``):
same bank, sender deposit → receiver account; cross-bank, through both issuers and the network.

One pipeline, in batches (group commit at the service level, like a switch): ``create_transfers``
takes (user, request) pairs and answers each exactly as ``create_transfer`` would have had they
come one after another, with a constant number of statements per batch — one read of the payers,
at most two of the recipients, one transaction that records every transfer with its PIN outcome,
runs the later stages (``flashpay.payments.stages``) and reserves the limits, one ledger call
(more only past ``BATCH_EVENTS_MAX`` events), and one transaction that settles the records.

"As if one after another" needs care where requests of one batch share state: a user's PIN
failures (``flashpay.payments.pins``), the daily counters (reserved in order against running
totals: ``_reserve``) and the balances (the ledger applies the chains in order). Limits and
balances interact: one after another, a transfer the ledger refuses gives its reservation back
*before* the next one reserves. So when a transfer is refused a limit that an earlier transfer of
the same round took from the same counter, the round stops there and the rest goes into the next
round, once the ledger has answered — rare, and each round is again a constant number of
statements.

Crash safety: the record is written ``created`` before anything moves; the ledger ids of the
chain derive from the transfer id; ``recover_transfers`` settles any transfer left ``created``
by a dead process, behind a fence on its ledger ids. Exactly once per Idempotency-Key: a
request's tag is bound to its transfer in the transaction that records it; a request whose key
is bound already is answered from that transfer (settled first if a crash left it ``created``).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence

import sqlalchemy as sa

from flashpay.cards.lookups import cards_by_fingerprint
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.service import (
    Card,
    cards_by_id,
    pan_fingerprint,
)
from flashpay.db import autocommit
from flashpay.errors import InvariantError, invariant
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    bind_effects,
    find_effects,
)
from flashpay.ledger import CreateTransferResult
from flashpay.ledger.ids import new_id
from flashpay.money import CNY, Money
from flashpay.payments import limits, planning
from flashpay.payments.attempts import RERUNS_MAX
from flashpay.payments.errors import PaymentError, PaymentRefusal
from flashpay.payments.legs import (
    chain_refusal,
    post_chains,
    transfer_chain,
)
from flashpay.payments.models import (
    p2p_transfers,
)
from flashpay.payments.payer import Payer, payers
from flashpay.payments.pins import (
    pin_verdicts,
)
from flashpay.payments.receipts import (
    AMOUNT_MAX,
    transfer_commitment,
    voucher,
)
from flashpay.payments.stages import (
    Plan,
    run_stages,
)
from flashpay.payments.transfer_queries import (
    get_transfer,
    settle_created,
)
from flashpay.payments.transfer_records import (
    EFFECT_KIND,
    MEMO_CHARS_MAX,
    REQUESTS_PER_BATCH_MAX,
    DeclineReason,
    P2PRequest,
    P2PTransfer,
    TransferAttempt,
    TransferOutcome,
    TransferStatus,
    settle_records,
    transfer_answer,
    transfer_row,
)
from flashpay.platform import Platform
from flashpay.wallet.payers import default_card_ids_by_phone
from flashpay.wallet.pin import PinCheck, record_pin_check
from flashpay.wallet.policy import PHONE

logger = logging.getLogger(__name__)


def _validate(request: P2PRequest) -> CardNumber | None:
    if request.amount.currency != CNY:
        raise PaymentError(PaymentRefusal.UNSUPPORTED_CURRENCY, "transfers are in CNY")
    if not Money.of(0) < request.amount <= Money.of(AMOUNT_MAX):
        raise PaymentError(PaymentRefusal.INVALID_AMOUNT, "the amount is a positive number of fen")
    if (request.to_phone is None) == (request.to_card_number is None):
        raise PaymentError(
            PaymentRefusal.INVALID_RECIPIENT, "give exactly one of to_phone and to_card_number"
        )
    if request.memo is not None and len(request.memo) > MEMO_CHARS_MAX:
        raise PaymentError(
            PaymentRefusal.INVALID_MEMO, f"a memo is at most {MEMO_CHARS_MAX} characters"
        )
    if request.to_phone is not None and not PHONE.match(request.to_phone):
        raise PaymentError(
            PaymentRefusal.INVALID_PHONE, "a mobile number is 11 digits starting with 1"
        )
    if request.to_card_number is not None:
        try:
            return CardNumber.parse(request.to_card_number)
        except CardNumberError as exc:
            raise PaymentError(PaymentRefusal.INVALID_CARD_NUMBER, str(exc)) from exc
    return None


def _recipients(
    platform: Platform, phones: Sequence[str], fingerprints: Sequence[bytes]
) -> tuple[dict[str, Card], dict[bytes, Card]]:
    """The receiving cards, in at most three queries, one per owner: a wallet user's default
    bound card by phone (the wallet's, then its card), and any issued card by the fingerprint of
    its number (nothing is decrypted)."""
    if not phones and not fingerprints:
        return {}, {}
    with autocommit(platform.engine) as connection:
        card_ids = default_card_ids_by_phone(connection, phones)
        found = cards_by_id(connection=connection, card_ids=set(card_ids.values()))
        by_fingerprint = cards_by_fingerprint(connection, fingerprints)
    by_phone = {phone: found[i] for phone, i in card_ids.items() if i in found}
    return by_phone, by_fingerprint


def create_transfers(
    *, platform: Platform, requests: Sequence[tuple[int, P2PRequest]]
) -> list[P2PTransfer | PaymentError]:
    """Run a batch of P2P transfers, each (user id, request), to their end; answered in order,
    each exactly what ``create_transfer`` would have answered had they come one after another.
    A refused money movement is a declined transfer; a malformed request (or a card that is not
    the user's) is its ``PaymentError`` in the list, with nothing recorded, and the others go on.
    Each transfer is all or nothing (its limits and its whole ledger chain).

    Statements: one read of the payers, at most two of the recipients, then per round (one,
    unless a transfer meets a limit an earlier one of the batch took: see the module docstring)
    one transaction that records the transfers, the PIN outcomes and the limit reservations,
    one ledger call per ``BATCH_EVENTS_MAX`` events, and one transaction that settles them.
    Raises ``ValueError`` above ``REQUESTS_PER_BATCH_MAX`` requests."""
    if len(requests) > REQUESTS_PER_BATCH_MAX:
        raise ValueError(f"{len(requests)} > {REQUESTS_PER_BATCH_MAX} transfers in one batch")
    for run in range(RERUNS_MAX + 1):
        try:
            return _create_transfers(platform, requests)
        except EffectConflictError:
            if run == RERUNS_MAX:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _create_transfers(
    platform: Platform, requests: Sequence[tuple[int, P2PRequest]]
) -> list[P2PTransfer | PaymentError]:
    answers: list[P2PTransfer | PaymentError | None] = [None] * len(requests)
    _answer_bound(platform, requests, answers)
    now = platform.clock.now_ns()
    attempts = _attempts(platform, requests, answers, now)
    outcomes = _run(platform, attempts, now)
    for a in attempts:
        answers[a.index] = transfer_answer(a, now, outcomes[a.transfer_id])
    out = [answer for answer in answers if answer is not None]
    invariant(len(out) == len(requests), "every request is answered")
    return out


def _answer_bound(
    platform: Platform,
    requests: Sequence[tuple[int, P2PRequest]],
    answers: list[P2PTransfer | PaymentError | None],
) -> None:
    """Answer the requests whose Idempotency-Key is bound already with their transfer (one
    read, and nothing more when no request has a key)."""
    tags = [r.idempotency for _, r in requests]
    if not any(tags):
        return
    with autocommit(platform.engine) as connection:
        bound = find_effects(connection, tags)
    if not bound:
        return
    ids: dict[int, int] = {}
    for index, tag in enumerate(tags):
        effect = bound.get(tag) if tag is not None else None
        if effect is not None:
            invariant(effect.kind == EFFECT_KIND, f"a transfer's key is bound to {effect}")
            ids[index] = effect.effect_id
    settle_created(platform=platform, transfer_ids=sorted(set(ids.values())))
    for index, transfer_id in ids.items():
        found = get_transfer(platform=platform, user_id=requests[index][0], transfer_id=transfer_id)
        invariant(found is not None, "a bound transfer is the caller's")
        answers[index] = found


def _attempts(
    platform: Platform,
    requests: Sequence[tuple[int, P2PRequest]],
    answers: list[P2PTransfer | PaymentError | None],
    now_ns: int,
) -> list[TransferAttempt]:
    """The reads and the checks that need no write, for the whole batch: the well-formed
    requests from their user's bound cards, as attempts; the others' errors go into
    ``answers``."""
    numbers: dict[int, CardNumber | None] = {}
    for index, (_, request) in enumerate(requests):
        if answers[index] is not None:
            continue  # answered from its bound transfer
        try:
            numbers[index] = _validate(request)
        except PaymentError as error:
            answers[index] = error
    found, _ = payers(
        platform=platform, wallet_card_ids={requests[i][1].from_wallet_card_id for i in numbers}
    )
    owned: list[tuple[int, Payer]] = []
    for index in numbers:
        user_id, request = requests[index]
        payer = found.get(request.from_wallet_card_id)
        if payer is None or payer.user_id != user_id:
            answers[index] = PaymentError(PaymentRefusal.NOT_FOUND, "no such card in this wallet")
        else:
            owned.append((index, payer))
    verdicts = pin_verdicts(platform, now_ns, [(p.pin, requests[i][1].pin) for i, p in owned])
    # The recipient is looked up only once the PIN is right (a wrong PIN reveals nothing).
    fingerprints: dict[int, bytes] = {}
    phones: list[str] = []
    for (index, _), (_, verdict) in zip(owned, verdicts, strict=True):
        number, phone = numbers[index], requests[index][1].to_phone
        if verdict is PinCheck.OK and phone is not None:
            phones.append(phone)
        elif verdict is PinCheck.OK and number is not None:
            fingerprints[index] = pan_fingerprint(platform, number)
    by_phone, by_fingerprint = _recipients(platform, phones, list(fingerprints.values()))
    ids = [new_id() for _ in owned]  # increasing within the process: in request order
    attempts = []
    for n, ((index, payer), (state, verdict)) in enumerate(zip(owned, verdicts, strict=True)):
        user_id, request = requests[index]
        receiver = None
        if verdict is PinCheck.OK and request.to_phone is not None:
            receiver = by_phone.get(request.to_phone)
        elif index in fingerprints:
            receiver = by_fingerprint.get(fingerprints[index])
        reason = planning.transfer_decline(payer, verdict, receiver, request.amount, now_ns)
        attempts.append(
            TransferAttempt(index, ids[n], user_id, request, numbers[index], payer, state,
                     verdict, receiver, reason, secrets.token_bytes(16))
        )  # fmt: skip
    return attempts


def create_transfer(*, platform: Platform, user_id: int, request: P2PRequest) -> P2PTransfer:
    """Run one P2P transfer to its end (a batch of one): a refused money movement is a declined
    transfer, a malformed request a ``PaymentError`` (nothing recorded)."""
    [answer] = create_transfers(platform=platform, requests=[(user_id, request)])
    if isinstance(answer, PaymentError):
        raise answer
    return answer


def _run(
    platform: Platform, attempts: Sequence[TransferAttempt], now_ns: int
) -> dict[int, TransferOutcome]:
    """Record, post and settle the attempts, in rounds (one unless ``_reserve`` stops one);
    the outcome of each by transfer id."""
    if not attempts:
        return {}
    day = limits.beijing_day(now_ns)
    outcomes = {
        a.transfer_id: TransferOutcome(TransferStatus.DECLINED, a.reason, None, now_ns)
        for a in attempts
        if a.reason is not None
    }
    pending = [a for a in attempts if a.reason is None]
    first = True
    while first or pending:
        with platform.engine.begin() as connection:
            if first:
                # Each user's PIN outcomes in request order, users in id order: concurrent
                # batches lock wallet_users rows in one order (then the counters: ``_reserve``).
                for a in sorted(attempts, key=lambda a: a.user_id):
                    record_pin_check(platform=platform, connection=connection, state=a.pin,
                                     verdict=a.verdict)  # fmt: skip
                attempts = _run_stages(connection, attempts)
                pending = [a for a in attempts if a.reason is None]
                outcomes.update({
                    a.transfer_id: TransferOutcome(TransferStatus.DECLINED, a.reason, None, now_ns)
                    for a in attempts if a.reason is not None
                })  # fmt: skip
            posting, refused, pending = _reserve(connection, day, pending)
            recorded: list[tuple[TransferAttempt, DeclineReason | None]] = [
                (a, None) for a in posting
            ]
            recorded += [(a, DeclineReason.LIMIT_EXCEEDED) for a in refused]
            if first:
                recorded += [(a, a.reason) for a in attempts if a.reason is not None]
            if recorded:
                recorded.sort(key=lambda pair: pair[0].transfer_id)
                bind_effects(connection, {
                    a.request.idempotency: Effect(EFFECT_KIND, a.transfer_id)
                    for a, _ in recorded if a.request.idempotency is not None
                }, now_ns=now_ns)  # fmt: skip
                connection.execute(
                    p2p_transfers.insert(), [transfer_row(a, now_ns, day, r) for a, r in recorded]
                )
        first = False
        for a in refused:
            outcomes[a.transfer_id] = TransferOutcome(
                TransferStatus.DECLINED, DeclineReason.LIMIT_EXCEEDED, None, now_ns
            )
        if posting:
            outcomes.update(_post(platform, posting, day))
    return outcomes


def _run_stages(
    connection: sa.Connection, attempts: Sequence[TransferAttempt]
) -> list[TransferAttempt]:
    """The later stages (``flashpay.payments.stages``) over the attempts still going; one a
    stage declines is recorded declined with its reason and reserves and posts nothing."""
    plans = [
        Plan("p2p", a.transfer_id, a.user_id, a.payer.card.id, a.amount)
        for a in attempts
        if a.reason is None
    ]
    declined = run_stages(connection, plans)
    return [
        dataclasses.replace(a, reason=DeclineReason(declined[a.transfer_id]))
        if a.transfer_id in declined
        else a
        for a in attempts
    ]


def _reserve(
    connection: sa.Connection, day: str, pending: Sequence[TransferAttempt]
) -> tuple[list[TransferAttempt], list[TransferAttempt], list[TransferAttempt]]:
    """Reserve the daily limits of ``pending`` in order against running totals (locked counters,
    see ``limits.Counters``): (to post, refused ``limit_exceeded``, left for the next round).
    A refusal is final unless an earlier transfer of this round took from one of the same
    counters: the ledger may yet refuse that one, and one after another its reservation would
    have been given back before this one reserved — so the round stops there."""
    counters = limits.Counters(connection, day=day, scopes=(s for a in pending for s in a.scopes))
    posting: list[TransferAttempt] = []
    refused: list[TransferAttempt] = []
    taken: set[str] = set()
    for k, a in enumerate(pending):
        if counters.take(a.reservation()):
            posting.append(a)
            taken.update(a.scopes)
        elif taken.isdisjoint(a.scopes):
            refused.append(a)
        else:
            counters.write()
            return posting, refused, list(pending[k:])
    counters.write()
    return posting, refused, []


def _post(
    platform: Platform, posting: Sequence[TransferAttempt], day: str
) -> dict[int, TransferOutcome]:
    """Post the chains in one ledger call (or one per ``BATCH_EVENTS_MAX`` events), then complete
    the records the ledger took and decline the others, giving their limits back, in one
    transaction."""
    chains = []
    vouchers = {}
    commitments = {}
    for a in posting:
        if a.receiver is None:
            raise InvariantError("a transfer reaches the ledger only with a recipient")
        chain = transfer_chain(platform, a.transfer_id, a.amount, a.payer.card, a.receiver)
        receipt = vouchers[a.transfer_id] = voucher(day, a.transfer_id)
        commitments[chain[0].id] = transfer_commitment(a.salt, a.transfer_id, a.amount, receipt)
        chains.append(chain)
    results = post_chains(platform, chains, commitments)
    now = platform.clock.now_ns()
    outcomes: dict[int, TransferOutcome] = {}
    completed: list[tuple[int, str]] = []
    declined: list[tuple[int, DeclineReason]] = []
    for a, chain_results in zip(posting, results, strict=True):
        reason = _refusal(a.transfer_id, chain_results)
        if reason is None:
            completed.append((a.transfer_id, vouchers[a.transfer_id]))
            outcomes[a.transfer_id] = TransferOutcome(
                TransferStatus.COMPLETED, None, vouchers[a.transfer_id], now
            )
        else:
            declined.append((a.transfer_id, reason))
            outcomes[a.transfer_id] = TransferOutcome(TransferStatus.DECLINED, reason, None, now)
    # One completion is one statement, atomic on its own: autocommit saves BEGIN and COMMIT's
    # round trips on the single transfer's path (the HTTP API's).
    single = len(completed) == 1 and not declined
    with autocommit(platform.engine) if single else platform.engine.begin() as connection:
        settle_records(connection, now, completed=completed, declined=declined)
    return outcomes


def _refusal(transfer_id: int, results: Sequence[CreateTransferResult]) -> DeclineReason | None:
    """Why the ledger refused a chain (its first result that is not the chain's echo), or
    ``None`` when it holds the chain (posted now, or already: a retry)."""
    first = chain_refusal(results)
    if first is None:
        return None
    if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
        return DeclineReason.INSUFFICIENT_FUNDS
    if first in (
        CreateTransferResult.DEBIT_ACCOUNT_CLOSED,
        CreateTransferResult.CREDIT_ACCOUNT_CLOSED,
    ):
        return DeclineReason.RECIPIENT_UNAVAILABLE
    logger.error("P2P transfer %s: the ledger refused the chain: %s", transfer_id, results)
    return DeclineReason.PROCESSING_ERROR
