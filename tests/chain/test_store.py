"""The stored log (SQLite and PostgreSQL): same hashes and proofs as the reference functions,
appended from the ledger's outbox in the same transaction."""

from __future__ import annotations

import random
import threading
import time

import pytest
import sqlalchemy as sa

from flashpay import db
from flashpay.chain import leaf as leaf_codec
from flashpay.chain import merkle, note
from flashpay.chain.publisher import Publisher
from flashpay.chain.service import ChainLog
from flashpay.ledger import Ledger
from flashpay.ledger.types import CommittedChain, Transfer, TransferFlags

from .conftest import commitment, post_chains


def test_stored_tree_matches_the_reference(log: ChainLog) -> None:
    rng = random.Random(6)
    data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(300)]
    start = 0
    for batch in (1, 2, 5, 13, 64, 1, 100, 114):  # uneven batches cross every frontier shape
        first = log.append_leaves([(i + 1, data[i]) for i in range(start, start + batch)])
        assert first == start
        start += batch
    assert log.size() == 300
    for n in (1, 2, 3, 7, 8, 9, 100, 255, 256, 257, 300):
        assert log.root(n) == merkle.root_hash(data[:n])
        for i in {0, n // 3, n - 1}:
            assert log.inclusion_proof(i, n) == merkle.inclusion_proof(data, i, n)
        for m in {0, 1, n // 2, n - 1, n}:
            assert log.consistency_proof(m, n) == merkle.consistency_proof(data, m, n)
    assert log.root(0) == merkle.EMPTY_ROOT
    with pytest.raises(ValueError, match="tree size"):
        log.inclusion_proof(0, 301)


def test_chains_are_appended_from_the_outbox_with_their_index(
    ledger: Ledger, log: ChainLog
) -> None:
    posted = post_chains(ledger, 5)
    chain_ids = [p.chain_id for p in posted]
    assert log.sync_from_ledger(ledger) == 5
    assert log.sync_from_ledger(ledger) == 0  # the outbox is empty now
    rows = log.leaves(0, 100)
    assert [c for _, c, _ in rows] == chain_ids
    for index, chain_id, data in rows:
        decoded = leaf_codec.decode(data)
        (chain,) = ledger.lookup_chains([chain_id])
        assert decoded.leaf_index == index
        assert decoded.chain_id == chain_id
        assert decoded.commitment == commitment(posted[index].transfer_id)
        assert decoded.transfers == chain.transfers
        assert data == leaf_codec.encode(index, chain)
    assert log.index_of_chain(chain_ids[3]) == 3


def test_a_failed_append_leaves_the_chains_in_the_outbox(
    ledger: Ledger, log: ChainLog, database_url: str
) -> None:
    post_chains(ledger, 3)

    def append_then_fail(connection: sa.Connection, chains: object) -> None:
        log.append_chains_in(connection, chains)  # type: ignore[arg-type]
        raise RuntimeError("crash after the append, before the commit")

    with pytest.raises(RuntimeError):
        ledger.drain_outbox(append_then_fail)
    assert log.size() == 0
    engine = db.create_engine(database_url)
    with engine.connect() as connection:
        waiting = connection.execute(sa.text("SELECT count(*) FROM ledger_outbox")).scalar()
    engine.dispose()
    assert waiting == 3
    assert log.sync_from_ledger(ledger) == 3


def test_leaf_encoding_is_canonical_and_checked() -> None:
    chain = CommittedChain(
        chain_id=7,
        commitment=bytes(range(32)),
        transfers=(
            Transfer(
                id=7,
                debit_account_id=1,
                credit_account_id=2,
                amount=2372,
                ledger=156,
                code=1,
                flags=TransferFlags.LINKED,
                user_data_128=2**127 + 5,
                timestamp=1_767_225_600_000_000_001,
            ),
            Transfer(id=8, debit_account_id=2, credit_account_id=3, amount=1, ledger=156, code=2),
        ),
    )
    data = leaf_codec.encode(3, chain)
    assert len(data) == 52 + 2 * 92
    assert data[:1] == b"\x01"
    assert data[1:9] == (3).to_bytes(8, "big")
    assert data[9:17] == (7).to_bytes(8, "big")
    assert data[17:18] == b"\x01"
    assert data[18:50] == bytes(range(32))
    assert data[50:52] == (2).to_bytes(2, "big")
    assert data[52:60] == (7).to_bytes(8, "big")  # first transfer's id
    assert data[76:84] == (2372).to_bytes(8, "big")  # its amount
    decoded = leaf_codec.decode(data)
    assert decoded.transfers == chain.transfers
    assert decoded.commitment == bytes(range(32))
    with pytest.raises(leaf_codec.LeafError, match="version"):  # 2 is the discount leaf's now
        leaf_codec.decode(b"\x03" + data[1:])
    with pytest.raises(leaf_codec.LeafError, match="count says"):  # a v2 leaf lacks its discount
        leaf_codec.decode(b"\x02" + data[1:])
    with pytest.raises(leaf_codec.LeafError):
        leaf_codec.decode(data[:-1])
    without = CommittedChain(chain_id=7, commitment=None, transfers=chain.transfers[:1])
    assert leaf_codec.decode(leaf_codec.encode(0, without)).commitment is None


def test_the_publisher_loop_appends_and_publishes_every_m_leaves(
    ledger: Ledger, log: ChainLog, log_keys: tuple[str, str]
) -> None:
    publisher = Publisher(log, signer=note.parse_signer(log_keys[0]), witnesses=[], quorum=0)
    stop = threading.Event()
    loop = threading.Thread(
        target=publisher.run,
        args=(ledger,),
        kwargs={"every_seconds": 3600, "every_leaves": 2, "stop": stop, "poll_seconds": 0.01},
    )
    loop.start()

    def wait_for(size: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            latest = log.latest_checkpoint()
            if latest is not None and latest.size >= size:
                return
            time.sleep(0.02)

    try:
        # Two leaves at a time, so whatever moment the loop wakes at, a checkpoint is due once
        # both are in (posting three could leave one leaf waiting for the hourly checkpoint).
        post_chains(ledger, 2)
        wait_for(2)
        post_chains(ledger, 2, first_id=200)
        wait_for(4)
    finally:
        stop.set()
        loop.join()
        publisher.close()
    sizes = [c.size for c in log.checkpoints()]
    assert sizes[-1] == 4  # published as soon as 2 new leaves were there, not after an hour
    assert all(c.final_at_ns is not None for c in log.checkpoints())
