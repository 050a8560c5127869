"""``flashpay promo``: create from TOML, list, activate / pause / end, inquiry."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flashpay.cli.common import console
from flashpay.cli.main import app

DEFINITION = """
name = "Campus canteens: random ¥1–5 off at lunch"
funder = { kind = "network", id = 1 }
starts_at = 2020-01-01T00:00:00+08:00
ends_at = 2099-01-01T00:00:00+08:00
stacking = "stackable"

[eligibility]
scenes = ["canteen"]

[benefit]
kind = "random_off"
low_minor = 100
high_minor = 500

[caps]
user_per_day = 1

[budget]
money_minor = 50000
"""


def test_the_promo_commands(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 250)  # a table row on one line
    runner = CliRunner()
    path = tmp_path / "canteen.toml"
    path.write_text(DEFINITION, encoding="utf-8")
    created = runner.invoke(app, ["promo", "create", str(path), "--db", sqlite_url])
    assert created.exit_code == 0, created.output
    assert "created campaign 1 (draft)" in created.output

    activated = runner.invoke(app, ["promo", "activate", "1", "--db", sqlite_url])
    assert activated.exit_code == 0, activated.output
    assert "campaign 1 is active" in activated.output

    listed = runner.invoke(app, ["promo", "list", "--db", sqlite_url])
    assert "active" in listed.output
    assert "0.00 / 500.00" in listed.output

    asked = runner.invoke(
        app,
        ["promo", "inquiry", "--phone", "13800000001", "--scene", "canteen", "--db", sqlite_url],
    )
    assert asked.exit_code == 0, asked.output
    assert "随机立减1–5元" in asked.output

    reported = runner.invoke(app, ["promo", "report", "1", "--db", sqlite_url])
    assert reported.exit_code == 0, reported.output
    assert "0 uses" in reported.output
    assert runner.invoke(app, ["promo", "report", "9", "--db", sqlite_url]).exit_code == 1

    assert runner.invoke(app, ["promo", "end", "1", "--db", sqlite_url]).exit_code == 0
    again = runner.invoke(app, ["promo", "activate", "1", "--db", sqlite_url])
    assert again.exit_code == 1
    assert "refused: promo_invalid_transition" in again.output


def test_a_bad_definition_exits_2_naming_the_field(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(DEFINITION.replace("low_minor = 100", "low_minor = 900"), encoding="utf-8")
    result = CliRunner().invoke(app, ["promo", "create", str(path), "--db", sqlite_url])
    assert result.exit_code == 2
    assert "promo_invalid_benefit" in result.output


def test_top_up_and_push_coupons(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 250)
    runner = CliRunner()
    path = tmp_path / "coupons.toml"
    coupons = DEFINITION + "\n[coupon]\nvalid_seconds = 86400\nclaimable = false\ncoupons_max = 2\n"
    path.write_text(coupons, encoding="utf-8")
    assert runner.invoke(app, ["promo", "create", str(path), "--db", sqlite_url]).exit_code == 0

    topped = runner.invoke(
        app, ["promo", "top-up", "1", "--amount-minor", "10000", "--db", sqlite_url]
    )
    assert topped.exit_code == 0, topped.output
    assert "budget ¥600.00" in topped.output
    zero = runner.invoke(app, ["promo", "top-up", "1", "--db", sqlite_url])
    assert (zero.exit_code, "refused: promo_invalid_budget" in zero.output) == (1, True)

    phones = tmp_path / "phones.txt"
    phones.write_text("13800000002\n13800000003\n", encoding="utf-8")
    pushed = runner.invoke(app, ["promo", "push-coupons", "1", "--phone", "13800000001",
                                 "--phones-file", str(phones), "--db", sqlite_url])  # fmt: skip
    assert pushed.exit_code == 0, pushed.output
    assert "phone:13800000001: issued" in pushed.output
    assert "phone:13800000003: promo_coupons_all_issued" in pushed.output
    assert "2 coupon(s) issued" in pushed.output
    assert runner.invoke(app, ["promo", "end", "1", "--db", sqlite_url]).exit_code == 0
    ended = runner.invoke(app, ["promo", "push-coupons", "1", "--phone", "1", "--db", sqlite_url])
    assert (ended.exit_code, "refused: promo_not_active" in ended.output) == (1, True)
