"""``ChainLog``: the audit log stored in SQL (SQLite or PostgreSQL), appended from the ledger.

Data structure (tables from migration ``chain_0001``):

* ``chain_leaves(leaf_index, chain_id, data)`` — the leaves in log order (``flashpay.chain.leaf``);
* ``chain_nodes(node_id, hash)`` — the hash of every *perfect* subtree of two leaves or more,
  ``node_id = level << 48 | index`` for the subtree over leaves ``[index·2^level,
  (index+1)·2^level)``, level ≥ 1 (a level-0 hash is ``SHA-256(0x00 || data)`` of the leaf row,
  read in the same query). Nodes are written once, when their last leaf is appended, and never
  change;
* ``chain_state(tree_size)`` — the row every appender locks;
* ``chain_checkpoints`` and ``chain_cosignatures`` — what the publisher signed and collected.

Appending ``k`` leaves to a tree of ``n`` reads the ≤ log₂ n hashes of the tree's right frontier
(``merkle.perfect_nodes(0, n)``), then writes ``k`` leaves and < k + log₂ n nodes: O(log n) per
leaf at worst, O(1) amortised. Any root, inclusion or consistency proof at any size ≤ n is a fold of
O(log n) perfect-subtree hashes (``merkle.inclusion_ranges`` etc.), read in one query.

Leaves come from the ledger's outbox: ``sync_from_ledger`` appends chains inside the transaction
that deletes them from ``ledger_outbox`` (``Ledger.drain_outbox``), so a committed posting is
either still in the outbox or in the log, never lost. Appends are serialized by the lock on
``chain_state``: the log's order is the order in which chains were appended.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.copy import QueuedLibpqWriter

from flashpay import db
from flashpay.chain import leaf as leaf_codec
from flashpay.chain import merkle
from flashpay.chain.checkpoint import Checkpoint
from flashpay.clock import Clock, SystemClock
from flashpay.errors import invariant
from flashpay.ledger.service import Ledger
from flashpay.ledger.types import CommittedChain

LEVEL_SHIFT = 48
TREE_SIZE_MAX = 1 << LEVEL_SHIFT
APPEND_BATCH_MAX = 1_000_000
LEAVES_PAGE_MAX = 1000
DRAIN_BATCH = 1000
DRAIN_RETRIES_MAX = 50
COPY_CHUNK = 5000
DEFAULT_ORIGIN = "flashpay.example/audit-log"
# Nodes never change once written, so readers keep the upper levels in memory: at 10M leaves the
# nodes of level >= 8 are ~80k hashes (~10 MB); a proof then reads only its low nodes.
CACHE_LEVEL_MIN = 8
CACHE_ENTRIES_MAX = 1_000_000
_MASK = (1 << 48) - 1


def node_id(level: int, index: int) -> int:
    return level << LEVEL_SHIFT | index


def _hash_into(
    index: int,
    entries: Sequence[tuple[int, bytes]],
    frontier: list[bytes],
    leaf_rows: list[tuple[int, int, bytes]],
    node_rows: list[tuple[int, bytes]],
) -> None:
    """Append ``entries`` from leaf ``index`` on to the compact range ``frontier`` (the perfect
    subtree hashes of the tree so far, left to right), collecting the rows to write: each leaf,
    and each node its arrival completes (level 1 up; level 0 is the leaf row itself)."""
    sha = merkle._sha256
    for chain_id, data in entries:
        leaf_rows.append((index, chain_id, data))
        h = sha(b"\x00" + data).digest()
        level = 0
        i = index
        while i & 1:
            h = sha(b"\x01" + frontier.pop() + h).digest()
            level += 1
            i >>= 1
            node_rows.append((level << LEVEL_SHIFT | i, h))
        frontier.append(h)
        index += 1


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str  # the log-signed note
    created_at_ns: int
    final_at_ns: int | None
    cosignatures: tuple[tuple[str, str], ...]  # (witness name, signature line)

    def cosigned_note(self) -> str:
        """The log-signed note with every collected cosignature line appended."""
        return self.note + "".join(line for _, line in self.cosignatures)


class ChainLog:
    """The stored log over one database. Thread-safe for reads; one appender at a time."""

    def __init__(self, url: str, *, origin: str = DEFAULT_ORIGIN, clock: Clock | None = None):
        self.url = url
        self.origin = origin
        self.clock: Clock = clock or SystemClock()
        self.is_postgresql = db.is_postgresql(url)
        pool: dict[str, Any] = (
            {"pool_size": 8, "max_overflow": 8, "pool_pre_ping": False}
            if self.is_postgresql
            else {}
        )
        self.engine = db.create_engine(url, pool_reset_on_return=None, **pool)
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._cache: dict[int, bytes] = {}

    @classmethod
    def open(
        cls, url: str, *, origin: str = DEFAULT_ORIGIN, clock: Clock | None = None
    ) -> ChainLog:
        """Open the log at ``url`` (already migrated)."""
        return cls(url, origin=origin, clock=clock)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.engine.dispose()

    def __enter__(self) -> ChainLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------------
    def _connection(self) -> AbstractContextManager[Any]:
        """A raw DBAPI connection in autocommit mode (reads; writes open their transaction)."""
        return db.raw_connection(self.engine)

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        """This thread's own autocommit connection for reads (no pool checkout per proof)."""
        conn: Any = getattr(self._local, "conn", None)
        if conn is None:
            if self.is_postgresql:
                conn = psycopg.connect(db.libpq_url(self.url), autocommit=True)
            else:
                path = db.sqlite_path(self.url)
                conn = sqlite3.connect(
                    str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
                )
                conn.execute(f"PRAGMA busy_timeout={db.SQLITE_BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        try:
            yield conn
        except psycopg.OperationalError:
            if conn.broken:  # forget a dead connection; the next read opens a new one
                self._local.conn = None
            raise

    def _q(self, sql: str) -> str:
        return sql if self.is_postgresql else sql.replace("%s", "?")

    def _fetch_nodes(
        self, conn: Any, nodes: Sequence[merkle.Node], *, cached: bool = False
    ) -> dict[merkle.Node, bytes]:
        """Hashes of perfect subtrees: level 0 from the leaves' data, higher levels from
        ``chain_nodes`` (upper levels from the cache when ``cached``), in one query."""
        if not nodes:
            return {}
        found: dict[merkle.Node, bytes] = {}
        wanted: set[int] = set()
        leaves: set[int] = set()
        cache = self._cache
        for level, index in nodes:
            if level == 0:
                leaves.add(index)
                continue
            nid = level << LEVEL_SHIFT | index
            if cached and level >= CACHE_LEVEL_MIN and nid in cache:
                found[(level, index)] = cache[nid]
            else:
                wanted.add(nid)
        if wanted or leaves:
            for key, value in self._select_nodes(conn, sorted(wanted), sorted(leaves)):
                if key < 0:  # a leaf's data
                    found[(0, -1 - key)] = merkle.leaf_hash(value)
                    continue
                found[(key >> LEVEL_SHIFT, key & _MASK)] = value
                if cached and key >> LEVEL_SHIFT >= CACHE_LEVEL_MIN:
                    if len(cache) >= CACHE_ENTRIES_MAX:
                        cache.clear()
                    cache[key] = value
        if len(found) < len(set(nodes)):
            missing = [n for n in nodes if n not in found]
            invariant(False, f"stored tree is missing nodes {missing[:3]}")
        return found

    def _select_nodes(
        self, conn: Any, ids: list[int], leaf_indexes: list[int]
    ) -> list[tuple[int, bytes]]:
        """``(node_id, hash)`` rows and ``(-1 - leaf_index, data)`` rows, one round trip. IN
        with one parameter per id: on PostgreSQL a prepared statement per id count, and
        measurably faster than ``= ANY(array)`` for the ~10-50 ids of a proof."""
        mark = "%s" if self.is_postgresql else "?"
        parts = []
        if ids:
            marks = ",".join([mark] * len(ids))
            parts.append(f"SELECT node_id, hash FROM chain_nodes WHERE node_id IN ({marks})")
        if leaf_indexes:
            marks = ",".join([mark] * len(leaf_indexes))
            parts.append(
                f"SELECT -1 - leaf_index, data FROM chain_leaves WHERE leaf_index IN ({marks})"
            )
        sql = " UNION ALL ".join(parts)
        params = [*ids, *leaf_indexes]
        if self.is_postgresql:
            rows = conn.cursor(binary=True).execute(sql, params).fetchall()
        else:
            rows = conn.execute(sql, params).fetchall()
        return [(int(r[0]), bytes(r[1])) for r in rows]

    # -- append ------------------------------------------------------------------------------
    def sync_from_ledger(self, ledger: Ledger, *, limit: int = DRAIN_BATCH) -> int:
        """Append every chain waiting in the ledger's outbox; returns how many were appended.

        On SQLite a drain that read the outbox before another process posted cannot take the
        write lock (``SQLITE_BUSY``): the drain rolls back whole and is retried, bounded."""
        total = 0
        attempts = 0
        while True:
            try:
                count = ledger.drain_outbox(self.append_chains_in, limit=limit)
            except sa.exc.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                attempts += 1
                if self.is_postgresql or not busy or attempts >= DRAIN_RETRIES_MAX:
                    raise
                time.sleep(0.001 * attempts)
                continue
            total += count
            if count == 0:
                return total

    def append_chains_in(self, connection: sa.Connection, chains: Sequence[CommittedChain]) -> None:
        """Append ``chains`` inside the caller's transaction on ``connection`` (the outbox drain's):
        each leaf is encoded at the index it gets."""
        raw = db.driver_connection(connection)
        self._append(raw, chains=chains)

    def append_leaves(self, items: Sequence[tuple[int, bytes]]) -> int:
        """Append raw ``(chain_id, leaf data)`` items in one transaction; returns the first index
        (benchmarks and tests; the network appends ledger chains)."""
        with self._connection() as conn:
            self._begin(conn)
            first = self._append(conn, items=items)
            conn.execute("COMMIT")
            return first

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN" if self.is_postgresql else "BEGIN IMMEDIATE")

    def _append(
        self,
        conn: Any,
        *,
        chains: Sequence[CommittedChain] = (),
        items: Sequence[tuple[int, bytes]] = (),
    ) -> int:
        count = len(chains) + len(items)
        if count > APPEND_BATCH_MAX:
            raise ValueError(f"{count} leaves in one append, more than {APPEND_BATCH_MAX}")
        lock = " FOR UPDATE" if self.is_postgresql else ""
        if not self.is_postgresql:  # take SQLite's write lock before reading the size
            conn.execute("UPDATE chain_state SET tree_size = tree_size WHERE id = 1")
        size = int(
            conn.execute(f"SELECT tree_size FROM chain_state WHERE id = 1{lock}").fetchone()[0]
        )
        if count == 0:
            return size
        if size + count > TREE_SIZE_MAX:
            raise ValueError("the log is full")
        frontier_nodes = merkle.perfect_nodes(0, size)
        stored = self._fetch_nodes(conn, frontier_nodes)
        frontier = [stored[n] for n in frontier_nodes]
        if chains:
            entries: Sequence[tuple[int, bytes]] = [
                (c.chain_id, leaf_codec.encode(size + i, c)) for i, c in enumerate(chains)
            ]
        else:
            entries = items
        if self.is_postgresql:
            self._append_postgresql(conn, size, entries, frontier)
        else:
            self._append_sqlite(conn, size, entries, frontier)
        conn.execute(self._q("UPDATE chain_state SET tree_size = %s WHERE id = 1"), [size + count])
        return size

    def _append_sqlite(
        self, conn: Any, size: int, entries: Sequence[tuple[int, bytes]], frontier: list[bytes]
    ) -> None:
        """Insert in chunks from a writer thread (sqlite3 releases the GIL while it steps a
        statement), so SQLite stores one chunk while this thread hashes the next."""
        chunks: queue.Queue[tuple[list[Any], list[Any]] | None] = queue.Queue(maxsize=4)
        failure: list[BaseException] = []

        def write() -> None:
            while (item := chunks.get()) is not None:
                if failure:
                    continue
                try:
                    conn.executemany("INSERT INTO chain_leaves VALUES (?, ?, ?)", item[0])
                    conn.executemany("INSERT INTO chain_nodes VALUES (?, ?)", item[1])
                except BaseException as exc:
                    failure.append(exc)

        writer = threading.Thread(target=write, name="chain-append-writer")
        writer.start()
        try:
            for start in range(0, len(entries), COPY_CHUNK):
                leaf_rows: list[tuple[int, int, bytes]] = []
                node_rows: list[tuple[int, bytes]] = []
                chunk = entries[start : start + COPY_CHUNK]
                _hash_into(size + start, chunk, frontier, leaf_rows, node_rows)
                chunks.put((leaf_rows, node_rows))
        finally:
            chunks.put(None)
            writer.join()
        if failure:
            raise failure[0]

    def _append_postgresql(
        self, conn: Any, size: int, entries: Sequence[tuple[int, bytes]], frontier: list[bytes]
    ) -> None:
        """COPY the leaves in chunks through a writer thread, so the server stores one chunk
        while this thread hashes the next; then COPY the nodes. Text format, bytea as hex."""
        node_text: list[str] = []
        with conn.cursor() as cur:
            copy_sql = "COPY chain_leaves (leaf_index, chain_id, data) FROM STDIN"
            with cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
                for start in range(0, len(entries), COPY_CHUNK):
                    leaf_rows: list[tuple[int, int, bytes]] = []
                    node_rows: list[tuple[int, bytes]] = []
                    chunk = entries[start : start + COPY_CHUNK]
                    _hash_into(size + start, chunk, frontier, leaf_rows, node_rows)
                    copy.write(
                        "".join(f"{i}\t{c}\t\\\\x{d.hex()}\n" for i, c, d in leaf_rows).encode()
                    )
                    node_text.append("".join(f"{n}\t\\\\x{h.hex()}\n" for n, h in node_rows))
            with cur.copy("COPY chain_nodes (node_id, hash) FROM STDIN") as copy:
                copy.write("".join(node_text).encode())

    # -- reads -------------------------------------------------------------------------------
    def size(self) -> int:
        with self._reader() as conn:
            return int(conn.execute("SELECT tree_size FROM chain_state WHERE id = 1").fetchone()[0])

    def _check_size(self, conn: Any, size: int) -> None:
        current = int(conn.execute("SELECT tree_size FROM chain_state WHERE id = 1").fetchone()[0])
        if not 0 <= size <= current:
            raise merkle.TreeSizeError(f"tree size {size} is not between 0 and {current}")

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the tree of the first ``size`` leaves (default: all)."""
        with self._reader() as conn:
            if size is None:
                size = int(
                    conn.execute("SELECT tree_size FROM chain_state WHERE id = 1").fetchone()[0]
                )
            else:
                self._check_size(conn, size)
            if size == 0:
                return merkle.EMPTY_ROOT
            nodes = merkle.perfect_nodes(0, size)
            found = self._fetch_nodes(conn, nodes, cached=True)
            return merkle.fold([found[n] for n in nodes])

    def _groups_hashes(self, conn: Any, groups: Sequence[list[merkle.Node]]) -> list[bytes]:
        found = self._fetch_nodes(conn, [n for nodes in groups for n in nodes], cached=True)
        return [
            found[nodes[0]] if len(nodes) == 1 else merkle.fold([found[n] for n in nodes])
            for nodes in groups
        ]

    def inclusion_proof(self, index: int, size: int, *, checked: bool = True) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves. ``checked=False``
        skips reading the current size (the caller knows ``size`` is a published one)."""
        with self._reader() as conn:
            if checked:
                self._check_size(conn, size)
            return self._groups_hashes(conn, merkle.inclusion_nodes(index, size))

    def consistency_proof(self, size1: int, size2: int, *, checked: bool = True) -> list[bytes]:
        """The proof that the tree of ``size1`` leaves is a prefix of the tree of ``size2``."""
        with self._reader() as conn:
            if checked:
                self._check_size(conn, size2)
            groups = [
                merkle.perfect_nodes(a, b) for a, b in merkle.consistency_ranges(size1, size2)
            ]
            return self._groups_hashes(conn, groups)

    def leaf_hash(self, index: int) -> bytes:
        """``SHA-256(0x00 || data)`` of leaf ``index``."""
        with self._reader() as conn:
            return self._fetch_nodes(conn, [(0, index)])[(0, index)]

    def leaves(self, start: int, limit: int) -> list[tuple[int, int, bytes]]:
        """``(leaf_index, chain_id, data)`` from ``start``, at most ``limit`` (≤ 1,000)."""
        limit = max(1, min(limit, LEAVES_PAGE_MAX))
        with self._reader() as conn:
            rows = conn.execute(
                self._q(
                    "SELECT leaf_index, chain_id, data FROM chain_leaves WHERE leaf_index >= %s "
                    "ORDER BY leaf_index LIMIT %s"
                ),
                [start, limit],
            ).fetchall()
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    def index_of_chain(self, chain_id: int) -> int | None:
        with self._reader() as conn:
            row = conn.execute(
                self._q("SELECT leaf_index FROM chain_leaves WHERE chain_id = %s"), [chain_id]
            ).fetchone()
        return None if row is None else int(row[0])

    # -- checkpoints and cosignatures --------------------------------------------------------
    def checkpoint_body(self, size: int | None = None) -> Checkpoint:
        """The (unsigned) checkpoint of the tree at ``size`` (default: the whole tree)."""
        if size is None:
            size = self.size()
        return Checkpoint(origin=self.origin, size=size, root_hash=self.root(size))

    def add_checkpoint(self, checkpoint: Checkpoint, signed_note: str) -> bool:
        """Record a checkpoint the log signed; False if one of that size exists (not replaced)."""
        with self.engine.begin() as connection:
            exists = connection.execute(
                sa.text("SELECT root_hash FROM chain_checkpoints WHERE tree_size = :s"),
                {"s": checkpoint.size},
            ).first()
            if exists is not None:
                invariant(
                    bytes(exists[0]) == checkpoint.root_hash,
                    f"two roots for tree size {checkpoint.size}",
                )
                return False
            connection.execute(
                sa.text(
                    "INSERT INTO chain_checkpoints (tree_size, root_hash, note, created_at_ns) "
                    "VALUES (:s, :r, :n, :t)"
                ),
                {
                    "s": checkpoint.size,
                    "r": checkpoint.root_hash,
                    "n": signed_note,
                    "t": self.clock.now_ns(),
                },
            )
            return True

    def add_cosignature(self, size: int, witness: str, line: str, timestamp: int) -> None:
        """Record a witness's cosignature line of the checkpoint at ``size`` (idempotent)."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM chain_cosignatures WHERE tree_size = :s AND witness = :w"),
                {"s": size, "w": witness},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO chain_cosignatures (tree_size, witness, signature, timestamp) "
                    "VALUES (:s, :w, :l, :t)"
                ),
                {"s": size, "w": witness, "l": line, "t": timestamp},
            )

    def mark_final(self, size: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE chain_checkpoints SET final_at_ns = :t "
                    "WHERE tree_size = :s AND final_at_ns IS NULL"
                ),
                {"s": size, "t": self.clock.now_ns()},
            )

    def _select_checkpoints(self, where: str, params: dict[str, Any]) -> list[StoredCheckpoint]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT tree_size, root_hash, note, created_at_ns, final_at_ns "
                    f"FROM chain_checkpoints {where}"
                ),
                params,
            ).all()
            cosigs: dict[int, list[tuple[str, str]]] = {}
            if rows:
                sizes = [int(r[0]) for r in rows]
                for r in connection.execute(
                    sa.text(
                        "SELECT tree_size, witness, signature FROM chain_cosignatures "
                        "WHERE tree_size IN :sizes ORDER BY tree_size, witness"
                    ).bindparams(sa.bindparam("sizes", expanding=True)),
                    {"sizes": sizes},
                ):
                    cosigs.setdefault(int(r[0]), []).append((str(r[1]), str(r[2])))
        return [
            StoredCheckpoint(
                size=int(r[0]),
                root_hash=bytes(r[1]),
                note=str(r[2]),
                created_at_ns=int(r[3]),
                final_at_ns=None if r[4] is None else int(r[4]),
                cosignatures=tuple(cosigs.get(int(r[0]), ())),
            )
            for r in rows
        ]

    def checkpoints(self, *, final_only: bool = False) -> list[StoredCheckpoint]:
        """Every recorded checkpoint, smallest first, with its cosignatures (audits)."""
        where = "WHERE final_at_ns IS NOT NULL " if final_only else ""
        return self._select_checkpoints(where + "ORDER BY tree_size", {})

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        found = self._select_checkpoints("WHERE tree_size = :s", {"s": size})
        return found[0] if found else None

    def latest_checkpoint(self, *, final_only: bool = True) -> StoredCheckpoint | None:
        where = "WHERE final_at_ns IS NOT NULL " if final_only else ""
        found = self._select_checkpoints(where + "ORDER BY tree_size DESC LIMIT 1", {})
        return found[0] if found else None

    def final_checkpoint_covering(self, index: int) -> StoredCheckpoint | None:
        """The latest final checkpoint whose tree includes leaf ``index``."""
        found = self._select_checkpoints(
            "WHERE final_at_ns IS NOT NULL AND tree_size > :i ORDER BY tree_size DESC LIMIT 1",
            {"i": index},
        )
        return found[0] if found else None

    def cosigned_sizes(self) -> dict[str, int]:
        """The largest checkpoint each witness has cosigned."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT witness, MAX(tree_size) FROM chain_cosignatures GROUP BY witness")
            ).all()
        return {str(r[0]): int(r[1]) for r in rows}
