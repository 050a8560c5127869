"""How flashpay tells a person something (a one-time code): a ``Notifier``.

Production would send an SMS through an operator's gateway; the development notifier writes the
message to the log (``flashpay.notify``), and tests use ``RecordingNotifier`` to read the codes.
Messages never carry a card number: at most its last four digits.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger("flashpay.notify")


@dataclass(frozen=True, slots=True)
class Message:
    phone: str
    purpose: str  # e.g. "card_binding"
    reference: str  # what the code is for, e.g. the binding id
    code: str
    text: str


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


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
