"""``flashpay pay``: try a payment from the terminal, against the database (``--db``).

    flashpay pay code --phone 13800000001 --password '…' --card 1        # show a payment code
    flashpay pay collect --merchant 3 --amount 12.50 CODE                # the shop scans it
    flashpay pay scan --phone 13800000001 --password '…' --card 1 --amount 9.90 --pin 135790 PAYLOAD
    flashpay pay recover                                                 # settle half-done records

The user is identified by phone and password (as the app's login does); the merchant by id (the
operator's terminal). Each command prints the payment (or the code) as JSON; a declined payment
exits 1, a refused request 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import segno
import typer

from flashpay.cards.service import CardError
from flashpay.cli.common import DataDirOption, DbOption, err_console, resolve_db
from flashpay.money import Money, MoneyError
from flashpay.payments.attempts import Payment, PaymentStatus
from flashpay.payments.codes import issue_code
from flashpay.payments.errors import PaymentError
from flashpay.payments.recovery import recover_payments
from flashpay.payments.submit import collect_with_code, pay_scanned_code
from flashpay.payments.transfer_queries import recover_transfers
from flashpay.platform import Platform
from flashpay.wallet.errors import WalletError
from flashpay.wallet.sessions import login

app = typer.Typer(help="Try QR payments from the terminal.", no_args_is_help=True)

Phone = Annotated[str, typer.Option(help="The wallet user's phone number.")]
Password = Annotated[str, typer.Option(help="The wallet user's password.", prompt=True,
                                       hide_input=True)]  # fmt: skip
CardId = Annotated[int, typer.Option("--card", help="The wallet card id (see GET /v1/cards).")]


def _open(db: str | None, data_dir: Any) -> Platform:
    return Platform.open(resolve_db(db, data_dir), data_directory=data_dir)


def _user(platform: Platform, phone: str, password: str) -> int:
    try:
        session = login(platform=platform, phone=phone, password=password)
    except WalletError as exc:
        err_console.print(f"cannot log in: {exc}")
        raise typer.Exit(2) from exc
    return session.user_id


def _money(text: str) -> Money:
    try:
        return Money.parse(text, "CNY")
    except MoneyError as exc:
        err_console.print(f"bad amount: {exc}")
        raise typer.Exit(2) from exc


def _print(payment: Payment) -> None:
    typer.echo(
        json.dumps(
            {
                "id": str(payment.id),
                "kind": payment.kind.value,
                "status": payment.status.value,
                "decline_reason": payment.decline_reason and payment.decline_reason.value,
                "amount": Money.of(payment.amount).decimal_text(),
                "merchant": payment.merchant_name,
                "card": payment.card_display,
                "voucher": payment.voucher,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    if payment.status is PaymentStatus.DECLINED:
        raise typer.Exit(1)


@app.command("code")
def code(
    phone: Phone, password: Password, card: CardId, db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:  # fmt: skip
    """Show a one-time payment code (QR in the terminal, and the 19 digits); valid 60 s."""
    platform = _open(db, data_dir)
    try:
        user_id = _user(platform, phone, password)
        issued = issue_code(platform=platform, user_id=user_id, wallet_card_id=card)
    except (PaymentError, CardError) as exc:
        err_console.print(f"cannot issue a code: {exc}")
        raise typer.Exit(2) from exc
    finally:
        platform.close()
    segno.make_qr(issued.qr_payload, error="m").terminal(compact=True)
    typer.echo(json.dumps({"qr_payload": issued.qr_payload, "numeric": issued.numeric}))


@app.command("collect")
def collect(
    code_text: Annotated[str, typer.Argument(metavar="CODE", help="Payload or 19 digits.")],
    merchant: Annotated[int, typer.Option(help="The merchant id.")],
    amount: Annotated[str, typer.Option(help="The amount, e.g. 12.50.")],
    terminal: Annotated[str, typer.Option(help="The terminal code.")] = "T0001",
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The merchant's terminal collects with a payment code the customer shows."""
    platform = _open(db, data_dir)
    try:
        payment = collect_with_code(platform=platform, merchant_id=merchant, code=code_text,
                                       amount=_money(amount), terminal_code=terminal)  # fmt: skip
    except PaymentError as exc:
        err_console.print(f"cannot collect: {exc}")
        raise typer.Exit(2) from exc
    finally:
        platform.close()
    _print(payment)


@app.command("scan")
def scan(
    payload: Annotated[str, typer.Argument(help="The merchant code's payload you scanned.")],
    phone: Phone,
    password: Password,
    card: CardId,
    amount: Annotated[str | None, typer.Option(help="Amount for a static code.")] = None,
    pin: Annotated[str | None, typer.Option(help="The payment PIN (above the free limit).")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Pay a merchant's code (scan-to-pay)."""
    platform = _open(db, data_dir)
    try:
        user_id = _user(platform, phone, password)
        payment = pay_scanned_code(
            platform=platform, user_id=user_id, payload=payload, wallet_card_id=card,
            amount=_money(amount) if amount else None, pin=pin,
        )  # fmt: skip
    except PaymentError as exc:
        err_console.print(f"cannot pay: {exc}")
        raise typer.Exit(2) from exc
    finally:
        platform.close()
    _print(payment)


@app.command("recover")
def recover(
    older_than: Annotated[
        int, typer.Option(min=0, help="Settle records left 'created' for this many seconds.")
    ] = 60,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Settle transfers and payments a crashed process left half-way (from what the ledger
    holds); safe to run at any time. `flashpay serve` runs it when it starts."""
    platform = _open(db, data_dir)
    try:
        transfers = recover_transfers(platform=platform, older_than_seconds=older_than)
        settled = recover_payments(platform=platform, older_than_seconds=older_than)
    finally:
        platform.close()
    typer.echo(json.dumps({"transfers_settled": transfers, "payments_settled": settled}))
