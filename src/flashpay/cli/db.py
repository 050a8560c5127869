"""``flashpay db``: schema migrations."""

from __future__ import annotations

import typer

from flashpay import db as database
from flashpay.cli.common import DataDirOption, DbOption, console, resolve_db

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Create or upgrade the schema to the newest revision of every domain."""
    url = resolve_db(db, data_dir)
    database.upgrade(url)
    heads = ", ".join(sorted(database.current_heads(url)))
    console.print(f"[green]schema up to date[/green] at {url} ({heads})")


@app.command("heads")
def heads(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Print the revisions the database is at."""
    url = resolve_db(db, data_dir)
    for head in sorted(database.current_heads(url)):
        console.print(head)
