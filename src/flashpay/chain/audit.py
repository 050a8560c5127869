"""``audit``: re-derive every leaf from the ledger, rebuild the tree, check every checkpoint.

What is compared, and what each kind of tampering shows as (``Finding.kind``):

1. log rows: leaf indexes must be exactly ``0 .. tree_size-1`` — ``log_entry_missing``,
   ``log_entry_beyond_size``;
2. each leaf against the ledger: the leaf at position ``i`` must equal ``leaf.encode(i, chain)``
   of the ledger chain it names — ``leaf_reordered`` (the stored leaf carries another index),
   ``ledger_chain_missing`` (the chain's rows were deleted), ``transfer_changed`` (a field of a
   transfer differs; the field is named), ``transfer_deleted``/``transfer_inserted`` (the chain
   has fewer/more transfers), ``commitment_changed``, ``leaf_changed`` (any other byte);
3. every ledger chain must be in the log or still in the outbox — ``ledger_chain_not_in_log``
   (an inserted chain; named by chain id and timestamp);
4. the stored node hashes (level 1 up) against the tree rebuilt from the stored leaves —
   ``node_changed`` (level, index and the leaf range it covers);
5. every recorded checkpoint: the root of the tree rebuilt from the *ledger-derived* leaves
   must equal its root — ``checkpoint_mismatch`` — and, with a keys file, its log signature and
   (for a final one) the quorum of cosignatures must verify — ``checkpoint_signature``.

Memory is O(tree size) hashes (a level of the tree at a time); this is an offline tool.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import sqlalchemy as sa

from flashpay.chain import leaf as leaf_codec
from flashpay.chain import merkle
from flashpay.chain.receipt import ReceiptError, TrustPolicy, verify_checkpoint
from flashpay.chain.service import LEVEL_SHIFT, ChainLog
from flashpay.ledger.service import Ledger
from flashpay.ledger.types import CommittedChain

PAGE = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    position: int | None  # leaf index, when the finding has one
    message: str

    def __str__(self) -> str:
        where = f"position {self.position}: " if self.position is not None else ""
        return f"{self.kind}: {where}{self.message}"


@dataclass(slots=True)
class AuditReport:
    tree_size: int = 0
    leaves_checked: int = 0
    ledger_chains: int = 0
    pending_in_outbox: int = 0
    checkpoints_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _log_rows(log: ChainLog) -> Iterator[tuple[int, int, bytes]]:
    start = 0
    while True:
        page = log.leaves(start, PAGE)
        if not page:
            return
        yield from page
        start = page[-1][0] + 1


def _ledger_chains(ledger: Ledger) -> dict[int, CommittedChain]:
    chains: dict[int, CommittedChain] = {}
    after = 0
    while True:
        page = ledger.iter_chains(after_chain_id=after, limit=PAGE)
        if not page:
            return chains
        for c in page:
            chains[c.chain_id] = c
        after = page[-1].chain_id


def _outbox(ledger: Ledger) -> set[int]:
    with ledger.engine.connect() as connection:
        return {
            int(r[0]) for r in connection.execute(sa.text("SELECT chain_id FROM ledger_outbox"))
        }


def _compare(position: int, chain: CommittedChain, stored: bytes, expected: bytes) -> Finding:
    """Name what differs between the stored leaf and the one the ledger gives."""
    try:
        old = leaf_codec.decode(stored)
    except leaf_codec.LeafError as exc:
        return Finding("leaf_changed", position, f"stored leaf does not decode: {exc}")
    if old.leaf_index != position:
        return Finding("leaf_reordered", position, f"the leaf stored here is leaf {old.leaf_index}")
    if old.chain_id != chain.chain_id:
        return Finding(
            "leaf_changed", position, f"leaf is of chain {old.chain_id}, row of {chain.chain_id}"
        )
    if old.commitment != chain.commitment:
        return Finding("commitment_changed", position, f"chain {chain.chain_id}'s commitment")
    by_id = {t.id: t for t in chain.transfers}
    logged = {t.id: t for t in old.transfers}
    for t in old.transfers:
        now = by_id.get(t.id)
        if now is None:
            return Finding(
                "transfer_deleted", position, f"transfer {t.id} of chain {chain.chain_id}"
            )
        for f in fields(t):
            if getattr(t, f.name) != getattr(now, f.name):
                return Finding(
                    "transfer_changed",
                    position,
                    f"transfer {t.id} of chain {chain.chain_id}: {f.name} is "
                    f"{getattr(now, f.name)} in the ledger, {getattr(t, f.name)} in the log",
                )
    for t in chain.transfers:
        if t.id not in logged:
            return Finding(
                "transfer_inserted", position, f"transfer {t.id} in chain {chain.chain_id}"
            )
    if stored != expected:
        return Finding("leaf_changed", position, f"chain {chain.chain_id}: transfer order")
    return Finding("leaf_changed", position, "unexplained difference")  # pragma: no cover


def _check_nodes(log: ChainLog, leaf_hashes: list[bytes], report: AuditReport) -> None:
    """Compare every stored node (level 1 up) with the tree rebuilt from the stored leaves."""
    level_hashes = [
        merkle.node_hash(leaf_hashes[i], leaf_hashes[i + 1])
        for i in range(0, len(leaf_hashes) - 1, 2)
    ]
    level = 1
    shown = 0
    with log.engine.connect() as connection:
        while level_hashes:
            lo, hi = level << LEVEL_SHIFT, (level + 1) << LEVEL_SHIFT
            stored = {
                int(r[0]) - lo: bytes(r[1])
                for r in connection.execute(
                    sa.text(
                        "SELECT node_id, hash FROM chain_nodes "
                        "WHERE node_id >= :lo AND node_id < :hi"
                    ),
                    {"lo": lo, "hi": hi},
                )
            }
            for index, h in enumerate(level_hashes):
                if stored.get(index) != h and shown < 20:
                    first, last = index << level, ((index + 1) << level) - 1
                    report.findings.append(
                        Finding(
                            "node_changed",
                            first,
                            f"stored node (level {level}, index {index}) over leaves "
                            f"{first}..{last} is {'missing' if index not in stored else 'wrong'}",
                        )
                    )
                    shown += 1
            extra = sorted(set(stored) - set(range(len(level_hashes))))
            if extra:
                report.findings.append(
                    Finding(
                        "node_changed",
                        None,
                        f"{len(extra)} stored node(s) at level {level} beyond the tree",
                    )
                )
            level_hashes = [
                merkle.node_hash(level_hashes[i], level_hashes[i + 1])
                for i in range(0, len(level_hashes) - 1, 2)
            ]
            level += 1


def audit(log: ChainLog, ledger: Ledger, *, trust: TrustPolicy | None = None) -> AuditReport:
    """Run every check of the module docstring; ``report.ok`` when nothing was found."""
    report = AuditReport(tree_size=log.size())
    chains = _ledger_chains(ledger)
    pending = _outbox(ledger)
    report.ledger_chains = len(chains)
    report.pending_in_outbox = len(pending)
    derived: list[bytes] = []  # ledger-derived leaf hashes, in log order
    stored_hashes: list[bytes] = []
    in_log: set[int] = set()
    expected_index = 0
    for index, chain_id, data in _log_rows(log):
        if index >= report.tree_size:
            report.findings.append(
                Finding("log_entry_beyond_size", index, f"chain {chain_id} beyond the tree size")
            )
            continue
        while expected_index < index:
            report.findings.append(Finding("log_entry_missing", expected_index, "no leaf row"))
            derived.append(merkle.EMPTY_ROOT)  # placeholder: checkpoints will not match
            stored_hashes.append(merkle.EMPTY_ROOT)
            expected_index += 1
        expected_index = index + 1
        in_log.add(chain_id)
        report.leaves_checked += 1
        stored_hashes.append(merkle.leaf_hash(data))
        chain = chains.get(chain_id)
        if chain is None:
            report.findings.append(
                Finding("ledger_chain_missing", index, f"chain {chain_id} is not in the ledger")
            )
            derived.append(merkle.leaf_hash(data))
            continue
        expected = leaf_codec.encode(index, chain)
        derived.append(merkle.leaf_hash(expected))
        if expected != data:
            report.findings.append(_compare(index, chain, data, expected))
    while expected_index < report.tree_size:
        report.findings.append(Finding("log_entry_missing", expected_index, "no leaf row"))
        derived.append(merkle.EMPTY_ROOT)
        stored_hashes.append(merkle.EMPTY_ROOT)
        expected_index += 1
    for chain_id in sorted(set(chains) - in_log - pending):
        first = chains[chain_id].transfers[0] if chains[chain_id].transfers else None
        stamp = f", first transfer timestamp {first.timestamp}" if first else ""
        report.findings.append(
            Finding(
                "ledger_chain_not_in_log",
                None,
                f"ledger chain {chain_id} is in no leaf and not in the outbox{stamp}",
            )
        )
    _check_nodes(log, stored_hashes, report)
    checkpoints = log.checkpoints()
    sizes = {c.size for c in checkpoints}
    roots: dict[int, bytes] = {}
    frontier: list[tuple[int, bytes]] = []  # (level, hash), the compact range of [0, n)
    if 0 in sizes:
        roots[0] = merkle.EMPTY_ROOT
    for n, h in enumerate(derived, start=1):
        level = 0
        while frontier and frontier[-1][0] == level:
            h = merkle.node_hash(frontier.pop()[1], h)
            level += 1
        frontier.append((level, h))
        if n in sizes:
            roots[n] = merkle.fold([x for _, x in frontier])
    first_bad = min((f.position for f in report.findings if f.position is not None), default=None)
    for c in checkpoints:
        report.checkpoints_checked += 1
        root = roots.get(c.size)
        if root is None:
            report.findings.append(
                Finding(
                    "checkpoint_mismatch", None, f"checkpoint of size {c.size} is beyond the log"
                )
            )
        elif root != c.root_hash:
            hint = f"; first changed leaf at position {first_bad}" if first_bad is not None else ""
            report.findings.append(
                Finding(
                    "checkpoint_mismatch",
                    first_bad,
                    f"the rebuilt tree of size {c.size} does not match the signed checkpoint{hint}",
                )
            )
        if trust is not None:
            text = c.cosigned_note() if c.final_at_ns is not None else c.note
            policy = trust if c.final_at_ns is not None else TrustPolicy(trust.log, (), 0)
            try:
                checkpoint, _ = verify_checkpoint(text, policy)
                if checkpoint.size != c.size or checkpoint.root_hash != c.root_hash:
                    raise ReceiptError("signed text differs from the recorded size or root")
            except ReceiptError as exc:
                report.findings.append(
                    Finding("checkpoint_signature", None, f"checkpoint of size {c.size}: {exc}")
                )
    return report
