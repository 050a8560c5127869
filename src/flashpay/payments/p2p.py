"""Transitional: the names ``flashpay.payments.switch`` imports from the old ``p2p`` module.

``switch.py`` belongs to the infra helper, so its import lines are not edited here. The merger
points them at ``transfer_records`` and ``transfers`` and deletes this file; nothing else
imports it.
"""

from flashpay.payments.transfer_records import P2PRequest, P2PTransfer
from flashpay.payments.transfers import create_transfers

__all__ = ["P2PRequest", "P2PTransfer", "create_transfers"]
