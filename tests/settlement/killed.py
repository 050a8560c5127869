"""A settlement step in its own process, paused at a chosen point so the test can SIGKILL it.

``python killed.py close URL NOW_NS END_NS DIR``: closes the window, but after its files are
written and its results digested — before the transaction that records it — prints
``DIGEST <hex>`` and sleeps. ``python killed.py settle URL NOW_NS WINDOW_ID``: settles, but right
after the ledger has posted the settlement chain — before the window is marked — prints
``POSTED`` and sleeps. The pause is a wrapper around the real function (it runs in full first);
nothing of the step itself is replaced.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from flashpay.clock import FakeClock
from flashpay.ledger.service import Ledger
from flashpay.platform import Platform
from flashpay.settlement import close as close_module
from flashpay.settlement.close import close_window
from flashpay.settlement.settle import settle_window
from flashpay.settlement.windows import Schedule

SCHEDULE = Schedule(cutoffs=("06:00", "12:00", "18:00", "23:00"), close_delay_seconds=5)


def _pause(line: str) -> None:
    print(line, flush=True)
    time.sleep(600)


def main() -> None:
    step, url, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
    platform = Platform.open(url, clock=FakeClock(now))
    if step == "close":
        digest = close_module.results_digest

        def digest_then_pause(*args: Any) -> str:
            value = digest(*args)
            _pause(f"DIGEST {value}")
            return value

        close_module.results_digest = digest_then_pause  # type: ignore[assignment]
        close_window(platform=platform, end_ns=int(sys.argv[4]), schedule=SCHEDULE,
                     directory=Path(sys.argv[5]))  # fmt: skip
    else:
        post = Ledger.create_transfers

        def post_then_pause(self: Ledger, *args: Any, **kwargs: Any) -> Any:
            results = post(self, *args, **kwargs)
            _pause("POSTED")
            return results

        Ledger.create_transfers = post_then_pause  # type: ignore[method-assign]
        settle_window(platform=platform, window_id=int(sys.argv[4]))


if __name__ == "__main__":
    main()
