"""Issue 12: retried requests under SIGKILL never complete twice under one Idempotency-Key.

One bounded round of ``killharness`` per database (SQLite and PostgreSQL): 16 clients send P2P
transfers and QR payments through ``flashpay serve --workers 2`` for ``TRAFFIC_SECONDS``, each
request with its own key and retried with the same key until it has a final answer, while the
server's process group or one of its workers is SIGKILLed every few seconds. The idempotency lease
is shortened (``LEASE_SECONDS``) so a retry takes over a dead request's claim within the round.

Marked ``slow`` (multi-process) but bounded, so ``make test`` (``pytest -n 2``) runs it: about a
minute of wall time per database on the 2-core machine. ``benchmarks/kill9_soak.py`` runs longer
and repeated rounds.
"""

from __future__ import annotations

import pytest
from killharness import Options, run_round

TRAFFIC_SECONDS = 15.0
LEASE_SECONDS = 2
RETRY_SECONDS_MAX = 45.0

pytestmark = pytest.mark.slow


def test_no_operation_completes_twice_or_is_lost_under_kill_9(database_url, tmp_path):
    options = Options(
        traffic_seconds=TRAFFIC_SECONDS,
        lease_seconds=LEASE_SECONDS,
        retry_seconds_max=RETRY_SECONDS_MAX,
    )
    report = run_round(options, tmp_path, database_url=database_url)
    print(report.row(), report.kinds, report.timing)  # shown with -s or on failure
    # The round really exercised the crash path: the server died under traffic, clients retried.
    assert report.kills + report.worker_kills >= 1, report.row()
    assert report.operations > 0, report.row()
    assert report.retries > 0, report.row()
    assert report.unanswered == 0, report.row()
    assert report.duplicates == 0, report.problems[:20]
    assert report.losses == 0, report.problems[:20]
    assert report.phantoms == 0, report.problems[:20]
    assert report.extra_records == 0, report.row()
    assert report.problems == [], report.problems[:20]
