"""The MDR split of ARCHITECTURE.md §4, to the fen."""

from __future__ import annotations

from flashpay.merchants.fees import FeeSplit


def test_fee_split_reproduces_the_architecture_example():
    # ¥100.00 at MDR 0.60 %: interchange 0.45 %, network 0.065 % (rounded), acquirer the rest
    assert FeeSplit().split(10_000) == (45, 7, 8, 9_940)


def test_the_split_adds_up_for_every_amount():
    split = FeeSplit()
    for amount in [*range(1, 2_000), 10**9 + 7, 10**12]:
        interchange, network, acquirer, merchant = split.split(amount)
        assert interchange + network + acquirer + merchant == amount
        assert min(interchange, network, merchant) >= 0
