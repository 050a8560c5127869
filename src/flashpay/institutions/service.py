"""Load a network definition; look institutions up and the BIN ranges that route card numbers.

``load_network`` is idempotent: institutions are matched by code (new ones inserted, existing ones
renamed in place), the BIN table is replaced by the definition's in the same transaction, and
every institution's ledger accounts (``chart.py``) are created with derived ids, so loading twice
creates nothing twice. An institution left out of a new definition is kept (its cards and books
still exist); only its BIN ranges go, so no new card routes to it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from flashpay.db import autocommit
from flashpay.errors import RefusedError
from flashpay.institutions.chart import LEDGER_CNY, AccountCode, institution_account_id
from flashpay.institutions.definition import (
    CardType,
    InstitutionDef,
    InstitutionKind,
    NetworkDefinition,
    NetworkRefusal,
)
from flashpay.institutions.models import institution_bins, institutions
from flashpay.ledger import Account, CreateAccountResult
from flashpay.platform import Platform


class NetworkLoadError(RefusedError):
    """The definition conflicts with the loaded network (an institution of another kind under
    its code) or the ledger refused an institution account (a conflicting account, same id)."""

    reason: NetworkRefusal

    def __init__(self, message: str) -> None:
        super().__init__(NetworkRefusal.NETWORK_CONFLICT, message)


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

    # Every institution may fund campaigns: its discounts are debited to its promotion_expense.
    expense = account(c.PROMOTION_EXPENSE)
    # With a settlement bank every member holds a settlement deposit there, which the bank
    # mirrors as settlement_account[member] (flashpay.settlement settles through them).
    deposit = [] if definition.settlement_bank is None else [account(c.SETTLEMENT_DEPOSIT)]
    if inst.kind is InstitutionKind.SETTLEMENT_BANK:
        return [account(c.SETTLEMENT_CLEARING)] + [
            account(c.SETTLEMENT_ACCOUNT, member.code) for member in definition.members
        ]
    if inst.kind is InstitutionKind.ISSUER:
        kinds = (c.NETWORK_PAYABLE, c.NETWORK_RECEIVABLE, c.INTERCHANGE_INCOME, c.CASH)
        return [*(account(k) for k in kinds), expense, *deposit]
    if inst.kind is InstitutionKind.ACQUIRER:
        return [account(c.ACQUIRER_NETWORK_RECEIVABLE), account(c.MDR_INCOME), expense, *deposit]
    out = [account(c.FEE_INCOME), expense, *deposit]
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
    _forget(platform.database_url)
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


_CODES: dict[tuple[str, int], str] = {}


def institution_code(*, platform: Platform, institution_id: int) -> str:
    """An institution's code, cached: an id's code never changes (load_network matches by code
    and never renames one), so the hot paths need not query it."""
    key = (platform.database_url, institution_id)
    code = _CODES.get(key)
    if code is None:
        found = get_institution(platform=platform, institution_id=institution_id)
        if found is None:
            raise LookupError(f"no institution {institution_id}")
        code = _CODES[key] = found.code
    return code


_NETWORK: dict[str, str] = {}
_IINS: dict[tuple[str, int | None], str] = {}


def institution_iin(*, platform: Platform, institution_id: int | None) -> str:
    """An institution's IIN (``None``: the network's), cached per process until the next
    ``load_network`` (which may change an IIN) clears the caches."""
    key = (platform.database_url, institution_id)
    iin = _IINS.get(key)
    if iin is None:
        found = (
            network_institution(platform=platform)
            if institution_id is None
            else get_institution(platform=platform, institution_id=institution_id)
        )
        if found is None:
            raise LookupError(f"no institution {institution_id}")
        iin = _IINS[key] = found.iin
    return iin


def _forget(database_url: str) -> None:
    """Drop this database's cached institution facts (after a new definition is loaded)."""
    for key in [k for k in _CODES if k[0] == database_url]:
        del _CODES[key]
    for iin_key in [k for k in _IINS if k[0] == database_url]:
        del _IINS[iin_key]
    _NETWORK.pop(database_url, None)


def network_code(*, platform: Platform) -> str:
    """The network operator's code, cached (there is one network per database)."""
    code = _NETWORK.get(platform.database_url)
    if code is None:
        code = _NETWORK[platform.database_url] = network_institution(platform=platform).code
    return code


def network_institution(*, platform: Platform) -> Institution:
    with platform.engine.connect() as connection:
        row = connection.execute(
            sa.select(institutions).where(institutions.c.kind == InstitutionKind.NETWORK.value)
        ).first()
    if row is None:
        raise LookupError("no network is loaded: run `flashpay network load`")
    return _institution(row)


BIN_GROUPS_PER_QUERY_MAX = 200  # distinct 6-digit BINs read per query by route_cards


def bin_ranges(*, platform: Platform, first6s: Collection[str]) -> dict[str, BinRoute]:
    """Every BIN range that can match a card number starting with one of ``first6s``, by
    prefix: one query per up to ``BIN_GROUPS_PER_QUERY_MAX`` distinct 6-digit BINs.

    Every BIN range is 6–8 digits, so the ranges that can match a number are those between its
    first six digits and those six followed by ``99``: one index range per distinct 6-digit BIN
    reads them all. The longest match for a number is the cards' business
    (``cards.routing.route_cards``), which knows what a card number is."""
    first6s = sorted(set(first6s))
    bins: dict[str, BinRoute] = {}
    with autocommit(platform.engine) as connection:
        for start in range(0, len(first6s), BIN_GROUPS_PER_QUERY_MAX):
            group = first6s[start : start + BIN_GROUPS_PER_QUERY_MAX]
            rows = connection.execute(
                sa.select(institution_bins, institutions)
                .join(institutions, institutions.c.id == institution_bins.c.institution_id)
                .where(
                    sa.or_(
                        *(
                            institution_bins.c.prefix.between(first6, first6 + "99")
                            for first6 in group
                        )
                    )
                )
            ).all()
            for row in rows:
                m = row._mapping
                bins[str(m["prefix"])] = BinRoute(
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
    return bins


@dataclass(frozen=True, slots=True)
class NetPosition:
    """What one member is owed by the network (positive) or owes it (negative) for the day's
    clearing, and what it earned: an issuer's interchange, an acquirer's MDR share, the
    network's fees."""

    code: str
    name: str
    kind: InstitutionKind
    net: int  # fen
    income: int  # fen


def net_positions(*, platform: Platform) -> list[NetPosition]:
    """Each member's net position with the network, from its own books (ARCHITECTURE.md §4):
    an issuer's ``network_receivable`` less its ``network_payable``, an acquirer's
    ``acquirer_network_receivable``, and the network's fee income. In one ledger look-up."""
    c = AccountCode
    accounts: dict[str, tuple[int, int, int]] = {}  # code -> (owed, owes, income) accounts
    members = [
        i
        for i in list_institutions(platform=platform)
        if i.kind is not InstitutionKind.SETTLEMENT_BANK
    ]
    for inst in members:
        code = inst.code
        if inst.kind is InstitutionKind.ISSUER:
            accounts[code] = (
                institution_account_id(code, c.NETWORK_RECEIVABLE),
                institution_account_id(code, c.NETWORK_PAYABLE),
                institution_account_id(code, c.INTERCHANGE_INCOME),
            )
        elif inst.kind is InstitutionKind.ACQUIRER:
            receivable = institution_account_id(code, c.ACQUIRER_NETWORK_RECEIVABLE)
            accounts[code] = (receivable, 0, institution_account_id(code, c.MDR_INCOME))
        else:
            accounts[code] = (0, 0, institution_account_id(code, c.FEE_INCOME))
    ids = sorted({i for triple in accounts.values() for i in triple if i})
    found = {a.id: a for a in platform.ledger.lookup_accounts(ids)}

    def debit(i: int) -> int:
        return found[i].debit_balance if i in found else 0

    def credit(i: int) -> int:
        return found[i].credit_balance if i in found else 0

    nets = {
        inst.code: debit(accounts[inst.code][0]) - credit(accounts[inst.code][1])
        for inst in members
        if inst.kind is not InstitutionKind.NETWORK
    }
    # The network keeps what the members' positions leave: its fees, when the books balance.
    kept = -sum(nets.values())
    return [
        NetPosition(inst.code, inst.name, inst.kind, nets.get(inst.code, kept),
                    credit(accounts[inst.code][2]))
        for inst in members
    ]  # fmt: skip


# -- reads in another domain's transaction ------------------------------------------------------
# The wallet binds cards inside its own transactions; these are the institution facts it needs,
# read on the caller's connection (so they see what that transaction sees) instead of joining
# this domain's tables.
_ROUTED = sa.select(
    sa.exists().where(institution_bins.c.prefix.in_(sa.bindparam("b_prefixes", expanding=True)))
)
_NETWORK_TOKEN_BIN = (
    sa.select(institutions.c.token_bin)
    .where(institutions.c.kind == InstitutionKind.NETWORK.value)
    .limit(1)
)
_BY_IDS = sa.select(institutions).where(
    institutions.c.id.in_(sa.bindparam("b_ids", expanding=True))
)


def bin_is_routed(*, connection: sa.Connection, prefixes: Sequence[str]) -> bool:
    """Whether any issuer's BIN range is one of ``prefixes`` (a card number's 8-, 7- and
    6-digit prefixes, ``CardNumber.prefixes()``), without routing it."""
    return bool(connection.execute(_ROUTED, {"b_prefixes": list(prefixes)}).scalar())


def network_token_bin(*, connection: sa.Connection) -> str | None:
    """The network's token BIN (``None`` when no network is loaded or it names none)."""
    token_bin = connection.execute(_NETWORK_TOKEN_BIN).scalar()
    return None if token_bin is None else str(token_bin)


def institutions_by_id(
    *, connection: sa.Connection, institution_ids: Sequence[int]
) -> dict[int, Institution]:
    """The institutions with these ids, by id (one query; unknown ids are left out)."""
    if not institution_ids:
        return {}
    rows = connection.execute(_BY_IDS, {"b_ids": sorted(set(institution_ids))})
    return {int(row.id): _institution(row) for row in rows}
