"""The project skeleton: migrations apply on both databases, the CLI answers."""

from __future__ import annotations

import subprocess
import sys

from flashpay import config, db


def test_database_url_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv(config.DATA_DIR_ENV, raising=False)
    assert config.database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert config.database_url() == "sqlite:///.flashpay/flashpay.db"
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    assert config.database_url() == f"sqlite:///{tmp_path}/flashpay.db"
    monkeypatch.setenv(config.DATABASE_URL_ENV, "postgresql://u@h/d")
    assert config.database_url() == "postgresql://u@h/d"


def test_sqlalchemy_url_mapping():
    assert db.sqlalchemy_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"
    assert db.sqlalchemy_url("sqlite:///a.db") == "sqlite:///a.db"


def test_migrations_reach_every_head(database_url):
    heads = db.current_heads(database_url)
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config(database_url))
    assert heads == set(script.get_heads())


def test_cli_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "db" in result.stdout
