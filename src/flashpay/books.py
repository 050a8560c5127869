"""The network's books across the domains: a check that reads institutions, cards and merchants.

It lives above those domains (they own their tables; this module reads them only through their
owner functions): an institution's books include the ledger accounts of the cards it issued and
of the merchants it signed, and the institutions domain sits below both. ``flashpay ledger
check``, the demo and the tests run it after every day of traffic.
"""

from __future__ import annotations

from flashpay.cards.lookups import card_accounts
from flashpay.institutions.chart import AccountCode, institution_account_id
from flashpay.institutions.definition import InstitutionKind
from flashpay.institutions.service import list_institutions
from flashpay.ledger.service import QUERY_LIMIT_MAX
from flashpay.merchants.order_claims import merchant_accounts
from flashpay.platform import Platform


def check_books(*, platform: Platform) -> list[str]:
    """Problems with the institutions' books (empty when all is well): every institution's
    accounts balance on their own (debits = credits, posted and pending), and every mirrored
    pair agrees (issuer ``network_payable`` = network ``issuer_receivable[issuer]``, network
    ``issuer_payable[issuer]`` = issuer ``network_receivable``, network
    ``acquirer_payable[acquirer]`` = acquirer ``network_receivable``)."""
    members = list_institutions(platform=platform)
    network = next((i for i in members if i.kind is InstitutionKind.NETWORK), None)
    if network is None:
        return ["no network is loaded"]
    c = AccountCode
    own: dict[int, list[int]] = {i.id: [] for i in members}
    for inst in members:
        own[inst.id].append(institution_account_id(inst.code, c.PROMOTION_EXPENSE))
        if inst.kind is InstitutionKind.ISSUER:
            kinds = (c.NETWORK_PAYABLE, c.NETWORK_RECEIVABLE, c.INTERCHANGE_INCOME, c.CASH)
            own[inst.id] += [institution_account_id(inst.code, k) for k in kinds]
            own[network.id] += [
                institution_account_id(network.code, c.ISSUER_RECEIVABLE, inst.code),
                institution_account_id(network.code, c.ISSUER_PAYABLE, inst.code),
            ]
        elif inst.kind is InstitutionKind.ACQUIRER:
            own[inst.id] += [
                institution_account_id(inst.code, c.ACQUIRER_NETWORK_RECEIVABLE),
                institution_account_id(inst.code, c.MDR_INCOME),
            ]
            own[network.id].append(
                institution_account_id(network.code, c.ACQUIRER_PAYABLE, inst.code)
            )
    own[network.id].append(institution_account_id(network.code, c.FEE_INCOME))
    # The settlement bank's books: a settlement account per member and its clearing account;
    # each member's settlement deposit is in its own books (mirrored below).
    bank = next((i for i in members if i.kind is InstitutionKind.SETTLEMENT_BANK), None)
    settling = [i for i in members if i.kind is not InstitutionKind.SETTLEMENT_BANK]
    if bank is not None:
        own[bank.id].append(institution_account_id(bank.code, c.SETTLEMENT_CLEARING))
        for inst in settling:
            own[inst.id].append(institution_account_id(inst.code, c.SETTLEMENT_DEPOSIT))
            own[bank.id].append(institution_account_id(bank.code, c.SETTLEMENT_ACCOUNT, inst.code))
    with platform.engine.connect() as connection:
        for issuer_id, account_id in card_accounts(connection):
            own.setdefault(issuer_id, []).append(account_id)
        for acquirer_id, account_id in merchant_accounts(connection):
            own.setdefault(acquirer_id, []).append(account_id)
    ids = [a for accounts in own.values() for a in accounts]
    found = {
        a.id: a
        for start in range(0, len(ids), QUERY_LIMIT_MAX)  # the ledger's limit per look-up
        for a in platform.ledger.lookup_accounts(ids[start : start + QUERY_LIMIT_MAX])
    }
    problems: list[str] = []
    by_id = {i.id: i for i in members}
    for inst_id, accounts in own.items():
        present = [found[a] for a in accounts if a in found]
        debits = sum(a.debits_posted + a.debits_pending for a in present)
        credits = sum(a.credits_posted + a.credits_pending for a in present)
        if debits != credits:
            code = by_id[inst_id].code if inst_id in by_id else str(inst_id)
            problems.append(f"{code}: debits {debits} != credits {credits}")

    def net(account_id: int) -> int:
        a = found.get(account_id)
        return 0 if a is None else a.debits_posted - a.credits_posted

    for inst in members:
        pairs: list[tuple[str, int, int]] = []
        if inst.kind is InstitutionKind.ISSUER:
            pairs = [
                (
                    f"{inst.code} network_payable / issuer_receivable",
                    -net(institution_account_id(inst.code, c.NETWORK_PAYABLE)),
                    net(institution_account_id(network.code, c.ISSUER_RECEIVABLE, inst.code)),
                ),
                (
                    f"{inst.code} network_receivable / issuer_payable",
                    net(institution_account_id(inst.code, c.NETWORK_RECEIVABLE)),
                    -net(institution_account_id(network.code, c.ISSUER_PAYABLE, inst.code)),
                ),
            ]
        elif inst.kind is InstitutionKind.ACQUIRER:
            pairs = [
                (
                    f"{inst.code} network_receivable / acquirer_payable",
                    net(institution_account_id(inst.code, c.ACQUIRER_NETWORK_RECEIVABLE)),
                    -net(institution_account_id(network.code, c.ACQUIRER_PAYABLE, inst.code)),
                )
            ]
        if bank is not None and inst.kind is not InstitutionKind.SETTLEMENT_BANK:
            pairs.append(
                (
                    f"{inst.code} settlement_deposit / settlement_account",
                    net(institution_account_id(inst.code, c.SETTLEMENT_DEPOSIT)),
                    -net(institution_account_id(bank.code, c.SETTLEMENT_ACCOUNT, inst.code)),
                )
            )
        problems += [f"mirror {name}: {a} != {b}" for name, a, b in pairs if a != b]
    return problems
