"""A transfer's record (``ledger.types``): one field order for the ``ledger_transfers`` columns
and the audit log's leaf, written and read by one pair of functions."""

from __future__ import annotations

import dataclasses

from flashpay.ledger.types import (
    TRANSFER_RECORD_FIELDS,
    Transfer,
    TransferFlags,
    transfer_from_record,
    transfer_record,
)


def _distinct() -> Transfer:
    """A transfer whose every field has its own value, so a swapped pair shows."""
    return Transfer(
        id=1,
        debit_account_id=2,
        credit_account_id=3,
        amount=4,
        ledger=5,
        code=6,
        flags=TransferFlags.PENDING,
        pending_id=8,
        timeout_seconds=9,
        user_data_128=2**100 + 10,
        user_data_64=11,
        user_data_32=12,
        timestamp=13,
    )


def test_the_record_names_every_field_of_a_transfer_once() -> None:
    assert sorted(TRANSFER_RECORD_FIELDS) == sorted(f.name for f in dataclasses.fields(Transfer))


def test_the_record_holds_each_field_at_its_named_position() -> None:
    t = _distinct()
    record = transfer_record(t)
    for name, value in zip(TRANSFER_RECORD_FIELDS, record, strict=True):
        expected = getattr(t, name)
        if name == "user_data_128":
            expected = expected.to_bytes(16, "big")
        elif name == "flags":
            expected = int(expected)
        assert value == expected, name


def test_a_record_reads_back_as_its_transfer() -> None:
    t = _distinct()
    assert transfer_from_record(transfer_record(t)) == t
    record = list(transfer_record(t))
    record[5] = memoryview(record[5])  # psycopg returns bytea as memoryview
    assert transfer_from_record([*record, 99]) == t  # a trailing chain_id is ignored
