"""Load a network definition; look institutions up; route a card number to its issuer.

``load_network`` is idempotent: institutions are matched by code (new ones inserted, existing ones
renamed in place), the BIN table is replaced by the definition's in the same transaction, and
every institution's ledger accounts (``chart.py``) are created with derived ids, so loading twice
creates nothing twice. An institution left out of a new definition is kept (its cards and books
still exist); only its BIN ranges go, so no new card routes to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.cards.numbers import CardNumber
from flashpay.institutions.chart import LEDGER_CNY, AccountCode, institution_account_id
from flashpay.institutions.definition import (
    CardType,
    InstitutionDef,
    InstitutionKind,
    NetworkDefinition,
)
from flashpay.institutions.models import institution_bins, institutions
from flashpay.ledger import Account, CreateAccountResult
from flashpay.platform import Platform


class NetworkLoadError(RuntimeError):
    """The ledger refused an institution account (a conflicting account with that id)."""


@dataclass(frozen=True, slots=True)
class Institution:
    id: int
    code: str
    name: str
    kind: InstitutionKind
    iin: str
    token_bin: str | None


@dataclass(frozen=True, slots=True)
class BinRoute:
    """Where a card number goes: its issuer and the type of card its BIN range issues."""

    institution: Institution
    prefix: str
    card_type: CardType


@dataclass(frozen=True, slots=True)
class LoadSummary:
    institutions_created: int
    institutions_updated: int
    bin_ranges: int
    accounts_created: int


def _accounts_of(
    inst: InstitutionDef, definition: NetworkDefinition, institution_id: int
) -> list[Account]:
    c = AccountCode

    def account(kind: AccountCode, counterpart: str = "") -> Account:
        return Account(
            institution_account_id(inst.code, kind, counterpart),
            LEDGER_CNY,
            kind,
            user_data_64=institution_id,
        )

    if inst.kind is InstitutionKind.ISSUER:
        kinds = (c.NETWORK_PAYABLE, c.NETWORK_RECEIVABLE, c.INTERCHANGE_INCOME, c.CASH)
        return [account(k) for k in kinds]
    if inst.kind is InstitutionKind.ACQUIRER:
        return [account(c.ACQUIRER_NETWORK_RECEIVABLE), account(c.MDR_INCOME)]
    out = [account(c.FEE_INCOME)]
    for issuer in definition.issuers:
        out += [
            account(c.ISSUER_RECEIVABLE, issuer.code),
            account(c.ISSUER_PAYABLE, issuer.code),
        ]
    out += [account(c.ACQUIRER_PAYABLE, a.code) for a in definition.acquirers]
    return out


def load_network(*, platform: Platform, definition: NetworkDefinition) -> LoadSummary:
    """Make the database hold ``definition`` (see the module docstring)."""
    created = updated = 0
    now = platform.clock.now_ns()
    ids: dict[str, int] = {}
    with platform.engine.begin() as connection:
        existing = {row.code: row for row in connection.execute(sa.select(institutions)).all()}
        for inst in definition.institutions:
            row = existing.get(inst.code)
            values = {
                "name": inst.name,
                "kind": inst.kind.value,
                "iin": inst.iin,
                "token_bin": inst.token_bin,
            }
            if row is None:
                ids[inst.code] = connection.execute(
                    institutions.insert()
                    .values(code=inst.code, created_at_ns=now, **values)
                    .returning(institutions.c.id)
                ).scalar_one()
                created += 1
            else:
                if row.kind != inst.kind.value:
                    raise NetworkLoadError(f"{inst.code} is a {row.kind}, not a {inst.kind}")
                connection.execute(
                    institutions.update().where(institutions.c.id == row.id).values(**values)
                )
                ids[inst.code] = row.id
                updated += 1
        connection.execute(institution_bins.delete())
        rows = [
            {"prefix": b.prefix, "institution_id": ids[i.code], "card_type": b.card_type.value}
            for i in definition.issuers
            for b in i.bins
        ]
        connection.execute(institution_bins.insert(), rows)
    accounts = [
        a
        for inst in definition.institutions
        for a in _accounts_of(inst, definition, ids[inst.code])
    ]
    results = platform.ledger.create_accounts(accounts)
    bad = [r for r in results if r not in (CreateAccountResult.OK, CreateAccountResult.EXISTS)]
    if bad:
        raise NetworkLoadError(f"the ledger refused institution accounts: {sorted(set(bad))}")
    return LoadSummary(
        institutions_created=created,
        institutions_updated=updated,
        bin_ranges=len(rows),
        accounts_created=sum(1 for r in results if r is CreateAccountResult.OK),
    )


def _institution(row: sa.Row[tuple[object, ...]]) -> Institution:
    m = row._mapping
    return Institution(
        id=int(m["id"]),
        code=str(m["code"]),
        name=str(m["name"]),
        kind=InstitutionKind(m["kind"]),
        iin=str(m["iin"]),
        token_bin=m["token_bin"] if m["token_bin"] is None else str(m["token_bin"]),
    )


def list_institutions(*, platform: Platform) -> list[Institution]:
    with platform.engine.connect() as connection:
        rows = connection.execute(sa.select(institutions).order_by(institutions.c.id)).all()
    return [_institution(r) for r in rows]


def get_institution(
    *, platform: Platform, code: str | None = None, institution_id: int | None = None
) -> Institution | None:
    query = sa.select(institutions)
    query = (
        query.where(institutions.c.code == code)
        if code is not None
        else query.where(institutions.c.id == institution_id)
    )
    with platform.engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else _institution(row)


def network_institution(*, platform: Platform) -> Institution:
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(institutions).where(institutions.c.kind == InstitutionKind.NETWORK.value)
        ).first()
    if row is None:
        raise LookupError("no network is loaded: run `flashpay network load`")
    return _institution(row)


def route_card(*, platform: Platform, card: CardNumber) -> BinRoute | None:
    """The issuer of ``card`` by the longest matching BIN prefix (8, 7, then 6 digits)."""
    prefixes = card.prefixes()
    with platform.engine.connect() as connection:
        rows = connection.execute(
            sa.select(institution_bins, institutions)
            .join(institutions, institutions.c.id == institution_bins.c.institution_id)
            .where(institution_bins.c.prefix.in_(prefixes))
        ).all()
    if not rows:
        return None
    best = max(rows, key=lambda r: len(r._mapping["prefix"]))
    m = best._mapping
    return BinRoute(
        institution=Institution(
            id=int(m["id"]),
            code=str(m["code"]),
            name=str(m["name"]),
            kind=InstitutionKind(m["kind"]),
            iin=str(m["iin"]),
            token_bin=None,
        ),
        prefix=str(m["prefix"]),
        card_type=CardType(m["card_type"]),
    )
