"""The one voucher and commitment recipe keeps the bytes each kind produced before the merge:
receipts and the audit log's leaves were built from them (decision 0017)."""

from __future__ import annotations

import hashlib

from flashpay.payments.receipts import payment_commitment, transfer_commitment, voucher

SALT = bytes(range(16))


def test_a_payment_commitment_is_the_payment_v1_record() -> None:
    record = b"flashpay.payment.v1|4242|refund2|1500|CNY"
    assert payment_commitment(SALT, 4242, "refund2", 1500) == hashlib.sha256(SALT + record).digest()


def test_a_transfer_commitment_is_the_p2p_v1_record() -> None:
    receipt = voucher("2026-11-18", 4242)
    assert receipt == "20261118" + "0" * 15 + "4242"
    record = f"flashpay.p2p.v1|4242|1500|CNY|{receipt}".encode()
    assert transfer_commitment(SALT, 4242, 1500, receipt) == hashlib.sha256(SALT + record).digest()
