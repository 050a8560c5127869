"""The ``flashpay`` entry point: one typer app with a sub-app per domain.

The CLI's composition root: the one module that imports every domain's commands (as
``flashpay.app`` is the one that imports every router). A domain's ``cli`` module builds on
``flashpay.cli.common`` and is added here, one line each; ``serve`` is ``flashpay.cli.serve``.
"""

from __future__ import annotations

import typer

from flashpay import __version__
from flashpay.auth import cli as apikey_cli
from flashpay.chain import cli as chain_cli
from flashpay.cli import db
from flashpay.cli.serve import serve
from flashpay.institutions import cli as network_cli
from flashpay.ledger import cli as ledger_cli
from flashpay.notify import cli as dev_cli
from flashpay.payments import cli as pay_cli
from flashpay.promotions import cli as promo_cli
from flashpay.qr import cli as qr_cli
from flashpay.settlement import cli as settlement_cli
from flashpay.sim import cli as sim_cli
from flashpay.transit import cli as transit_cli
from flashpay.wallet import issuer_cli
from flashpay.webhooks import cli as webhooks_cli

app = typer.Typer(
    name="flashpay",
    help="flashpay: an open-source mobile payment network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(qr_cli.app, name="qr")
app.add_typer(chain_cli.app, name="chain")
app.add_typer(chain_cli.witness_app, name="witness")
app.command("demo")(sim_cli.demo)
app.add_typer(apikey_cli.app, name="apikey")
app.add_typer(network_cli.app, name="network")
app.add_typer(pay_cli.app, name="pay")
app.command("serve")(serve)
app.add_typer(issuer_cli.app, name="issuer")
app.add_typer(dev_cli.app, name="dev")
app.add_typer(promo_cli.app, name="promo")
app.add_typer(webhooks_cli.app, name="webhooks")
app.add_typer(transit_cli.app, name="transit")
app.add_typer(settlement_cli.app, name="settlement")


@app.command("version")
def version() -> None:
    """Print flashpay's version."""
    typer.echo(__version__)


def main() -> None:
    app()
