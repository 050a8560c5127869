"""The network definition: TOML parsing and validation (each error names its path), and
``flashpay network load FILE`` as a subprocess on a temporary SQLite data directory."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from flashpay.institutions.definition import (
    CardType,
    DefinitionError,
    InstitutionKind,
    default_definition,
    load_toml,
    parse_definition,
)


def shipped() -> dict[str, Any]:
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    return tomllib.loads(text)


def test_the_default_network_loads() -> None:
    network = default_definition()
    assert network.network.code == "CUP"
    assert network.network.kind is InstitutionKind.NETWORK
    assert network.network.token_bin == "623123"
    issuers = {i.code: i for i in network.issuers}
    assert {"BOC", "ICBC", "CCB", "CMB", "ABC"} <= set(issuers)
    assert len(network.acquirers) >= 2
    boc = {b.prefix: b.card_type for b in issuers["BOC"].bins}
    assert boc["621661"] is CardType.DEBIT
    assert boc["6259070"] is CardType.CREDIT  # a 7-digit prefix beside its 6-digit parent
    assert network.institutions[0] is network.network


def test_toml_text_and_file_give_the_same_definition(tmp_path: Path) -> None:
    text = resources.files("flashpay.institutions").joinpath("default_network.toml").read_text()
    path = tmp_path / "network.toml"
    path.write_text(text)
    assert load_toml(path) == load_toml(text) == default_definition()


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``issuers[1].bins[0].prefix``-style paths; ``value=DELETE`` removes the key."""
    parts = path.replace("]", "").replace("[", ".").split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value


DELETE = object()

# (name, [(path to set, value)], path the error names)
CASES = [
    ("no_network", [("network", DELETE)], "network"),
    ("network_not_a_table", [("network", "CUP")], "network"),
    ("network_code_lowercase", [("network.code", "cup")], "network.code"),
    ("network_code_missing", [("network.code", DELETE)], "network.code"),
    ("network_name_blank", [("network.name", "  ")], "network.name"),
    ("network_name_too_long", [("network.name", "N" * 65)], "network.name"),
    ("network_iin_short", [("network.iin", "0001")], "network.iin"),
    ("token_bin_missing", [("network.token_bin", DELETE)], "network.token_bin"),
    ("token_bin_letters", [("network.token_bin", "62312A")], "network.token_bin"),
    ("issuer_without_bins", [("issuers[1].bins", [])], "issuers[1].bins"),
    ("bin_not_a_table", [("issuers[0].bins[1]", "621785")], "issuers[0].bins[1]"),
    ("bin_five_digits", [("issuers[2].bins[0].prefix", "62170")], "issuers[2].bins[0].prefix"),
    ("bin_nine_digits", [("issuers[2].bins[0].prefix", "621700001")],
     "issuers[2].bins[0].prefix"),
    ("bin_type_prepaid", [("issuers[0].bins[0].type", "prepaid")], "issuers[0].bins[0].type"),
    ("bin_twice", [("issuers[3].bins[1].prefix", "621661")], "issuers[3].bins[1].prefix"),
    ("bin_is_the_token_bin", [("issuers[1].bins[0].prefix", "623123")],
     "issuers[1].bins[0].prefix"),
    ("bin_inside_the_token_bin", [("issuers[1].bins[0].prefix", "62312345")],
     "network.token_bin"),
    ("token_bin_inside_a_bin", [("network.token_bin", "62220299")], "network.token_bin"),
    ("no_issuers", [("issuers", [])], "issuers"),
    ("issuers_missing", [("issuers", DELETE)], "issuers"),
    ("no_acquirers", [("acquirers", DELETE)], "acquirers"),
    ("acquirer_iin_missing", [("acquirers[1].iin", DELETE)], "acquirers[1].iin"),
    ("issuer_code_twice", [("issuers[2].code", "BOC")], "issuers[2].code"),
    ("issuer_takes_the_network_code", [("issuers[0].code", "CUP")], "issuers[0].code"),
    ("acquirer_takes_an_issuer_code", [("acquirers[1].code", "ICBC")], "acquirers[1].code"),
    ("acquirer_code_twice", [("acquirers[2].code", "UMS")], "acquirers[2].code"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_validation_error_names_its_path(changes: list[tuple[str, Any]], path: str) -> None:
    data = copy.deepcopy(shipped())
    for where, value in changes:
        _set(data, where, value)
    with pytest.raises(DefinitionError) as raised:
        parse_definition(data)
    assert raised.value.path == path
    assert str(raised.value).startswith(f"{path}: ")


def test_bad_toml_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError) as raised:
        load_toml('[network\ncode = "CUP"')
    assert raised.value.path == "toml"


def test_a_longer_prefix_inside_another_issuers_bin_is_allowed() -> None:
    """Routing is longest-prefix, so CCB may own the 8-digit 62220288 inside ICBC's 622202."""
    data = copy.deepcopy(shipped())
    data["issuers"][2]["bins"].append({"prefix": "62220288", "type": "credit"})
    parsed = parse_definition(data)
    assert parsed.issuers[2].bins[-1].prefix == "62220288"
    assert parsed.issuers[1].bins[0].prefix == "622202"


# -- the CLI ------------------------------------------------------------------------------------
def flashpay(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_network_load_and_show(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = flashpay("network", "load", "--data-dir", str(data))
    assert first.returncode == 0, first.stderr
    assert one_line(first.stdout) == (
        "loaded: 10 institutions created, 0 updated, 11 BIN ranges, 68 ledger accounts opened"
    )
    assert (data / "flashpay.db").exists()
    assert (data / "keys.json").stat().st_mode & 0o777 == 0o600
    changed = shipped()
    changed["issuers"][0]["name"] = "Bank of China Ltd"
    changed["issuers"].append(
        {"code": "PSBC", "name": "Postal Savings Bank of China", "iin": "01000000",
         "bins": [{"prefix": "621799", "type": "debit"}]}
    )  # fmt: skip
    definition = tmp_path / "network.toml"
    definition.write_text(_toml(changed))
    second = flashpay("network", "load", str(definition), "--data-dir", str(data))
    assert second.returncode == 0, second.stderr
    # The new issuer's four accounts, its promotion_expense and its settlement deposit, the
    # network's two mirrors of it and the settlement bank's settlement account for it;
    # nothing twice.
    assert one_line(second.stdout) == (
        "loaded: 1 institutions created, 10 updated, 12 BIN ranges, 9 ledger accounts opened"
    )
    shown = flashpay("network", "show", "--data-dir", str(data))
    assert shown.returncode == 0, shown.stderr
    assert "PSBC" in shown.stdout
    assert "Bank of China Ltd" in shown.stdout


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("[network\ncode = 1", "invalid network definition: toml: "),
        (
            '[network]\ncode = "CUP"\ntoken_bin = "623123"\n',
            "invalid network definition: network.name: ",
        ),
    ],
    ids=["not_toml", "incomplete"],
)
def test_network_load_refuses_a_bad_file_with_one_line(
    tmp_path: Path, text: str, starts: str
) -> None:
    definition = tmp_path / "bad.toml"
    definition.write_text(text)
    data = tmp_path / "data"
    out = flashpay("network", "load", str(definition), "--data-dir", str(data))
    assert out.returncode == 2
    assert one_line(out.stderr).startswith(starts)
    assert out.stdout == ""
    assert not (data / "flashpay.db").exists()  # refused before the database is touched


def _toml(data: dict[str, Any]) -> str:
    """Just enough TOML for a network definition (tomllib reads, it does not write)."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    out = ["[network]", *(f"{k} = {value(v)}" for k, v in data["network"].items())]
    for kind in ("issuers", "acquirers"):
        for item in data[kind]:
            out += ["", f"[[{kind}]]", *(f"{k} = {value(v)}" for k, v in item.items())]
    if "settlement_bank" in data:
        bank = data["settlement_bank"]
        out += ["", "[settlement_bank]", *(f"{k} = {value(v)}" for k, v in bank.items())]
    return "\n".join(out) + "\n"


def test_the_toml_writer_round_trips() -> None:
    assert tomllib.loads(_toml(shipped())) == shipped()
