"""flashpay: an open-source mobile payment network.

Wallet back end, the network's switch, clearing and settlement, simulated issuer and acquirer
banks, EMVCo QR codes, a co-signed audit log, an HTTP API and a CLI. See docs/ and
ARCHITECTURE.md for the map.
"""

__version__ = "0.1.0"
