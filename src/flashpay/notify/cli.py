"""``flashpay dev``: development helpers. ``flashpay dev messages`` shows the development outbox.

    flashpay dev messages                        # the newest 20 messages
    flashpay dev messages --phone 13800000001    # the messages to one phone

The one-time codes a development ``flashpay serve`` sends land in the development outbox
(``flashpay.notify.outbox``), in the database, so this command reads them from any terminal. It
refuses to run when ``FLASHPAY_ENV=production``: there codes go only to the SMS gateway.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flashpay import config
from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.clock import to_datetime
from flashpay.db import create_engine
from flashpay.notify.outbox import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, list_messages

app = typer.Typer(help="Development helpers (off in production).", no_args_is_help=True)

TITLE = "DEVELOPMENT ONLY — messages flashpay would have sent by SMS (not an SMS gateway)"


@app.command("messages")
def messages(
    phone: Annotated[
        str | None, typer.Option(help="Only the messages to this phone number.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=LIST_LIMIT_MAX, help="How many messages, newest first.")
    ] = LIST_LIMIT_DEFAULT,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show the development outbox: the SMS messages (one-time codes) flashpay sent."""
    try:
        env = config.environment()
    except config.ConfigError as exc:
        err_console.print(str(exc), highlight=False)
        raise typer.Exit(2) from exc
    if env is config.Environment.PRODUCTION:
        err_console.print(
            "the development outbox is off in production (FLASHPAY_ENV=production): "
            "one-time codes go to the SMS gateway only",
            highlight=False,
        )
        raise typer.Exit(2)
    engine = create_engine(resolve_db(db, data_dir))
    try:
        found = list_messages(engine=engine, phone=phone, limit=limit)
    finally:
        engine.dispose()
    table = Table(title=TITLE, title_style="bold white on red", caption=_caption(phone))
    for column in ("id", "sent (UTC)", "to", "for", "code", "text"):
        table.add_column(column, overflow="fold")
    for message in found:
        table.add_row(
            str(message.id),
            to_datetime(message.sent_at_ns).strftime("%Y-%m-%d %H:%M:%S"),
            escape(message.phone),
            escape(f"{message.purpose} {message.reference}"),
            f"[bold]{escape(message.code)}[/bold]",
            escape(message.text),
        )
    console.print(table)
    if not found:
        console.print("no messages yet", highlight=False)


def _caption(phone: str | None) -> str:
    who = f" to {phone}" if phone else ""
    return f"newest first{who}; also at http://127.0.0.1:8000/dev/messages (development only)"
