"""``flashpay serve``: the HTTP API under uvicorn.

``FLASHPAY_ENV`` decides where one-time codes go (decision 0015): ``development`` (the default)
keeps them in the development outbox, shown at ``/dev/messages`` to loopback clients and by
``flashpay dev messages``; ``production`` sends them to ``FLASHPAY_SMS_GATEWAY_URL`` and refuses to
start without it. The settings are checked here, once, before any worker starts.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from typing import Annotated

import typer
import uvicorn

from flashpay import config
from flashpay.api.access_log import log_config
from flashpay.api.runtime import HASH_KEY_ENV, request_hash_key
from flashpay.cli.common import DataDirOption, DbOption, err_console, resolve_db
from flashpay.keys import KeyRing
from flashpay.notify.environment import check_notifier_settings

WORKERS_MAX = 64
# flashpay.api.metrics.MULTIPROC_ENV, named here without importing prometheus-client into this
# process before the variable is set (the library picks its value store at import).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=WORKERS_MAX, help="Worker processes (uvicorn).")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request line.")
    ] = True,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the HTTP API (run `flashpay db upgrade` first; /v1/ready says if the schema is old)."""
    url = resolve_db(db, data_dir)
    try:
        env = check_notifier_settings()
    except config.ConfigError as exc:
        err_console.print(f"cannot serve: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    # Workers are separate processes: they find the database and the shared idempotency hash key
    # in the environment, so every worker compares request hashes with the same key.
    os.environ[config.DATABASE_URL_ENV] = url
    os.environ[HASH_KEY_ENV] = request_hash_key(data_dir).hex()
    if data_dir is not None:
        os.environ[config.DATA_DIR_ENV] = str(data_dir)
    KeyRing.load(data_dir)  # create the key file once, before the workers read it
    # Prometheus' per-process value files (flashpay.api.metrics), for more than one worker: a
    # fresh directory per serve, so counters start at zero and no earlier run's pids are merged.
    # One worker runs in this process and keeps its values in memory.
    metrics_dir = None
    if workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="flashpay-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    err_console.print(f"flashpay API on http://{host}:{port} ({workers} worker(s), {env.value})")
    if env is config.Environment.DEVELOPMENT:
        err_console.print(
            f"DEVELOPMENT ONLY: one-time codes are not sent by SMS; read them at "
            f"http://127.0.0.1:{port}/dev/messages or with `flashpay dev messages` "
            "(FLASHPAY_ENV=production turns this off)",
            highlight=False,
        )
        if not _is_loopback(host):
            err_console.print(
                f"warning: listening on {host} in development; /dev/messages still answers only "
                "clients on 127.0.0.1",
                highlight=False,
            )
    try:
        _run(host, port, workers, access_log)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(host: str, port: int, workers: int, access_log: bool) -> None:
    uvicorn.run(
        "flashpay.app:create_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_config=log_config(),  # the access log without credentials in query strings
        log_level="info",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
