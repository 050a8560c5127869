"""How flashpay tells a person something (a one-time code): a ``Notifier``.

A ``Notifier`` has one method, ``send(message)``; the wallet calls it after it has committed the
binding the code is for. Which notifier a process uses is decided in one place,
``flashpay.notify.environment.notifier_from_environment`` (decision 0015):

- ``HttpSmsGateway`` (``flashpay.notify.gateway``): production. POSTs each message as JSON to the
  operator's SMS gateway (``FLASHPAY_SMS_GATEWAY_URL``) with a timeout and bounded retries; raises
  ``DeliveryError`` when the message could not be handed over.
- ``OutboxNotifier`` (``flashpay.notify.outbox``): development. Writes each message to the table
  ``notify_dev_outbox`` (kept short), which every worker and the CLI can read: a person reads the
  code with ``flashpay dev messages`` or on the page ``GET /dev/messages``. Never in production.
- ``LogNotifier``: one log line per message (the library default of ``Platform.open``).
- ``RecordingNotifier``: keeps the messages in memory, for tests and the simulator.

Messages never carry a card number: at most its last four digits. Phones are masked in logs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from flashpay.errors import UnavailableError

logger = logging.getLogger("flashpay.notify")


@dataclass(frozen=True, slots=True)
class Message:
    phone: str
    purpose: str  # e.g. "card_binding"
    reference: str  # what the code is for, e.g. the binding id
    code: str
    text: str


class Notifier(Protocol):
    """Sends one message to ``message.phone``.

    Returns once the message is handed over (to the gateway, the outbox or the log); raises
    ``DeliveryError`` when it could not be, so the caller can tell the person to try again."""

    def send(self, message: Message) -> None: ...


class DeliveryError(UnavailableError):
    """A message could not be handed over (the gateway refused it or did not answer)."""

    code = "notification_failed"
    message = "the message could not be sent; try again shortly"


def mask_phone(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "***"


class LogNotifier:
    """The development notifier: one log line per message."""

    def send(self, message: Message) -> None:
        logger.info(
            "SMS to %s (%s %s): %s",
            mask_phone(message.phone),
            message.purpose,
            message.reference,
            message.text,
        )


class RecordingNotifier:
    """Keeps every message, for tests (and logs it like the development notifier)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)
        LogNotifier().send(message)

    def last_code(self, purpose: str, reference: str) -> str:
        with self._lock:
            for message in reversed(self.messages):
                if message.purpose == purpose and message.reference == reference:
                    return message.code
        raise LookupError(f"no {purpose} message for {reference}")
