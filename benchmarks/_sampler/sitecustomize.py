"""A CPU sampler for ``flashpay serve``'s workers, loaded through ``sitecustomize`` by
``benchmarks/profile_request.py`` (``PYTHONPATH=benchmarks/_sampler:src``).

Only when ``$FLASHPAY_SAMPLE_DIR`` is set: a daemon thread wakes every ``INTERVAL_S``, reads the
CPU clock of every other thread of the process (``pthread_getcpuclockid``) and charges the CPU
each thread used since the last wake-up to the *layer* of the stack it is in now (the innermost
frame that belongs to a layer; library frames — SQLAlchemy, psycopg, pydantic, hashing — are
charged to the layer that called them, and counted apart as "of which in the database driver"
when they are SQLAlchemy or psycopg). Cumulative figures are written twice a second to
``$FLASHPAY_SAMPLE_DIR/cpu-<pid>.json``; the benchmark takes the difference between two reads.

Why not cProfile or pyinstrument: both follow one thread, and a request runs on the event loop
and on anyio's worker threads in turn; py-spy is not installed here. Charging a thread's CPU
delta to its current stack is what a sampling profiler does, with CPU time in place of wall time.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

INTERVAL_S = float(os.environ.get("FLASHPAY_SAMPLE_INTERVAL_S", "0.005"))
WRITE_EVERY_S = 0.5

# (path fragment, function name or None, layer), tried in order for each frame, innermost first.
OWNERS: list[tuple[str, str | None, str]] = [
    ("flashpay/ledger/", None, "ledger"),
    ("flashpay/chain/", None, "audit-log outbox"),
    ("flashpay/payments/limits.py", None, "limits"),
    ("flashpay/wallet/pin.py", None, "PIN check"),
    ("flashpay/payments/pins.py", None, "PIN check"),
    ("flashpay/api/idempotency.py", None, "idempotency"),
    ("flashpay/idempotency.py", None, "idempotency"),
    ("flashpay/api/security.py", None, "authentication"),
    ("flashpay/auth/", None, "authentication"),
    ("flashpay/wallet/sessions.py", "authenticate", "authentication"),
    ("flashpay/api/deps.py", None, "authentication"),
    ("flashpay/api/errors.py", None, "response"),
    ("flashpay/api/metrics.py", None, "metrics"),
    ("flashpay/batching.py", None, "group commit"),
    ("flashpay/payments/router.py", None, "route handler"),
    ("flashpay/payments/qr_router.py", None, "route handler"),
    ("flashpay/payments/schemas.py", None, "validation"),
    ("flashpay/payments/", None, "payments service"),
    ("flashpay/wallet/", None, "wallet (payer, sessions)"),
    ("flashpay/cards/", None, "cards, merchants, promotions"),
    ("flashpay/merchants/", None, "cards, merchants, promotions"),
    ("flashpay/promotions", None, "cards, merchants, promotions"),
    ("flashpay/db/", None, "database helpers (flashpay.db)"),
    ("flashpay/", None, "other flashpay"),
    ("fastapi/dependencies/", None, "validation"),
    ("fastapi/routing.py", "serialize_response", "response"),
    ("fastapi/encoders.py", None, "response"),
    ("starlette/responses.py", None, "response"),
    ("fastapi/", None, "routing & middleware (FastAPI/Starlette)"),
    ("starlette/", None, "routing & middleware (FastAPI/Starlette)"),
    ("anyio/", None, "thread hand-offs (anyio)"),
    ("concurrent/futures", None, "thread hand-offs (anyio)"),
    ("uvicorn/", None, "HTTP server (uvicorn, httptools)"),
    ("httptools", None, "HTTP server (uvicorn, httptools)"),
    ("asyncio/", None, "HTTP server (uvicorn, httptools)"),
    ("uvloop", None, "HTTP server (uvicorn, httptools)"),
]
DRIVER = ("sqlalchemy/", "psycopg/", "psycopg_pool/")


def _layer(frame: object) -> tuple[str, bool]:
    driver = False
    f = frame
    while f is not None:
        code = f.f_code  # type: ignore[attr-defined]
        path = code.co_filename
        for fragment, name, layer in OWNERS:
            if fragment in path and (name is None or code.co_name == name):
                return layer, driver
        if any(d in path for d in DRIVER):
            driver = True
        f = f.f_back  # type: ignore[attr-defined]
    return "other (threads idle-spinning, interpreter)", driver


def _run(directory: str) -> None:
    me = threading.get_ident()
    clocks: dict[int, int] = {}
    last: dict[int, float] = {}
    cpu: dict[str, float] = {}
    driver_cpu: dict[str, float] = {}
    path = os.path.join(directory, f"cpu-{os.getpid()}.json")
    next_write = time.monotonic() + WRITE_EVERY_S
    while True:
        time.sleep(INTERVAL_S)
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            try:
                clock = clocks.get(ident)
                if clock is None:
                    clock = clocks[ident] = time.pthread_getcpuclockid(ident)
                now = time.clock_gettime(clock)
            except OSError:
                continue
            delta = now - last.get(ident, now)
            last[ident] = now
            if delta <= 0:
                continue
            layer, in_driver = _layer(frame)
            cpu[layer] = cpu.get(layer, 0.0) + delta
            if in_driver:
                driver_cpu[layer] = driver_cpu.get(layer, 0.0) + delta
        if time.monotonic() >= next_write:
            next_write += WRITE_EVERY_S
            times = os.times()
            snapshot = {
                "cpu": cpu,
                "driver": driver_cpu,
                "sampler": time.thread_time(),
                "process": times.user + times.system,
            }
            with open(path + ".tmp", "w") as out:
                json.dump(snapshot, out)
            os.replace(path + ".tmp", path)


if os.environ.get("FLASHPAY_SAMPLE_DIR"):
    threading.Thread(
        target=_run, args=(os.environ["FLASHPAY_SAMPLE_DIR"],), daemon=True, name="cpu-sampler"
    ).start()
