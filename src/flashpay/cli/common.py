"""Options and helpers shared by every CLI command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flashpay import config

console = Console()
# Errors are one line each, whatever the terminal width, so scripts can grep them.
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///path or postgresql://…); default $FLASHPAY_DATABASE_URL, "
        "else a SQLite file in the data directory.",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default $FLASHPAY_DATA_DIR, else ./.flashpay).",
        show_default=False,
    ),
]


def resolve_db(db: str | None, data_dir: Path | None = None) -> str:
    return config.database_url(db, data_directory=data_dir)
