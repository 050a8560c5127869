"""Reading P2P transfers, and settling those a dead process left ``created`` (behind a fence)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from flashpay.cards.service import (
    get_card,
)
from flashpay.clock import NS_PER_SECOND
from flashpay.payments.fence import fence
from flashpay.payments.legs import (
    transfer_ledger_ids,
)
from flashpay.payments.models import (
    p2p_transfers,
)
from flashpay.payments.receipts import (
    voucher,
)
from flashpay.payments.transfer_records import (
    DeclineReason,
    P2PTransfer,
    settle_records,
    transfer_from_row,
)
from flashpay.platform import Platform


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
    return transfer_from_row(row, card.masked if card is not None else "")


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
        out.append(transfer_from_row(row, displays[card_id]))
    return out


def recover_transfers(*, platform: Platform, older_than_seconds: int = 60) -> int:
    """Settle transfers a dead process left ``created``: completed if the ledger holds their
    chain, else declined (``processing_error``, the limits given back). Returns how many it
    found. Safe to run at any time, from any process, even beside a request still in flight:
    the ledger ids are fenced first (``flashpay.payments.fence``), and a transfer is settled
    only from ``created`` (``settle_records``). The age only spares transfers that are merely
    slow."""
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
    posted = fence(platform, [(int(row.id), transfer_ledger_ids(int(row.id))) for row in rows])
    completed, declined = [], []
    for row in rows:
        transfer_id = int(row.id)
        if transfer_id in posted:
            completed.append((transfer_id, voucher(str(row.day), transfer_id)))
        else:
            declined.append((transfer_id, DeclineReason.PROCESSING_ERROR))
    with platform.engine.begin() as connection:
        settle_records(connection, platform.clock.now_ns(), completed=completed, declined=declined)
