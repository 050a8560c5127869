"""Webhook lag under load: from a payment's commit to its event in the feed and to its delivery.

The QR-payments load of ``api_qr_bench.py`` (``flashpay serve --workers N`` on a fresh PostgreSQL
database, 50 merchants, wrk alternating scan-to-pay and show-to-pay) with every merchant's
webhook endpoint pointed at a receiver in this process, and ``flashpay webhooks deliver
--no-derive`` running beside the server (the server's workers derive, as in production). Lags
are measured from the event's own ``created_at`` — the ledger timestamp of the payment's chain,
taken as its batch starts, so the commit is included:

- *feed lag*: ``derived_at - created_at`` (when the event row was committed, from the database);
- *delivery lag*: when the receiver got the POST, minus ``created_at``.

    .venv/bin/python benchmarks/webhooks_lag_bench.py --seconds 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from api_p2p_bench import (
    ADMIN_URL_DEFAULT,
    P2P_USERS,
    _drop_database,
    _fresh_database,
    _p2p_members,
    _start_server,
)
from api_qr_bench import _LUA, CODES_PER_SECOND, HOT_SHARE, _codes, _shops
from flashpay.platform import Platform
from flashpay.webhooks.endpoints import create_endpoint

DRAIN_SECONDS_MAX = 60


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(ordered),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
    }


def _receiver(arrivals: list[tuple[int, int]]) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            now = time.time_ns()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            with lock:
                arrivals.append((now, int(body["data"]["chain_id"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=os.environ.get("FLASHPAY_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    admin_url = args.admin_url or ADMIN_URL_DEFAULT
    url = _fresh_database(admin_url)
    data_dir = Path(tempfile.mkdtemp(prefix="flashpay-webhooks-bench-"))
    arrivals: list[tuple[int, int]] = []
    receiver = _receiver(arrivals)
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    server = deliver = None
    try:
        members = _p2p_members(url, data_dir, P2P_USERS)
        platform = Platform.open(url, data_directory=data_dir)
        try:
            shops = _shops(platform)
            for _key, _payload, merchant_id in shops:
                create_endpoint(platform=platform, merchant_id=merchant_id, url=hook_url)
            server, base_url = _start_server(url, args.workers, data_dir)
            deliver = subprocess.Popen(
                [sys.executable, "-m", "flashpay.cli", "webhooks", "deliver", "--db", url,
                 "--no-derive", "--concurrency", "8"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            codes = _codes(platform, members, CODES_PER_SECOND * args.seconds // 2)
            (data_dir / "codes.tsv").write_text("\n".join(codes) + "\n")
            (data_dir / "members.tsv").write_text(
                "".join(f"{m.token}\t{m.card_id}\n" for m in members)
            )
            (data_dir / "shops.tsv").write_text("".join(f"{k}\t{p}\n" for k, p, _ in shops))
            lua = _LUA.replace("@@DIR@@", str(data_dir)).replace("@@HOT@@", str(HOT_SHARE))
            with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
                script.write(lua)
            run = subprocess.run(
                ["wrk", "-t", "2", "-c", str(args.concurrency), "-d", f"{args.seconds}s",
                 "-s", script.name, base_url],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            os.unlink(script.name)
            requests = next(
                int(line.split()[1])
                for line in run.stdout.splitlines()
                if line.startswith("RESULT ")
            )
            with platform.engine.connect() as connection:
                completed = connection.execute(
                    sa.text("SELECT count(*) FROM payments WHERE status = 'completed'")
                ).scalar_one()
            deadline = time.monotonic() + DRAIN_SECONDS_MAX
            while len(arrivals) < completed and time.monotonic() < deadline:
                time.sleep(0.2)
            with platform.engine.connect() as connection:
                feed = [
                    (int(d) - int(c)) / 1e6
                    for d, c in connection.execute(
                        sa.text("SELECT derived_at_ns, created_at_ns FROM webhook_events")
                    )
                ]
        finally:
            platform.close()
    finally:
        for process in (deliver, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
        receiver.shutdown()
        _drop_database(admin_url, url)
    delivered = [(now - created) / 1e6 for now, created in arrivals]
    result = {
        "payments_per_second": round(completed / args.seconds, 1),
        "requests": requests,
        "completed": completed,
        "feed_lag": _percentiles(feed),
        "delivery_lag": _percentiles(delivered),
    }
    print(f"webhook lag, PostgreSQL, flashpay serve --workers {args.workers}, "
          f"{args.concurrency} connections, {args.seconds} s")  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
