"""A network definition: the network operator, its issuers with their BIN ranges, its acquirers.

Read from TOML (``default_network.toml`` is the shipped one) or from the admin API's JSON; both
go through ``parse_definition``, which checks everything and raises ``DefinitionError`` naming the
offending path (``issuers[2].bins[0].prefix``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from flashpay.errors import RefusedError

CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
IIN = re.compile(r"^[0-9]{8}$")
BIN_PREFIX = re.compile(r"^[0-9]{6,8}$")
NAME_CHARS_MAX = 64


class InstitutionKind(StrEnum):
    NETWORK = "network"
    ISSUER = "issuer"
    ACQUIRER = "acquirer"
    SETTLEMENT_BANK = "settlement_bank"


class CardType(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class NetworkRefusal(StrEnum):
    """Why a network definition is refused, in check order (values are the API error codes)."""

    INVALID_NETWORK_DEFINITION = "invalid_network_definition"
    NETWORK_CONFLICT = "network_conflict"


class DefinitionError(RefusedError, ValueError):
    """A definition that does not parse or check; ``path`` names the failing field (also in
    ``details``, so an API client can point at it)."""

    reason: NetworkRefusal

    def __init__(self, path: str, message: str) -> None:
        super().__init__(
            NetworkRefusal.INVALID_NETWORK_DEFINITION, f"{path}: {message}", details={"path": path}
        )
        self.path = path


@dataclass(frozen=True, slots=True)
class BinRange:
    prefix: str
    card_type: CardType


@dataclass(frozen=True, slots=True)
class InstitutionDef:
    code: str
    name: str
    kind: InstitutionKind
    iin: str
    bins: tuple[BinRange, ...] = ()
    token_bin: str | None = None


@dataclass(frozen=True, slots=True)
class NetworkDefinition:
    network: InstitutionDef
    issuers: tuple[InstitutionDef, ...]
    acquirers: tuple[InstitutionDef, ...]
    settlement_bank: InstitutionDef | None = None  # where members settle (flashpay.settlement)

    @property
    def members(self) -> tuple[InstitutionDef, ...]:
        """Those who clear and settle: the network, its issuers and acquirers."""
        return (self.network, *self.issuers, *self.acquirers)

    @property
    def institutions(self) -> tuple[InstitutionDef, ...]:
        bank = () if self.settlement_bank is None else (self.settlement_bank,)
        return (*self.members, *bank)


def _text(data: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str] | None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{path}.{key}", "is required text")
    if pattern is not None and not pattern.match(value):
        raise DefinitionError(f"{path}.{key}", f"{value!r} does not match {pattern.pattern}")
    if len(value) > NAME_CHARS_MAX:
        raise DefinitionError(f"{path}.{key}", f"is longer than {NAME_CHARS_MAX} characters")
    return value


def _institution(data: Any, path: str, kind: InstitutionKind) -> InstitutionDef:
    if not isinstance(data, Mapping):
        raise DefinitionError(path, "must be a table")
    bins: list[BinRange] = []
    if kind is InstitutionKind.ISSUER:
        raw_bins = data.get("bins")
        if not isinstance(raw_bins, Sequence) or not raw_bins:
            raise DefinitionError(f"{path}.bins", "an issuer needs at least one BIN range")
        for i, raw in enumerate(raw_bins):
            where = f"{path}.bins[{i}]"
            if not isinstance(raw, Mapping):
                raise DefinitionError(where, "must be a table")
            prefix = _text(raw, "prefix", where, BIN_PREFIX)
            try:
                card_type = CardType(str(raw.get("type")))
            except ValueError as exc:
                raise DefinitionError(f"{where}.type", "must be debit or credit") from exc
            bins.append(BinRange(prefix, card_type))
    token_bin = None
    if kind is InstitutionKind.NETWORK:
        token_bin = _text(data, "token_bin", path, BIN_PREFIX)
    return InstitutionDef(
        code=_text(data, "code", path, CODE),
        name=_text(data, "name", path, None),
        kind=kind,
        iin=_text(data, "iin", path, IIN),
        bins=tuple(bins),
        token_bin=token_bin,
    )


def parse_definition(data: Mapping[str, Any]) -> NetworkDefinition:
    """Check a definition (parsed TOML or JSON) and return it typed."""
    network = _institution(data.get("network"), "network", InstitutionKind.NETWORK)
    issuers = tuple(
        _institution(item, f"issuers[{i}]", InstitutionKind.ISSUER)
        for i, item in enumerate(data.get("issuers") or ())
    )
    acquirers = tuple(
        _institution(item, f"acquirers[{i}]", InstitutionKind.ACQUIRER)
        for i, item in enumerate(data.get("acquirers") or ())
    )
    if not issuers:
        raise DefinitionError("issuers", "a network needs at least one issuer")
    if not acquirers:
        raise DefinitionError("acquirers", "a network needs at least one acquirer")
    bank = (
        None
        if data.get("settlement_bank") is None
        else _institution(
            data["settlement_bank"], "settlement_bank", InstitutionKind.SETTLEMENT_BANK
        )
    )
    definition = NetworkDefinition(network, issuers, acquirers, bank)
    seen = {network.code}
    groups: list[tuple[str, tuple[InstitutionDef, ...]]] = [
        ("issuers", issuers),
        ("acquirers", acquirers),
    ]
    if bank is not None:
        groups.append(("settlement_bank", (bank,)))
    for kind, members in groups:
        for i, inst in enumerate(members):  # the path names the index within its own list
            if inst.code in seen:
                where = f"{kind}.code" if kind == "settlement_bank" else f"{kind}[{i}].code"
                raise DefinitionError(where, f"{inst.code} is used twice")
            seen.add(inst.code)
    prefixes: dict[str, str] = {network.token_bin or "": network.code}
    for i, issuer in enumerate(issuers):
        for j, bin_range in enumerate(issuer.bins):
            owner = prefixes.get(bin_range.prefix)
            if owner is not None:
                raise DefinitionError(
                    f"issuers[{i}].bins[{j}].prefix", f"{bin_range.prefix} is already {owner}'s"
                )
            prefixes[bin_range.prefix] = issuer.code
    token_bin = network.token_bin or ""
    for prefix, owner in prefixes.items():
        if owner != network.code and (prefix.startswith(token_bin) or token_bin.startswith(prefix)):
            raise DefinitionError("network.token_bin", f"overlaps {owner}'s BIN {prefix}")
    return definition


def load_toml(source: str | Path) -> NetworkDefinition:
    """A definition from TOML text or a TOML file."""
    text = source.read_text() if isinstance(source, Path) else source
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError("toml", str(exc)) from exc
    return parse_definition(data)


def default_definition() -> NetworkDefinition:
    """The network shipped with flashpay (``default_network.toml``)."""
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    return load_toml(text)
