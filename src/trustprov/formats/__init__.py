"""COSE/CBOR artifacts as typed classes that validate on construction.

Each artifact has ``from_bytes`` (size-limited, raises `FormatError` for anything malformed,
unknown or of the wrong kind) and ``to_bytes`` (one canonical encoder: the bytes that get signed or
MACed come only from `trustprov.formats.cbor.encode`).
"""
