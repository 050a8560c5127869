"""``HttpSmsGateway``: the notifier a real SMS gateway plugs into (production).

Each message is one ``POST`` of a JSON object to the configured URL
(``FLASHPAY_SMS_GATEWAY_URL``), with ``Authorization: Bearer <token>`` when a token is configured
(``FLASHPAY_SMS_GATEWAY_TOKEN``)::

    {"message_id": "card_binding:42", "to": "13800000001", "text": "flashpay: 123456 binds …"}

``message_id`` is the same on every retry of one message, so a gateway can drop duplicates. Any
2xx is success. A 5xx, a 429, a timeout or a broken connection is retried, up to
``SEND_ATTEMPTS_MAX`` attempts with a doubling pause (``RETRY_PAUSE_SECONDS``, then twice that);
any other answer is final. When no attempt succeeds, ``send`` raises ``DeliveryError`` (the HTTP
API answers 503 ``notification_failed``; the binding can be started again).

What it never sends or logs: a card number (the text carries at most the last four digits, and a
text with a run of 12 or more digits is refused before it leaves), the gateway token, or the code
in a log line. Phones are masked in logs (``138****0001``).

Adapting to a vendor's API (Alibaba Cloud SMS, Tencent Cloud SMS, Twilio…) is a small relay that
accepts this JSON; or a class with the same ``send`` (the ``Notifier`` protocol) passed to
``Platform.open``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import httpx

from flashpay.notify import DeliveryError, Message, mask_phone

logger = logging.getLogger("flashpay.notify")

SEND_ATTEMPTS_MAX = 3
TIMEOUT_SECONDS = 5.0  # per attempt: connect, read, write and pool each
RETRY_PAUSE_SECONDS = 0.5  # before the second attempt; doubled before each further one
_CARD_NUMBER_LIKE = re.compile(r"[0-9]{12,}")
_RETRIED_STATUSES = frozenset({429})


class HttpSmsGateway:
    """Sends each message as a JSON ``POST`` to an SMS gateway (see the module docstring).

    ``transport`` is httpx's test seam (``httpx.MockTransport``); ``sleep`` lets a test skip the
    pauses between attempts. Thread-safe (one pooled ``httpx.Client``); ``close`` releases it.
    """

    def __init__(
        self,
        *,
        url: str,
        token: str | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        attempts_max: int = SEND_ATTEMPTS_MAX,
        retry_pause_seconds: float = RETRY_PAUSE_SECONDS,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the SMS gateway URL must be http:// or https://")
        if not 1 <= attempts_max <= SEND_ATTEMPTS_MAX:
            raise ValueError(f"attempts_max must be 1..{SEND_ATTEMPTS_MAX}")
        self.url = url
        self._attempts_max = attempts_max
        self._retry_pause_seconds = retry_pause_seconds
        self._sleep = sleep
        headers = {"User-Agent": "flashpay-sms/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            headers=headers,
            transport=transport,
            follow_redirects=False,
        )

    def send(self, message: Message) -> None:
        if _CARD_NUMBER_LIKE.search(message.text):
            raise DeliveryError("refused to send a text that looks like it holds a card number")
        body = {
            "message_id": f"{message.purpose}:{message.reference}",
            "to": message.phone,
            "text": message.text,
        }
        to = mask_phone(message.phone)
        pause = self._retry_pause_seconds
        last_problem = "no attempt made"
        for attempt in range(1, self._attempts_max + 1):
            if attempt > 1:
                self._sleep(pause)
                pause *= 2
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TransportError as exc:
                last_problem, retry = type(exc).__name__, True
            else:
                if response.is_success:
                    logger.info(
                        "SMS to %s (%s %s) handed to the gateway (attempt %d, HTTP %d)",
                        to, message.purpose, message.reference, attempt, response.status_code,
                    )  # fmt: skip
                    return
                last_problem, retry = f"HTTP {response.status_code}", _retried(response)
            logger.warning(
                "SMS to %s (%s %s): attempt %d of %d failed: %s",
                to, message.purpose, message.reference, attempt, self._attempts_max, last_problem,
            )  # fmt: skip
            if not retry:
                break  # the gateway refused this message: sending it again will not help
        raise DeliveryError(f"the SMS gateway did not take the message to {to}: {last_problem}")

    def close(self) -> None:
        self._client.close()


def _retried(response: httpx.Response) -> bool:
    """Whether an unsuccessful answer may succeed when sent again (5xx, 429)."""
    return response.is_server_error or response.status_code in _RETRIED_STATUSES
