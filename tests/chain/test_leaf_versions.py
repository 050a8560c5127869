"""The leaf's two versions (``flashpay.chain.leaf``): a chain without a discount is encoded as
version 1 exactly as before promotions; one that moves a discount is version 2, whose trailing
discount must be the sum of its PROMOTION transfers."""

from __future__ import annotations

import struct

import pytest

from flashpay.chain import leaf
from flashpay.institutions.chart import LEDGER_CNY, TransferCode
from flashpay.ledger.types import CommittedChain, Transfer, TransferFlags


def _transfer(n: int, amount: int, code: TransferCode) -> Transfer:
    return Transfer(n, 100 + n, 200 + n, amount, LEDGER_CNY, code, flags=TransferFlags.LINKED,
                    user_data_32=7 if code is not TransferCode.PURCHASE else 0,
                    timestamp=1_000 + n)  # fmt: skip


def _chain(*transfers: Transfer) -> CommittedChain:
    return CommittedChain(chain_id=1_000, commitment=b"\x01" * 32, transfers=transfers)


def test_a_chain_without_a_discount_is_the_version_1_leaf_of_before() -> None:
    chain = _chain(
        _transfer(1, 45, TransferCode.PURCHASE), _transfer(2, 9_955, TransferCode.PURCHASE)
    )
    data = leaf.encode(3, chain)
    assert (data[0], len(data)) == (1, 52 + 2 * 92)  # no trailer: the v1 bytes
    decoded = leaf.decode(data)
    assert (decoded.version, decoded.discount_minor, decoded.transfers) == (
        1,
        None,
        chain.transfers,
    )


def test_a_discounted_chain_is_version_2_and_carries_the_discount() -> None:
    chain = _chain(
        _transfer(1, 1_000, TransferCode.PROMOTION),
        _transfer(2, 10_000, TransferCode.PURCHASE),
        _transfer(3, 1_000, TransferCode.PROMOTION_FUNDING),
    )
    data = leaf.encode(4, chain)
    assert (data[0], struct.unpack(">Q", data[-8:])) == (2, (1_000,))
    decoded = leaf.decode(data)
    assert (decoded.version, decoded.discount_minor, decoded.leaf_index) == (2, 1_000, 4)
    assert decoded.transfers == chain.transfers
    forged = data[:-8] + struct.pack(">Q", 999)
    with pytest.raises(leaf.LeafError, match="discount 999"):
        leaf.decode(forged)
    with pytest.raises(leaf.LeafError):
        leaf.decode(data[:-8])  # a v2 without its trailer
