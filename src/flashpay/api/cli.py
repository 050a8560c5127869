"""``flashpay serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from flashpay import config
from flashpay.api.access_log import log_config
from flashpay.api.runtime import HASH_KEY_ENV, request_hash_key
from flashpay.cli.common import DataDirOption, DbOption, err_console, resolve_db
from flashpay.keys import KeyRing

WORKERS_MAX = 64


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
    # Workers are separate processes: they find the database and the shared idempotency hash key
    # in the environment, so every worker compares request hashes with the same key.
    os.environ[config.DATABASE_URL_ENV] = url
    os.environ[HASH_KEY_ENV] = request_hash_key(data_dir).hex()
    if data_dir is not None:
        os.environ[config.DATA_DIR_ENV] = str(data_dir)
    KeyRing.load(data_dir)  # create the key file once, before the workers read it
    err_console.print(f"flashpay API on http://{host}:{port} ({workers} worker(s))")
    uvicorn.run(
        "flashpay.api.app:create_app_from_environment",
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
