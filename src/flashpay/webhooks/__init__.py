"""``flashpay.webhooks``: merchant notifications — an event feed derived from the ledger's
committed chains, and webhooks in the Stripe manner.

- ``events``: the event types, their stable ids, how a chain is recognised as one;
- ``derive``: the deriver, with its own durable cursor (a low-water mark over chain ids);
- ``endpoints``: a merchant's URLs, their secrets and event types;
- ``signature``: ``Flashpay-Signature: t=…,v1=…`` — signing, and ``verify`` for receivers;
- ``delivery``: the worker — leases, attempts, exponential backoff with jitter;
- ``feed`` and ``stream``: what a merchant reads (a page, or Server-Sent Events), replays;
- ``runner``: where the deriver and the worker run (decision 0024).

See docs/reference/webhooks.md.
"""

from __future__ import annotations

from flashpay.webhooks.events import EventType, event_id
from flashpay.webhooks.signature import SIGNATURE_HEADER, SignatureError, sign_header, verify

__all__ = ["SIGNATURE_HEADER", "EventType", "SignatureError", "event_id", "sign_header", "verify"]
