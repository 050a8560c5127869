"""``flashpay issuer``: what an issuer does from its terminal. ``enrol`` runs issuer enrolment.

    flashpay issuer enrol cards.txt --institution 2      # enrol the cards listed in cards.txt

The file names the cards by the ids the network gave them when the issuer recorded them (``POST
/v1/issuer/cards`` answers them as ``id``): one card id per line, or the first column of a CSV
file whose header may be ``card_id``; blank lines and lines starting with ``#`` are skipped. At
most ``ENROL_BATCH_MAX`` cards per file, enrolled all or nothing (``enrol_cards``,
decision 0012): a refused card is reported with its line and nothing is written. Sending the file
again is harmless. Exit status: 0 enrolled, 1 refused by the network, 2 a bad file or option.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flashpay.cli.common import DataDirOption, DbOption, console, err_console, resolve_db
from flashpay.errors import RefusedError
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import get_institution
from flashpay.platform import Platform
from flashpay.wallet.enrolment import ENROL_BATCH_MAX, enrol_cards
from flashpay.wallet.errors import WalletError

app = typer.Typer(help="What an issuer does: enrol its cardholders' cards.", no_args_is_help=True)

CARD_FILE_BYTES_MAX = 1024 * 1024
CARD_ID_MAX = 2**63 - 1


class CardFileRefusal(StrEnum):
    """Why a card file was refused, in the order ``parse_card_file`` checks."""

    NOT_A_CARD_ID = "not_a_card_id"
    TOO_MANY_CARDS = "too_many_cards"
    NO_CARD_IDS = "no_card_ids"


class CardFileError(RefusedError):
    """The card file cannot be read; the message names the line."""

    reason: CardFileRefusal


@dataclass(frozen=True, slots=True)
class CardFile:
    card_ids: tuple[int, ...]
    line_numbers: tuple[int, ...]  # the file line of each card id, 1-based


def parse_card_file(text: str) -> CardFile:
    """The card ids of an enrolment file (format in the module docstring)."""
    card_ids: list[int] = []
    line_numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        field = line.split(",", 1)[0].strip()
        if not field or field.startswith("#"):
            continue
        if field.lower() == "card_id" and not card_ids:
            continue  # a CSV header
        if not field.isdigit() or not 1 <= int(field) <= CARD_ID_MAX:
            message = f"line {number}: {field[:30]!r} is not a card id"
            raise CardFileError(CardFileRefusal.NOT_A_CARD_ID, message)
        if len(card_ids) == ENROL_BATCH_MAX:
            message = f"line {number}: at most {ENROL_BATCH_MAX} cards per file; split it"
            raise CardFileError(CardFileRefusal.TOO_MANY_CARDS, message)
        card_ids.append(int(field))
        line_numbers.append(number)
    if not card_ids:
        raise CardFileError(CardFileRefusal.NO_CARD_IDS, "the file lists no card ids")
    return CardFile(tuple(card_ids), tuple(line_numbers))


@app.command("enrol")
def enrol(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Card ids, one a line (or CSV)."),
    ],
    institution: Annotated[int, typer.Option("--institution", help="The issuer's id.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Enrol the listed cards into their holders' wallets (issuer enrolment, all or nothing)."""
    if file.stat().st_size > CARD_FILE_BYTES_MAX:
        err_console.print(f"{file}: larger than {CARD_FILE_BYTES_MAX} bytes", highlight=False)
        raise typer.Exit(2)
    try:
        parsed = parse_card_file(file.read_text(encoding="utf-8-sig"))
    except (CardFileError, UnicodeDecodeError) as exc:
        err_console.print(f"{file}: {exc}", highlight=False)
        raise typer.Exit(2) from exc
    platform = Platform.open(resolve_db(db, data_dir), data_directory=data_dir)
    try:
        issuer = get_institution(platform=platform, institution_id=institution)
        if issuer is None or issuer.kind is not InstitutionKind.ISSUER:
            err_console.print(f"institution {institution} is not an issuer", highlight=False)
            raise typer.Exit(2)
        try:
            enrolled = enrol_cards(platform=platform, issuer=issuer, card_ids=parsed.card_ids)
        except WalletError as exc:
            where = "" if exc.index is None else f"line {parsed.line_numbers[exc.index]}, "
            err_console.print(
                f"refused ({exc.code}): {where}{exc}; nothing was enrolled", highlight=False
            )
            raise typer.Exit(1) from exc
    finally:
        platform.close()
    table = Table("line", "card id", "card", "wallet card", "default", title="enrolled")
    for line, card in zip(parsed.line_numbers, enrolled, strict=True):
        default = "yes" if card.is_default else ""
        table.add_row(str(line), str(card.card.id), card.card.masked, str(card.id), default)
    console.print(table)
    console.print(
        f"{len({card.id for card in enrolled})} cards of {issuer.code} are in their holders' "
        "wallets",
        soft_wrap=True,
        highlight=False,
    )
