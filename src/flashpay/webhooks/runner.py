"""Where the deriver and the worker run (decision 0024):

- every ``flashpay serve`` worker runs a **deriver thread** (``start_deriver``), so the event
  feed — and the POS page's live "paid" — is live whenever the API is, with no other process to
  start; derivers in several workers take turns on one lock and cost one indexed query a poll
  when there is nothing new;
- **deliveries** (outbound HTTP, retries, leases) run in their own process,
  ``flashpay webhooks deliver``, which also derives (so it works with no server up). A slow or
  hostile receiver then never holds an API worker's threads, and the worker can be scaled,
  stopped or killed on its own: its leases make a kill lose nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flashpay.platform import Platform
from flashpay.webhooks.delivery import Worker
from flashpay.webhooks.derive import Deriver

JOIN_SECONDS = 5.0


def start_deriver(platform: Platform) -> Callable[[], None]:
    """Start a daemon thread deriving ``platform``'s events; returns the function that stops it."""
    stop = threading.Event()
    deriver = Deriver(platform)
    thread = threading.Thread(
        target=deriver.run, args=(stop,), name="webhooks-deriver", daemon=True
    )
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(JOIN_SECONDS)

    return halt


def run_worker(
    platform: Platform,
    stop: threading.Event,
    *,
    lease_seconds: float,
    concurrency: int,
    derive: bool = True,
) -> None:
    """Deliver until ``stop`` (deriving in a second thread unless ``derive`` is false)."""
    halt = start_deriver(platform) if derive else None
    worker = Worker(platform, lease_seconds=lease_seconds, concurrency=concurrency)
    try:
        worker.run(stop)
    finally:
        worker.close()
        if halt is not None:
            halt()
