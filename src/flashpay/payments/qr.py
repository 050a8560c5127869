"""Transitional: the names ``flashpay.payments.switch`` imports from the old ``qr`` module.

``switch.py`` belongs to the infra helper (its group-commit engine is being merged with the
ledger's), so its import lines are not edited here. The merger points them at the new modules
(``attempts``, ``errors``, ``submit``) and deletes this file; nothing else imports it.
"""

from flashpay.payments.attempts import Payment, PaymentRequest
from flashpay.payments.errors import PaymentError
from flashpay.payments.submit import submit_payments

__all__ = ["Payment", "PaymentError", "PaymentRequest", "submit_payments"]
