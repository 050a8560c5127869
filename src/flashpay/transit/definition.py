"""The transit definition (stations, lines, fare rules, caps, concessions) loaded from TOML.

``default_fares.toml`` beside this module is the default network's; ``load_definition`` reads
any file of that shape. Every problem is a ``FareDefinitionError`` with a reason from
``FareDefinitionProblem`` (in check order) and the entry it is about, so an operator who edits
the file is told which rule is wrong, not that "the file is invalid".
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from flashpay.errors import RefusedError
from flashpay.transit.fares import (
    Concession,
    FareTable,
    LegRule,
    Network,
    TimeFrame,
    TransferRule,
)

FARE_MAX_FEN = 100_000  # ¥1,000: no single leg costs more
STATIONS_MAX = 10_000
RULES_MAX = 10_000
DEFAULT_FILE = "default_fares.toml"


class FareDefinitionProblem(StrEnum):
    """Why a transit definition was refused, in the order checked."""

    NOT_TOML = "transit_fares_not_toml"
    MISSING_FIELD = "transit_fares_missing_field"
    UNKNOWN_NETWORK = "transit_fares_unknown_network"
    DUPLICATE_STATION = "transit_fares_duplicate_station"
    BAD_TIME = "transit_fares_bad_time"
    BAD_AMOUNT = "transit_fares_bad_amount"
    UNKNOWN_AREA = "transit_fares_unknown_area"
    UNKNOWN_TIMEFRAME = "transit_fares_unknown_timeframe"
    AMBIGUOUS_RULES = "transit_fares_ambiguous_rules"
    CAP_ORDER = "transit_fares_cap_order"
    BAD_CONCESSION = "transit_fares_bad_concession"
    TOO_MANY = "transit_fares_too_many"


class FareDefinitionError(RefusedError, ValueError):
    reason: FareDefinitionProblem


def _fail(problem: FareDefinitionProblem, where: str, message: str) -> FareDefinitionError:
    return FareDefinitionError(problem, f"{where}: {message}", details={"where": where})


@dataclass(frozen=True, slots=True)
class Station:
    id: str
    name: str
    line: str
    network: Network
    area: str


@dataclass(frozen=True, slots=True)
class TransitDefinition:
    stations: Mapping[str, Station]
    fares: FareTable


def _field(entry: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in entry:
        raise _fail(FareDefinitionProblem.MISSING_FIELD, where, f"needs {name!r}")
    return entry[name]


def _network(text: object, where: str) -> Network:
    try:
        return Network(str(text))
    except ValueError:
        raise _fail(FareDefinitionProblem.UNKNOWN_NETWORK, where, f"{text!r}") from None


def _fen(value: object, where: str, *, maximum: int = FARE_MAX_FEN) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise _fail(FareDefinitionProblem.BAD_AMOUNT, where, f"{value!r} is not 0–{maximum} fen")
    return value


def _minute(text: object, where: str) -> int:
    try:
        hours, minutes = str(text).split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise _fail(FareDefinitionProblem.BAD_TIME, where, f"{text!r} is not HH:MM") from None
    if not 0 <= value <= 1440 or not 0 <= int(minutes) < 60:
        raise _fail(FareDefinitionProblem.BAD_TIME, where, f"{text!r} is not HH:MM")
    return value


def _overlap(a: LegRule, b: LegRule, frames: Mapping[str, TimeFrame]) -> bool:
    def same(x: str | None, y: str | None) -> bool:
        return x is None or y is None or x == y

    if not (same(a.from_area, b.from_area) and same(a.to_area, b.to_area)):
        return False
    if a.timeframe is None or b.timeframe is None:
        return True
    fa, fb = frames[a.timeframe], frames[b.timeframe]
    return fa.start_minute < fb.end_minute and fb.start_minute < fa.end_minute


def parse_definition(data: Mapping[str, Any]) -> TransitDefinition:
    """Check a parsed TOML document and build the definition (``FareDefinitionError``)."""
    stations: dict[str, Station] = {}
    raw_stations = data.get("stations", [])
    if len(raw_stations) > STATIONS_MAX or len(data.get("leg_rules", [])) > RULES_MAX:
        raise _fail(FareDefinitionProblem.TOO_MANY, "definition", "too many stations or rules")
    for n, entry in enumerate(raw_stations):
        where = f"stations[{n}]"
        station = Station(
            id=str(_field(entry, "id", where)),
            name=str(_field(entry, "name", where)),
            line=str(_field(entry, "line", where)),
            network=_network(_field(entry, "network", where), where),
            area=str(_field(entry, "area", where)),
        )
        if station.id in stations:
            raise _fail(FareDefinitionProblem.DUPLICATE_STATION, where, station.id)
        stations[station.id] = station
    areas = {s.area for s in stations.values()}
    frames: dict[str, TimeFrame] = {}
    for n, entry in enumerate(data.get("timeframes", [])):
        where = f"timeframes[{n}]"
        frame = TimeFrame(
            str(_field(entry, "name", where)),
            _minute(_field(entry, "start", where), where),
            _minute(_field(entry, "end", where), where),
        )
        if frame.start_minute >= frame.end_minute:
            raise _fail(FareDefinitionProblem.BAD_TIME, where, "start must be before end")
        frames[frame.name] = frame
    rules: list[LegRule] = []
    for n, entry in enumerate(data.get("leg_rules", [])):
        where = f"leg_rules[{n}]"
        rule = LegRule(
            network=_network(_field(entry, "network", where), where),
            from_area=entry.get("from_area"),
            to_area=entry.get("to_area"),
            fare_minor=_fen(_field(entry, "fare_fen", where), where),
            timeframe=entry.get("timeframe"),
            priority=int(entry.get("priority", 0)),
        )
        for area in (rule.from_area, rule.to_area):
            if area is not None and area not in areas:
                raise _fail(FareDefinitionProblem.UNKNOWN_AREA, where, f"{area!r}")
        if rule.timeframe is not None and rule.timeframe not in frames:
            raise _fail(FareDefinitionProblem.UNKNOWN_TIMEFRAME, where, f"{rule.timeframe!r}")
        for m, other in enumerate(rules):
            if (
                other.network == rule.network
                and other.priority == rule.priority
                and other.wildcards == rule.wildcards
                and other.fare_minor != rule.fare_minor
                and _overlap(other, rule, frames)
            ):
                raise _fail(
                    FareDefinitionProblem.AMBIGUOUS_RULES,
                    where,
                    f"matches the same legs as leg_rules[{m}] at the same priority",
                )
        rules.append(rule)
    transfers: list[TransferRule] = []
    for n, entry in enumerate(data.get("transfer_rules", [])):
        where = f"transfer_rules[{n}]"
        minutes = _field(entry, "duration_limit_minutes", where)
        if not isinstance(minutes, int) or not 0 < minutes <= 24 * 60:
            raise _fail(FareDefinitionProblem.BAD_TIME, where, "duration 1–1440 minutes")
        transfers.append(
            TransferRule(
                _network(_field(entry, "from_network", where), where),
                _network(_field(entry, "to_network", where), where),
                minutes * 60,
                _fen(_field(entry, "discount_fen", where), where),
            )
        )
    caps = _field(data, "caps", "caps")
    daily = _fen(_field(caps, "daily_fen", "caps"), "caps.daily_fen", maximum=10 * FARE_MAX_FEN)
    weekly = _fen(_field(caps, "weekly_fen", "caps"), "caps.weekly_fen", maximum=70 * FARE_MAX_FEN)
    if daily > weekly:
        raise _fail(FareDefinitionProblem.CAP_ORDER, "caps", "the daily cap exceeds the weekly")
    max_fares = _field(data, "max_fare", "max_fare")
    max_fare = {
        network: _fen(_field(max_fares, f"{network.value}_fen", "max_fare"), "max_fare")
        for network in Network
    }
    concessions: dict[str, Concession] = {}
    for n, entry in enumerate(data.get("concessions", [])):
        where = f"concessions[{n}]"
        bps = _field(entry, "discount_bps", where)
        if not isinstance(bps, int) or not 0 <= bps <= 10_000:
            raise _fail(FareDefinitionProblem.BAD_CONCESSION, where, "discount 0–10000 bps")
        name = str(_field(entry, "name", where))
        concessions[name] = Concession(name, bps)
    table = FareTable(
        station_area={s.id: s.area for s in stations.values()},
        timeframes=frames,
        leg_rules=tuple(rules),
        transfer_rules=tuple(transfers),
        daily_cap_minor=daily,
        weekly_cap_minor=weekly,
        max_fare_minor=max_fare,
        concessions=concessions,
    )
    return TransitDefinition(stations=stations, fares=table)


def load_definition(path: Path | None = None) -> TransitDefinition:
    """The definition in ``path`` (default: the default network's)."""
    if path is None:
        text = resources.files("flashpay.transit").joinpath(DEFAULT_FILE).read_text()
    else:
        text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(FareDefinitionProblem.NOT_TOML, str(path or DEFAULT_FILE), str(exc)) from exc
    return parse_definition(data)
