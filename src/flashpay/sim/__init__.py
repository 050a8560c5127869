"""The demo network and a deterministic traffic simulator (``flashpay demo``).

At this stage the simulator drives the ledger directly with the postings of ARCHITECTURE.md §4
(the institutions, wallet and payments packages will take over the postings as they land; the
simulator will then call their public service functions instead).
"""
