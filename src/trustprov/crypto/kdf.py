"""KDF(K, label, context, L): NIST SP 800-108r1 counter mode with AES-256-CMAC as the PRF.

Fixed input, exactly as pyca/cryptography's `KBKDFCMAC` builds it with the parameters below and as
`docs/protocol.md` specifies byte for byte::

    PRF input for block i = [i]_32 || label || 0x00 || context || [L*8]_32

with [x]_32 a 4-byte big-endian integer, i counting from 1 and L the output length in bytes.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

KEY_LEN = 32
MAX_OUTPUT = 1024


def kdf(key: bytes, label: str, context: bytes, length: int = KEY_LEN) -> bytes:
    """Derive ``length`` bytes from the 32-byte ``key`` for the use named by ``label``."""
    if len(key) != KEY_LEN:
        raise ValueError("KDF key must be 32 bytes")
    if not 1 <= length <= MAX_OUTPUT:
        raise ValueError("KDF output length out of range")
    return KBKDFCMAC(
        algorithm=algorithms.AES,
        mode=Mode.CounterMode,
        length=length,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=label.encode("ascii"),
        context=context,
        fixed=None,
    ).derive(key)
