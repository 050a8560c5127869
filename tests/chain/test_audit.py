"""Tamper tests on SQLite and PostgreSQL: ``chain audit`` names what changed and where."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flashpay import db
from flashpay.chain import note
from flashpay.chain.audit import AuditReport, audit
from flashpay.chain.publisher import Publisher
from flashpay.chain.receipt import TrustPolicy
from flashpay.chain.service import ChainLog
from flashpay.cli.main import app
from flashpay.ledger import Ledger

from .conftest import Posted, post_chains


@pytest.fixture
def published(ledger: Ledger, log: ChainLog, log_keys: tuple[str, str]) -> list[Posted]:
    """Six chains in the log, with checkpoints at sizes 4 and 6."""
    signer = note.parse_signer(log_keys[0])
    publisher = Publisher(log, signer=signer, witnesses=[], quorum=0)
    chain_ids = post_chains(ledger, 4)
    log.sync_from_ledger(ledger)
    publisher.publish()
    chain_ids += post_chains(ledger, 2, first_id=500)
    log.sync_from_ledger(ledger)
    publisher.publish()
    publisher.close()
    return chain_ids


def tamper(url: str, *statements: str) -> None:
    engine = db.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


def kinds(report: AuditReport) -> list[tuple[str, int | None]]:
    return [(f.kind, f.position) for f in report.findings]


def test_an_untouched_log_passes(
    published: list[Posted], ledger: Ledger, log: ChainLog, log_keys: tuple[str, str]
) -> None:
    trust = TrustPolicy(note.parse_verifier(log_keys[1]), (), 0)
    report = audit(log, ledger, trust=trust)
    assert report.ok, report.findings
    assert (report.tree_size, report.leaves_checked, report.checkpoints_checked) == (6, 6, 2)


def test_an_edited_amount_is_named_with_its_position(
    published: list[Posted], ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    tamper(
        database_url,
        f"UPDATE ledger_transfers SET amount = 999999 WHERE id = {published[2].transfer_id}",
    )
    report = audit(log, ledger)
    assert ("transfer_changed", 2) in kinds(report)
    assert "amount is 999999 in the ledger, 1002 in the log" in str(report.findings[0])
    assert ("checkpoint_mismatch", 2) in kinds(report)


def test_a_deleted_transfer_is_named_with_its_position(
    published: list[Posted], ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    tamper(database_url, f"DELETE FROM ledger_transfers WHERE id = {published[4].transfer_id + 1}")
    report = audit(log, ledger)
    assert ("transfer_deleted", 4) in kinds(report)
    assert not report.ok


def test_an_inserted_transfer_and_an_inserted_chain_are_named(
    published: list[Posted], ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    columns = (
        "id, debit_account_id, credit_account_id, amount, pending_id, user_data_128, "
        "user_data_64, user_data_32, timeout_seconds, ledger, code, flags, timestamp, chain_id"
    )
    zero16 = (
        "X'00000000000000000000000000000000'"
        if database_url.startswith("sqlite")
        else ("'\\x00000000000000000000000000000000'::bytea")
    )
    tamper(
        database_url,
        f"INSERT INTO ledger_transfers ({columns}) VALUES "
        f"(9001, 1, 4, 77, 0, {zero16}, 0, 0, 0, 156, 1, 0, 1, {published[1].chain_id})",
        f"INSERT INTO ledger_transfers ({columns}) VALUES "
        f"(9002, 1, 4, 88, 0, {zero16}, 0, 0, 0, 156, 1, 0, 2, 9002)",
        "INSERT INTO ledger_chains (chain_id, commitment) VALUES (9002, NULL)",
    )
    report = audit(log, ledger)
    assert ("transfer_inserted", 1) in kinds(report)
    assert ("ledger_chain_not_in_log", None) in kinds(report)
    assert any("ledger chain 9002" in str(f) for f in report.findings)


def test_two_reordered_leaves_are_named(
    published: list[Posted], ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    tamper(
        database_url,
        "UPDATE chain_leaves SET leaf_index = -1 WHERE leaf_index = 1",
        "UPDATE chain_leaves SET leaf_index = 1 WHERE leaf_index = 3",
        "UPDATE chain_leaves SET leaf_index = 3 WHERE leaf_index = -1",
    )
    report = audit(log, ledger)
    found = kinds(report)
    assert ("leaf_reordered", 1) in found
    assert ("leaf_reordered", 3) in found
    assert any(kind == "checkpoint_mismatch" for kind, _ in found)


def test_a_deleted_log_entry_and_a_rewritten_node_are_named(
    published: list[Posted], ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    tamper(
        database_url,
        "DELETE FROM chain_leaves WHERE leaf_index = 5",
        # node (level 1, index 1) over leaves 2..3 takes the hash of node (1, 0)
        f"UPDATE chain_nodes SET hash = (SELECT hash FROM chain_nodes WHERE node_id = {1 << 48}) "
        f"WHERE node_id = {(1 << 48) + 1}",
    )
    report = audit(log, ledger)
    assert ("log_entry_missing", 5) in kinds(report)
    assert ("node_changed", 2) in kinds(report)
    assert any("(level 1, index 1) over leaves 2..3" in str(f) for f in report.findings)


def test_the_cli_exits_non_zero_and_prints_the_position(
    published: list[Posted], database_url: str
) -> None:
    runner = CliRunner()
    clean = runner.invoke(app, ["chain", "audit", "--db", database_url])
    assert clean.exit_code == 0, clean.output
    tamper(
        database_url,
        f"UPDATE ledger_transfers SET amount = 1 WHERE id = {published[0].transfer_id}",
    )
    result = runner.invoke(app, ["chain", "audit", "--db", database_url])
    assert result.exit_code == 1
    assert "transfer_changed: position 0" in result.output
