"""Clearing and settlement: windows, net positions, the settlement chain, member files.

Every chain the ledger commits falls in one settlement window by its chain id (the timestamp of
its first transfer, given when its batch commits). Windows are ranges ``[start_ns, end_ns)``
cut at configurable cut-offs; the open window is whatever follows the last closed one, so a late
or recovered posting lands in the window open when it commits. A window goes open → closed
(positions computed set-based over the ledger, member files written, results digested) →
settled (one linked chain clears the network's mirrors and moves the net amounts between the
members' accounts at the settlement bank; its commitment is the results digest, so the audit log
carries every settled window's figures). See docs/reference/settlement.md and
docs/decisions/0021-settlement.md.

Modules: ``chart`` (which accounts clear), ``windows`` (cut-offs), ``positions`` (pure figures
from the ledger's sums), ``clearing`` (the clearing files), ``camt053`` (the statement),
``close`` and ``settle`` (the two state changes), ``queries``, ``reconcile``, ``service``
(schedule, directory, closing what is due), ``router``, ``cli``.
"""
