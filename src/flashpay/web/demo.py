"""What ``flashpay demo`` prints last: the pages' three URLs and a login for each.

The demo's users share a public password (``flashpay.sim.live.PASSWORD``), so a wallet login is
any demo phone; a merchant and the operator log in with API keys, created here once per demo
run (the demo's database is thrown away by the next run).
"""

from __future__ import annotations

from pathlib import Path

from flashpay.auth import PrincipalKind, create_api_key
from flashpay.institutions.service import network_institution
from flashpay.merchants.service import list_merchants
from flashpay.platform import Platform


def demo_logins(
    url: str, *, data_directory: Path, phone: str, password: str, base_url: str
) -> list[str]:
    """The lines to print: a merchant key (the first merchant's), the operator's key."""
    platform = Platform.open(url, data_directory=data_directory)
    try:
        merchant = list_merchants(platform=platform)[0]
        merchant_key = create_api_key(
            platform=platform, kind=PrincipalKind.MERCHANT, principal_id=merchant.id
        )
        operator = network_institution(platform=platform)
        operator_key = create_api_key(
            platform=platform,
            kind=PrincipalKind.INSTITUTION,
            principal_id=operator.id,
            network_admin=True,
        )
    finally:
        platform.close()
    return [
        f"Pages (after `flashpay serve`): wallet {base_url}/wallet · POS {base_url}/pos · "
        f"console {base_url}/console",
        f"  wallet login: phone {phone}, password {password}",
        f"  POS login ({merchant.display_name}): API key {merchant_key.key}",
        f"  console login (network operator): API key {operator_key.key}",
    ]
