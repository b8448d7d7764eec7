"""trustprov: provision secret assets into chips at an untrusted contract manufacturer.

Implements the method of US 2023/0063743 A1 on standard artifacts (COSE, CBOR, X.509). The chip
is its own secure element: only the ICM-signed provisioning software, running on a chip, ever
combines the family's secret shares with the OEM's contribution into the keys that protect the
OEM's assets.
"""

__version__ = "0.1.0"
