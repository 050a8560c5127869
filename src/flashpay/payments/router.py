"""``/v1/transfers``: P2P transfers over HTTP. A declined transfer is a 201 with
``status: declined`` and its reason (decision 0005); a malformed request is a 422."""

from __future__ import annotations

from fastapi import APIRouter

from flashpay.api.deps import CurrentUser, IdempotencyDep, ServicesDep
from flashpay.api.errors import ApiError, not_found
from flashpay.api.pagination import CursorQuery, LimitQuery, Page, before_id, encode_cursor
from flashpay.api.schemas import money_text
from flashpay.api.types import IdPath, money
from flashpay.chain.deps import ChainLogDep
from flashpay.chain.receipt import build_receipt
from flashpay.clock import to_datetime
from flashpay.payments import transfer_queries
from flashpay.payments.deps import TransferSwitchDep
from flashpay.payments.errors import PaymentError
from flashpay.payments.legs import ledger_chain_id
from flashpay.payments.schemas import ReceiptOut, TransferIn, TransferOut
from flashpay.payments.transfer_queries import get_transfer
from flashpay.payments.transfer_records import P2PRequest, P2PTransfer, TransferStatus

router = APIRouter(prefix="/v1/transfers", tags=["transfers"])


@router.post("", status_code=201, response_model=TransferOut)
def create(
    body: TransferIn, user: CurrentUser, switch: TransferSwitchDep, idempotency: IdempotencyDep
) -> TransferOut:
    """Send money from one of your cards to a wallet user (``to_phone``) or to a card number
    (``to_card_number``). The payment PIN is required. Send an ``Idempotency-Key``."""
    request = P2PRequest(
        from_wallet_card_id=body.from_card_id,
        amount=money(body.amount, body.currency),
        pin=body.pin,
        to_phone=body.to_phone,
        to_card_number=body.to_card_number,
        memo=body.memo,
        idempotency=idempotency,
    )
    # Through the worker's switch: transfers that meet there are posted together.
    answer = switch.submit((user.id, request))
    if isinstance(answer, PaymentError):
        raise answer
    return TransferOut.of(answer)


@router.get("", response_model=Page[TransferOut])
def list_transfers(
    user: CurrentUser, platform: ServicesDep, limit: LimitQuery = 20, cursor: CursorQuery = None
) -> Page[TransferOut]:
    """Your transfers, newest first."""
    before = before_id(cursor)
    rows = transfer_queries.list_transfers(
        platform=platform, user_id=user.id, before_id=before, limit=limit + 1
    )
    page = rows[:limit]
    return Page[TransferOut](
        items=[TransferOut.of(t) for t in page],
        next_cursor=encode_cursor({"before": page[-1].id}) if len(rows) > limit else None,
    )


def _own(platform: ServicesDep, user_id: int, transfer_id: int) -> P2PTransfer:
    found = get_transfer(platform=platform, user_id=user_id, transfer_id=transfer_id)
    if found is None:
        raise not_found("transfer")
    return found


@router.get("/{transfer_id}", response_model=TransferOut)
def get(transfer_id: IdPath, user: CurrentUser, platform: ServicesDep) -> TransferOut:
    return TransferOut.of(_own(platform, user.id, transfer_id))


@router.get("/{transfer_id}/receipt", response_model=ReceiptOut)
def receipt(
    transfer_id: IdPath, user: CurrentUser, platform: ServicesDep, log: ChainLogDep
) -> ReceiptOut:
    """The receipt of a completed transfer, with its voucher number and — once the audit log has
    a final checkpoint covering it — its leaf, index and inclusion proof to that co-signed
    checkpoint (``audit``; verify it offline with ``flashpay chain verify-receipt``). 409 if the
    transfer did not complete."""
    t = _own(platform, user.id, transfer_id)
    if t.status is not TransferStatus.COMPLETED or t.voucher is None:
        raise ApiError(
            status_code=409, code="no_receipt", message=f"the transfer is {t.status.value}"
        )
    assert t.completed_at_ns is not None
    chain = ledger_chain_id(platform=platform, transfer_id=t.id)
    return ReceiptOut(
        voucher=t.voucher,
        transfer_id=str(t.id),
        status=t.status.value,
        amount=money_text(t.amount, t.currency),
        currency=t.currency,
        from_card=t.from_card_display,
        recipient=t.recipient_display,
        completed_at=to_datetime(t.completed_at_ns),
        audit=None if chain is None else build_receipt(log, chain),
    )
