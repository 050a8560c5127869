"""P2P transfers: from a bound card to another wallet user (by phone) or to any card number.

A transfer is a record with a state machine, ``created → completed | declined``, and one linked
chain of ledger postings (ARCHITECTURE.md §4): same bank, sender deposit → receiver account;
cross-bank, sender → sender issuer's ``network_payable`` → network (``issuer_receivable`` /
``issuer_payable``) → receiver issuer's ``network_receivable`` → receiver.

Order of checks, and so of decline reasons: the PIN (``pin_not_set``, ``pin_locked``,
``wrong_pin``), the sending card (``card_frozen``, ``card_closed``, ``card_expired``), the
recipient (``recipient_not_found``, ``recipient_unavailable``, ``same_card``), the limits
(``limit_exceeded``: per transfer, then the daily limits of the user and of the card, reserved
atomically), and last the ledger (``insufficient_funds``: the deposit cannot go negative and a
credit line cannot pass its limit, checked by the ledger in the same transaction as the posting).

One pipeline, in batches (group commit at the service level, like a switch): ``create_transfers``
takes (user, request) pairs and answers each exactly as ``create_transfer`` would have had they
come one after another, with a constant number of statements per batch — one read of the payers,
at most two of the recipients, one transaction that records every transfer with its PIN outcome
and reserves the limits, one ledger call (more only past ``BATCH_EVENTS_MAX`` events), and one
transaction that settles the records. ``create_transfer`` is a batch of one.

"As if one after another" needs care where requests of one batch share state: a user's PIN
failures (the fifth wrong PIN locks the later requests: ``_pin_verdicts``), the daily counters
(reserved in order against running totals: ``_reserve``) and the balances (the ledger applies the
chains in order). Limits and balances interact: one after another, a transfer the ledger refuses
gives its reservation back *before* the next one reserves. So when a transfer is refused a limit
that an earlier transfer of the same round took from the same counter, the round stops there and
the rest goes into the next round, once the ledger has answered — rare (a user at the daily limit
inside one batch), and each round is again a constant number of statements.

Crash safety: the record is written ``created`` before anything moves; the ledger ids of the
chain derive from the transfer id, so posting again can never post twice; ``recover_transfers``
settles any transfer left ``created`` by a dead process, behind a fence on its ledger ids
(``flashpay.payments.fence``), so it never races a request still in flight.

Exactly once per Idempotency-Key: a request's ``idempotency`` tag is bound to its transfer in the
transaction that records it (``flashpay.idempotency``). A request whose key is bound already — a
retry after a crash, or a twin — is answered from that transfer (settled first if a crash left it
``created``) and nothing is done again.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from flashpay.cards.models import cards
from flashpay.cards.numbers import CardNumber, CardNumberError
from flashpay.cards.service import (
    Card,
    CardStatus,
    card_from_row,
    get_card,
    is_expired,
    pan_fingerprint,
)
from flashpay.clock import NS_PER_SECOND
from flashpay.db import autocommit
from flashpay.errors import InvariantError, invariant
from flashpay.idempotency import (
    Effect,
    EffectConflictError,
    IdempotencyTag,
    bind_effects,
    find_effects,
)
from flashpay.institutions.chart import (
    LEDGER_CNY,
    AccountCode,
    TransferCode,
    institution_account_id,
)
from flashpay.institutions.service import institution_code, network_code
from flashpay.ledger import BATCH_EVENTS_MAX, CreateTransferResult, Transfer, TransferFlags
from flashpay.ledger.ids import derive_id, new_id
from flashpay.notify import mask_phone
from flashpay.payments import limits
from flashpay.payments.fence import fence
from flashpay.payments.models import p2p_transfers
from flashpay.payments.payer import Payer, payers
from flashpay.platform import Platform
from flashpay.wallet.cards import WalletCardStatus
from flashpay.wallet.errors import WalletError, WalletRefusal
from flashpay.wallet.models import wallet_cards, wallet_users
from flashpay.wallet.pin import PinCheck, PinState, check_pin, pin_state_after, record_pin_check
from flashpay.wallet.policy import PHONE

logger = logging.getLogger(__name__)

AMOUNT_MAX = 10**12  # fen; anything larger is a malformed request, not a limit decline
MEMO_CHARS_MAX = 64
REQUESTS_PER_BATCH_MAX = 4096  # 3 ledger events each at most: up to two ledger calls per round
PIN_THREADS = 2  # Argon2id releases the GIL: one thread per core of the 2-core target machine
PIN_POOL_REQUESTS_MIN = 4  # below this, handing the checks to threads costs more than it saves
EFFECT_KIND = "transfer"  # what an Idempotency-Key of a transfer request is bound to
RERUNS_MAX = 2  # a batch runs again after a twin request bound one of its keys first


class TransferStatus(StrEnum):
    CREATED = "created"
    COMPLETED = "completed"
    DECLINED = "declined"


class DeclineReason(StrEnum):
    """Why a transfer was declined; closed, in the order the checks run."""

    PIN_NOT_SET = "pin_not_set"  # a user without a PIN cannot be locked: checked first
    PIN_LOCKED = "pin_locked"
    WRONG_PIN = "wrong_pin"
    CARD_FROZEN = "card_frozen"
    CARD_CLOSED = "card_closed"
    CARD_EXPIRED = "card_expired"
    RECIPIENT_NOT_FOUND = "recipient_not_found"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    SAME_CARD = "same_card"
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class P2PRequest:
    from_wallet_card_id: int
    amount: int  # fen
    pin: str
    to_phone: str | None = None
    to_card_number: str | None = None
    currency: str = "CNY"
    memo: str | None = None
    idempotency: IdempotencyTag | None = None  # the caller's key, bound to the transfer


@dataclass(frozen=True, slots=True)
class P2PTransfer:
    id: int
    user_id: int
    from_wallet_card_id: int
    from_card_display: str
    recipient_kind: str
    recipient_display: str
    amount: int
    currency: str
    status: TransferStatus
    decline_reason: DeclineReason | None
    voucher: str | None
    memo: str | None
    created_at_ns: int
    completed_at_ns: int | None


def _transfer(row: sa.Row[tuple[object, ...]], from_display: str) -> P2PTransfer:
    m = row._mapping
    reason = m["decline_reason"]
    return P2PTransfer(
        id=int(m["id"]),
        user_id=int(m["user_id"]),
        from_wallet_card_id=int(m["from_wallet_card_id"]),
        from_card_display=from_display,
        recipient_kind=str(m["recipient_kind"]),
        recipient_display=str(m["recipient_display"]),
        amount=int(m["amount"]),
        currency=str(m["currency"]),
        status=TransferStatus(m["status"]),
        decline_reason=None if reason is None else DeclineReason(reason),
        voucher=None if m["voucher"] is None else str(m["voucher"]),
        memo=None if m["memo"] is None else str(m["memo"]),
        created_at_ns=int(m["created_at_ns"]),
        completed_at_ns=None if m["completed_at_ns"] is None else int(m["completed_at_ns"]),
    )


def _validate(request: P2PRequest) -> CardNumber | None:
    if request.currency != "CNY":
        raise WalletError(WalletRefusal.UNSUPPORTED_CURRENCY, "transfers are in CNY")
    if not 0 < request.amount <= AMOUNT_MAX:
        raise WalletError(WalletRefusal.INVALID_AMOUNT, "the amount is a positive number of fen")
    if (request.to_phone is None) == (request.to_card_number is None):
        raise WalletError(
            WalletRefusal.INVALID_RECIPIENT, "give exactly one of to_phone and to_card_number"
        )
    if request.memo is not None and len(request.memo) > MEMO_CHARS_MAX:
        raise WalletError(
            WalletRefusal.INVALID_MEMO, f"a memo is at most {MEMO_CHARS_MAX} characters"
        )
    if request.to_phone is not None and not PHONE.match(request.to_phone):
        raise WalletError(
            WalletRefusal.INVALID_PHONE, "a mobile number is 11 digits starting with 1"
        )
    if request.to_card_number is not None:
        try:
            return CardNumber.parse(request.to_card_number)
        except CardNumberError as exc:
            raise WalletError(WalletRefusal.INVALID_CARD_NUMBER, str(exc)) from exc
    return None


def _chain(
    platform: Platform, transfer_id: int, amount: int, sender: Card, receiver: Card
) -> list[Transfer]:
    ids = _posting_ids(transfer_id)
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


def _posting_ids(transfer_id: int) -> list[int]:
    """The ledger ids a transfer's chain uses: the first (the only one, same bank), then two."""
    return [first_posting_id(transfer_id)] + [
        derive_id("flashpay.p2p", f"{transfer_id}:{leg}") for leg in (1, 2)
    ]


def first_posting_id(transfer_id: int) -> int:
    return derive_id("flashpay.p2p", f"{transfer_id}:0")


def ledger_chain_id(*, platform: Platform, transfer_id: int) -> int | None:
    """The ledger chain of a posted transfer (the audit log's key: the timestamp the ledger gave
    its first posting), ``None`` if nothing was posted."""
    found = platform.ledger.lookup_transfers([first_posting_id(transfer_id)])
    return found[0].timestamp if found else None


def _commitment(salt: bytes, transfer_id: int, amount: int, voucher: str) -> bytes:
    """A salted commitment to the business record, kept with the ledger chain for the audit log
    (the record itself — who paid whom — stays in our database)."""
    record = f"flashpay.p2p.v1|{transfer_id}|{amount}|CNY|{voucher}".encode()
    return hashlib.sha256(salt + record).digest()


def _voucher(day: str, transfer_id: int) -> str:
    return day.replace("-", "") + f"{transfer_id:019d}"


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A well-formed request from a bound card of its user, after the reads and the checks that
    need no write: ``reason`` is ``None`` while it may still go through (limits, ledger)."""

    index: int  # in the batch
    transfer_id: int
    user_id: int
    request: P2PRequest
    number: CardNumber | None  # the recipient's card number, when sent to one
    payer: Payer
    pin: PinState  # what record_pin_check must see: earlier requests of the batch applied
    verdict: PinCheck
    receiver: Card | None
    reason: DeclineReason | None
    salt: bytes

    @property
    def scopes(self) -> tuple[str, str]:
        return _scopes(self.user_id, self.payer.card.id)

    def reservation(self) -> limits.Reservation:
        user, card = self.scopes
        return limits.Reservation(
            self.request.amount,
            ((user, limits.DAILY_PER_USER_MAX), (card, limits.DAILY_PER_CARD_MAX)),
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: TransferStatus
    reason: DeclineReason | None
    voucher: str | None
    finished_ns: int


def _scopes(user_id: int, card_id: int) -> tuple[str, str]:
    """The daily counters a transfer reserves (and recovery gives back)."""
    return f"user:{user_id}", f"card:{card_id}"


def _pin_verdicts(
    platform: Platform, now_ns: int, asks: Sequence[tuple[PinState, str]]
) -> list[tuple[PinState, PinCheck]]:
    """``check_pin`` for each (state read with the payer, PIN), as if one after another: the slow
    hashes run on a small thread pool (Argon2id releases the GIL), then each user's requests are
    replayed in order, so a right PIN after the fifth wrong one of the same batch is
    ``pin_locked``. Returns each request's (state to record against, verdict)."""

    def check(ask: tuple[PinState, str]) -> PinCheck:
        return check_pin(platform=platform, state=ask[0], pin=ask[1])

    if len(asks) < PIN_POOL_REQUESTS_MIN:
        hashed = [check(ask) for ask in asks]
    else:
        # A pool per batch: two thread starts (~0.1 ms) against milliseconds of hashing, and no
        # module-level pool that a fork would leave without its threads.
        with ThreadPoolExecutor(PIN_THREADS, thread_name_prefix="p2p-pin") as pool:
            hashed = list(pool.map(check, asks))
    states: dict[int, PinState] = {}
    out = []
    for (read, pin), verdict in zip(asks, hashed, strict=True):
        state = states.get(read.user_id, read)
        if state.pin_locked_until_ns != read.pin_locked_until_ns:
            verdict = check((state, pin))  # locked earlier in this batch: answered without a hash
        out.append((state, verdict))
        states[read.user_id] = pin_state_after(state, verdict, now_ns)
    return out


def _recipients(
    platform: Platform, phones: Sequence[str], fingerprints: Sequence[bytes]
) -> tuple[dict[str, Card], dict[bytes, Card]]:
    """The receiving cards, in at most two queries: a wallet user's default bound card by phone,
    and any issued card by the fingerprint of its number (nothing is decrypted)."""
    by_phone: dict[str, Card] = {}
    by_fingerprint: dict[bytes, Card] = {}
    if not phones and not fingerprints:
        return by_phone, by_fingerprint
    with autocommit(platform.engine) as connection:
        if phones:
            rows = connection.execute(
                sa.select(cards, wallet_users.c.phone.label("wallet_phone"))
                .join(wallet_cards, wallet_cards.c.card_id == cards.c.id)
                .join(wallet_users, wallet_users.c.id == wallet_cards.c.user_id)
                .where(
                    wallet_users.c.phone.in_(sorted(set(phones))),
                    wallet_cards.c.is_default.is_(True),
                    wallet_cards.c.status != WalletCardStatus.UNBOUND.value,
                )
            )
            for row in rows:
                by_phone.setdefault(str(row.wallet_phone), card_from_row(row))
        if fingerprints:
            rows = connection.execute(
                sa.select(cards).where(cards.c.pan_fingerprint.in_(sorted(set(fingerprints))))
            )
            for row in rows:
                by_fingerprint[bytes(row.pan_fingerprint)] = card_from_row(row)
    return by_phone, by_fingerprint


def _early_decline(
    payer: Payer, verdict: PinCheck, receiver: Card | None, now_ns: int
) -> DeclineReason | None:
    """The reasons that need no write to decide, in ``DeclineReason`` order."""
    if verdict is not PinCheck.OK:
        return DeclineReason(verdict.value)
    sender = payer.card
    if payer.wallet_status is WalletCardStatus.FROZEN or sender.status is CardStatus.FROZEN:
        return DeclineReason.CARD_FROZEN
    if sender.status is CardStatus.CLOSED:
        return DeclineReason.CARD_CLOSED
    if is_expired(sender.expiry, now_ns):
        return DeclineReason.CARD_EXPIRED
    if receiver is None:
        return DeclineReason.RECIPIENT_NOT_FOUND
    if receiver.status is not CardStatus.ACTIVE:
        return DeclineReason.RECIPIENT_UNAVAILABLE
    if receiver.id == sender.id:
        return DeclineReason.SAME_CARD
    return None


def _recipient_display(request: P2PRequest, number: CardNumber | None) -> str:
    if request.to_phone is not None:
        return mask_phone(request.to_phone)
    return number.masked if number is not None else ""


def _row(a: _Attempt, now_ns: int, day: str, reason: DeclineReason | None) -> dict[str, object]:
    """The transfer's record: ``created`` when it goes to the ledger, else ``declined``."""
    declined = reason is not None
    return {
        "id": a.transfer_id,
        "user_id": a.user_id,
        "from_wallet_card_id": a.payer.wallet_card_id,
        "from_card_id": a.payer.card.id,
        "to_card_id": a.receiver.id if a.receiver is not None else None,
        "recipient_kind": "phone" if a.request.to_phone is not None else "card",
        "recipient_display": _recipient_display(a.request, a.number),
        "amount": a.request.amount,
        "currency": a.request.currency,
        "memo": a.request.memo,
        "commitment_salt": a.salt,
        "day": day,
        "created_at_ns": now_ns,
        "voucher": None,
        "status": (TransferStatus.DECLINED if declined else TransferStatus.CREATED).value,
        "decline_reason": reason and reason.value,
        "completed_at_ns": now_ns if declined else None,
    }


def create_transfers(
    *, platform: Platform, requests: Sequence[tuple[int, P2PRequest]]
) -> list[P2PTransfer | WalletError]:
    """Run a batch of P2P transfers, each (user id, request), to their end; answered in order,
    each exactly what ``create_transfer`` would have answered had they come one after another.
    A refused money movement is a declined transfer; a malformed request (or a card that is not
    the user's) is its ``WalletError`` in the list, with nothing recorded, and the others go on.
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
) -> list[P2PTransfer | WalletError]:
    answers: list[P2PTransfer | WalletError | None] = [None] * len(requests)
    _answer_bound(platform, requests, answers)
    now = platform.clock.now_ns()
    attempts = _attempts(platform, requests, answers, now)
    outcomes = _run(platform, attempts, now)
    for a in attempts:
        answers[a.index] = _answer(a, now, outcomes[a.transfer_id])
    out = [answer for answer in answers if answer is not None]
    invariant(len(out) == len(requests), "every request is answered")
    return out


def _answer_bound(
    platform: Platform,
    requests: Sequence[tuple[int, P2PRequest]],
    answers: list[P2PTransfer | WalletError | None],
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
    answers: list[P2PTransfer | WalletError | None],
    now_ns: int,
) -> list[_Attempt]:
    """The reads and the checks that need no write, for the whole batch: the well-formed
    requests from their user's bound cards, as attempts; the others' errors go into
    ``answers``."""
    numbers: dict[int, CardNumber | None] = {}
    for index, (_, request) in enumerate(requests):
        if answers[index] is not None:
            continue  # answered from its bound transfer
        try:
            numbers[index] = _validate(request)
        except WalletError as error:
            answers[index] = error
    found, _ = payers(
        platform=platform, wallet_card_ids={requests[i][1].from_wallet_card_id for i in numbers}
    )
    owned: list[tuple[int, Payer]] = []
    for index in numbers:
        user_id, request = requests[index]
        payer = found.get(request.from_wallet_card_id)
        if payer is None or payer.user_id != user_id:
            answers[index] = WalletError(WalletRefusal.NOT_FOUND, "no such card in this wallet")
        else:
            owned.append((index, payer))
    verdicts = _pin_verdicts(platform, now_ns, [(p.pin, requests[i][1].pin) for i, p in owned])
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
        reason = _early_decline(payer, verdict, receiver, now_ns)
        if reason is None and request.amount > limits.PER_TRANSFER_MAX:
            reason = DeclineReason.LIMIT_EXCEEDED
        attempts.append(
            _Attempt(index, ids[n], user_id, request, numbers[index], payer, state,
                     verdict, receiver, reason, secrets.token_bytes(16))
        )  # fmt: skip
    return attempts


def create_transfer(*, platform: Platform, user_id: int, request: P2PRequest) -> P2PTransfer:
    """Run one P2P transfer to its end (a batch of one): a refused money movement is a declined
    transfer, a malformed request a ``WalletError`` (nothing recorded)."""
    [answer] = create_transfers(platform=platform, requests=[(user_id, request)])
    if isinstance(answer, WalletError):
        raise answer
    return answer


def _answer(a: _Attempt, now_ns: int, outcome: _Outcome) -> P2PTransfer:
    return P2PTransfer(
        id=a.transfer_id,
        user_id=a.user_id,
        from_wallet_card_id=a.payer.wallet_card_id,
        from_card_display=a.payer.card.masked,
        recipient_kind="phone" if a.request.to_phone is not None else "card",
        recipient_display=_recipient_display(a.request, a.number),
        amount=a.request.amount,
        currency=a.request.currency,
        status=outcome.status,
        decline_reason=outcome.reason,
        voucher=outcome.voucher,
        memo=a.request.memo,
        created_at_ns=now_ns,
        completed_at_ns=outcome.finished_ns,
    )


def _run(platform: Platform, attempts: Sequence[_Attempt], now_ns: int) -> dict[int, _Outcome]:
    """Record, post and settle the attempts, in rounds (one unless ``_reserve`` stops one);
    the outcome of each by transfer id."""
    if not attempts:
        return {}
    day = limits.beijing_day(now_ns)
    outcomes = {
        a.transfer_id: _Outcome(TransferStatus.DECLINED, a.reason, None, now_ns)
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
            posting, refused, pending = _reserve(connection, day, pending)
            recorded: list[tuple[_Attempt, DeclineReason | None]] = [(a, None) for a in posting]
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
                    p2p_transfers.insert(), [_row(a, now_ns, day, r) for a, r in recorded]
                )
        first = False
        for a in refused:
            outcomes[a.transfer_id] = _Outcome(
                TransferStatus.DECLINED, DeclineReason.LIMIT_EXCEEDED, None, now_ns
            )
        if posting:
            outcomes.update(_post(platform, posting, day))
    return outcomes


def _reserve(
    connection: sa.Connection, day: str, pending: Sequence[_Attempt]
) -> tuple[list[_Attempt], list[_Attempt], list[_Attempt]]:
    """Reserve the daily limits of ``pending`` in order against running totals (locked counters,
    see ``limits.Counters``): (to post, refused ``limit_exceeded``, left for the next round).
    A refusal is final unless an earlier transfer of this round took from one of the same
    counters: the ledger may yet refuse that one, and one after another its reservation would
    have been given back before this one reserved — so the round stops there."""
    counters = limits.Counters(connection, day=day, scopes=(s for a in pending for s in a.scopes))
    posting: list[_Attempt] = []
    refused: list[_Attempt] = []
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


def _ledger_calls(chains: Sequence[Sequence[Transfer]], events_max: int) -> list[list[int]]:
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


def _post(platform: Platform, posting: Sequence[_Attempt], day: str) -> dict[int, _Outcome]:
    """Post the chains in one ledger call (or one per ``BATCH_EVENTS_MAX`` events), then complete
    the records the ledger took and decline the others, giving their limits back, in one
    transaction."""
    chains = []
    vouchers = {}
    commitments = {}
    for a in posting:
        if a.receiver is None:
            raise InvariantError("a transfer reaches the ledger only with a recipient")
        chain = _chain(platform, a.transfer_id, a.request.amount, a.payer.card, a.receiver)
        voucher = vouchers[a.transfer_id] = _voucher(day, a.transfer_id)
        commitments[chain[0].id] = _commitment(a.salt, a.transfer_id, a.request.amount, voucher)
        chains.append(chain)
    results: list[CreateTransferResult] = []
    for call in _ledger_calls(chains, BATCH_EVENTS_MAX):
        events = [t for n in call for t in chains[n]]
        results += platform.ledger.create_transfers(
            events, commitments={chains[n][0].id: commitments[chains[n][0].id] for n in call}
        )
    now = platform.clock.now_ns()
    outcomes: dict[int, _Outcome] = {}
    completed: list[tuple[int, str]] = []
    declined: list[tuple[int, DeclineReason]] = []
    offset = 0
    for a, chain in zip(posting, chains, strict=True):
        reason = _refusal(a.transfer_id, results[offset : offset + len(chain)])
        offset += len(chain)
        if reason is None:
            completed.append((a.transfer_id, vouchers[a.transfer_id]))
            outcomes[a.transfer_id] = _Outcome(
                TransferStatus.COMPLETED, None, vouchers[a.transfer_id], now
            )
        else:
            declined.append((a.transfer_id, reason))
            outcomes[a.transfer_id] = _Outcome(TransferStatus.DECLINED, reason, None, now)
    # One completion is one statement, atomic on its own: autocommit saves BEGIN and COMMIT's
    # round trips on the single transfer's path (the HTTP API's).
    single = len(completed) == 1 and not declined
    with autocommit(platform.engine) if single else platform.engine.begin() as connection:
        _settle(connection, now, completed=completed, declined=declined)
    return outcomes


def _refusal(transfer_id: int, results: Sequence[CreateTransferResult]) -> DeclineReason | None:
    """Why the ledger refused a chain (its first result that is not the chain's echo), or
    ``None`` when it holds the chain (posted now, or already: a retry)."""
    if all(r in (CreateTransferResult.OK, CreateTransferResult.EXISTS) for r in results):
        return None
    first = next(r for r in results if r is not CreateTransferResult.LINKED_EVENT_FAILED)
    if first in (CreateTransferResult.EXCEEDS_CREDITS, CreateTransferResult.EXCEEDS_DEBITS):
        return DeclineReason.INSUFFICIENT_FUNDS
    if first in (
        CreateTransferResult.DEBIT_ACCOUNT_CLOSED,
        CreateTransferResult.CREDIT_ACCOUNT_CLOSED,
    ):
        return DeclineReason.RECIPIENT_UNAVAILABLE
    logger.error("P2P transfer %s: the ledger refused the chain: %s", transfer_id, results)
    return DeclineReason.PROCESSING_ERROR


_COMPLETE = (
    p2p_transfers.update()
    .where(p2p_transfers.c.id == sa.bindparam("t"), p2p_transfers.c.status == "created")
    .values(
        status=TransferStatus.COMPLETED.value,
        voucher=sa.bindparam("v"),
        completed_at_ns=sa.bindparam("at"),
    )
)


def _settle(
    connection: sa.Connection,
    now_ns: int,
    *,
    completed: Sequence[tuple[int, str]],
    declined: Sequence[tuple[int, DeclineReason]],
) -> None:
    """Settle ``created`` records in the caller's transaction: complete (transfer id, voucher)
    and decline (transfer id, reason), giving back the limits of exactly the declined records
    this statement moved out of ``created`` — a record another process settled first (a racing
    ``recover_transfers``) is that process's to give back. Three statements at most."""
    if completed:
        connection.execute(
            _COMPLETE, [{"t": i, "v": v, "at": now_ns} for i, v in sorted(completed)]
        )
    if not declined:
        return
    by_reason: dict[DeclineReason, list[int]] = defaultdict(list)
    for transfer_id, reason in declined:
        by_reason[reason].append(transfer_id)
    t = p2p_transfers.c
    moved = connection.execute(
        p2p_transfers.update()
        .where(t.id.in_(sorted(i for i, _ in declined)), t.status == "created")
        .values(
            status=TransferStatus.DECLINED.value,
            decline_reason=sa.case(
                *((t.id.in_(ids), reason.value) for reason, ids in by_reason.items())
            ),
            completed_at_ns=now_ns,
        )
        .returning(t.user_id, t.from_card_id, t.amount, t.day)
    ).all()
    given_back: dict[str, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
    for row in moved:
        scopes = _scopes(int(row.user_id), int(row.from_card_id))
        given_back[str(row.day)].append((int(row.amount), scopes))
    for day, amounts in sorted(given_back.items()):
        limits.release_many(connection, day=day, given_back=amounts)


def get_transfer(*, platform: Platform, user_id: int, transfer_id: int) -> P2PTransfer | None:
    """The user's transfer, or ``None`` — also when it is someone else's."""
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(p2p_transfers).where(
                p2p_transfers.c.id == transfer_id, p2p_transfers.c.user_id == user_id
            )
        ).first()
    if row is None:
        return None
    card = get_card(platform=platform, card_id=int(row.from_card_id))
    return _transfer(row, card.masked if card is not None else "")


def list_transfers(
    *, platform: Platform, user_id: int, before_id: int | None = None, limit: int = 20
) -> list[P2PTransfer]:
    """The user's transfers, newest first (ids grow with time), a page at a time."""
    query = sa.select(p2p_transfers).where(p2p_transfers.c.user_id == user_id)
    if before_id is not None:
        query = query.where(p2p_transfers.c.id < before_id)
    with platform.engine.connect() as connection:
        rows = connection.execute(query.order_by(p2p_transfers.c.id.desc()).limit(limit)).all()
    displays: dict[int, str] = {}
    out = []
    for row in rows:
        card_id = int(row.from_card_id)
        if card_id not in displays:
            card = get_card(platform=platform, card_id=card_id)
            displays[card_id] = card.masked if card is not None else ""
        out.append(_transfer(row, displays[card_id]))
    return out


def recover_transfers(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle transfers a dead process left ``created``: completed if the ledger holds their
    chain, else declined (``processing_error``, the limits given back). Returns how many it
    found. Safe to run at any time, from any process, even beside a request still in flight:
    the ledger ids are fenced first (``flashpay.payments.fence``), and a transfer is settled
    only from ``created`` (``_settle``). The age only spares transfers that are merely slow."""
    cutoff = platform.clock.now_ns() - older_than_seconds * NS_PER_SECOND
    with platform.engine.connect() as connection:
        ids = connection.execute(
            sa.select(p2p_transfers.c.id)
            .where(p2p_transfers.c.status == "created", p2p_transfers.c.created_at_ns < cutoff)
            .order_by(p2p_transfers.c.id)
        ).scalars()
        found = [int(i) for i in ids]
    settle_created(platform=platform, transfer_ids=found)
    return len(found)


def settle_created(*, platform: Platform, transfer_ids: Sequence[int]) -> None:
    """Settle those of ``transfer_ids`` that are still ``created``, behind a fence: completed if
    their chain posted before it, else declined ``processing_error``."""
    if not transfer_ids:
        return
    t = p2p_transfers.c
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(t.id, t.day).where(t.id.in_(sorted(transfer_ids)), t.status == "created")
        ).all()
    if not rows:
        return
    posted = fence(platform, [(int(row.id), _posting_ids(int(row.id))) for row in rows])
    completed, declined = [], []
    for row in rows:
        transfer_id = int(row.id)
        if transfer_id in posted:
            completed.append((transfer_id, _voucher(str(row.day), transfer_id)))
        else:
            declined.append((transfer_id, DeclineReason.PROCESSING_ERROR))
    with platform.engine.begin() as connection:
        _settle(connection, platform.clock.now_ns(), completed=completed, declined=declined)
