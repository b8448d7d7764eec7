"""The authorized set: the UIDs of the chips an OEM allows its bundle on, as a Merkle tree.

Hashes are those of RFC 9162 section 2.1, domain-separated so that no leaf can pose as a node::

    leaf(uid)     = SHA-256(0x00 || uid)            uid: 16 bytes
    node(l, r)    = SHA-256(0x01 || l || r)
    MTH(D[n])     = leaf(d0)                                  n = 1
                  = node(MTH(D[0:k]), MTH(D[k:n]))           n > 1, k the largest power of 2 < n

over the UIDs sorted ascending (each once). The tree of that shape is built level by level: pair
adjacent nodes, an odd last node moves up unchanged. An inclusion proof is RFC 9162's audit path
(section 2.1.3.1) with the leaf index and the tree size; `verify_inclusion` is its verification
algorithm (section 2.1.3.2). A set is never empty: a proof against a tree of size 0 fails.

AUTH file (canonical CBOR)::

    ["trustprov-authorized", 1, family: bstr .8 / null, root: bstr .32, uids: bstr]

``uids`` is the UIDs concatenated, 16 bytes each, strictly ascending. The parser bounds the size
(``LIMITS.authorized``), checks the order, and recomputes the root: a file whose root is not its
UIDs' is refused. Proof on the wire (a CBOR value)::

    [leaf-index: uint, tree-size: uint, path: [* bstr .32]]

Invariants: every value here is public (UIDs and hashes); verification raises, never returns a
bool; the levels are kept as concatenated bytes, so a million-UID set costs ~64 MB and pickles
as a few objects.
"""

from __future__ import annotations

import bisect
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trustprov.crypto.digest import DIGEST_LEN, sha256
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS, Shape

AUTH_MAGIC = "trustprov-authorized"
AUTH_FORMAT = 1
UID_LEN = 16
MAX_PATH = 64  # a tree of fewer than 2**64 leaves has a shorter audit path
_LEAF = b"\x00"
_NODE = b"\x01"
_AUTH_SHAPE = Shape(items=8, depth=1)
_PROOF_SHAPE_ITEMS = 3 + 1 + MAX_PATH


def leaf_hash(uid: bytes) -> bytes:
    return sha256(_LEAF + uid)  # one update of the joined input: a third of the calls


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(_NODE + left + right)


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 audit path of the leaf at ``index`` in a tree of ``size`` leaves."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_cbor(self) -> list[Any]:
        return [self.index, self.size, list(self.path)]

    @classmethod
    def from_cbor(cls, value: Any, what: str = "inclusion proof") -> InclusionProof:
        v = cbor.expect(value, list, what)
        if len(v) != 3:
            raise FormatError(f"{what}: needs [leaf-index, tree-size, path]")
        path = cbor.expect(v[2], list, f"{what}: path")
        if len(path) > MAX_PATH:
            raise FormatError(f"{what}: more than {MAX_PATH} hashes")
        return cls(
            cbor.expect_uint(v[0], f"{what}: leaf index"),
            cbor.expect_uint(v[1], f"{what}: tree size"),
            tuple(cbor.expect_bstr(h, f"{what}: hash", DIGEST_LEN) for h in path),
        )

    def to_bytes(self) -> bytes:
        return cbor.encode(self.to_cbor())

    @classmethod
    def from_bytes(cls, data: bytes) -> InclusionProof:
        shape = Shape(items=_PROOF_SHAPE_ITEMS, depth=2)
        limit = 16 + MAX_PATH * (DIGEST_LEN + 2)
        return cls.from_cbor(cbor.decode(data, limit=limit, what="inclusion proof", shape=shape))


def verify_inclusion(
    root: bytes, uid: bytes, proof: InclusionProof, *, size: int | None = None
) -> None:
    """Raise `VerificationError` unless ``proof`` shows ``uid`` under ``root`` (RFC 9162
    section 2.1.3.2, steps numbered as there), in a tree of ``size`` leaves when given.

    A root alone does not fix the tree size (a proof in a tree of n leaves may also verify as
    one of n + 1); membership holds either way, as no leaf hash can be made to equal a node's.
    A chip knows the size from its manifest and checks it too."""
    what = "inclusion proof"
    if len(uid) != UID_LEN or len(root) != DIGEST_LEN:
        raise VerificationError(f"{what}: a UID is {UID_LEN} bytes, a root {DIGEST_LEN}")
    if size is not None and proof.size != size:
        raise VerificationError(f"{what}: for a tree of another size", code="unauthorized")
    # 1. the leaf must lie in the tree (a tree of size 0 holds none)
    if proof.index >= proof.size:
        raise VerificationError(f"{what}: leaf index outside the tree", code="unauthorized")
    # 2.-3.
    fn, sn, r = proof.index, proof.size - 1, leaf_hash(uid)
    # 4.
    for p in proof.path:
        if len(p) != DIGEST_LEN:
            raise VerificationError(f"{what}: hashes are {DIGEST_LEN} bytes", code="unauthorized")
        if sn == 0:  # a. a path longer than the tree is tall
            raise VerificationError(f"{what}: path too long", code="unauthorized")
        if fn & 1 or fn == sn:  # b.
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:  # c.
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # 5. the path must reach the top exactly, and at this root (public values: no secret here)
    if sn != 0 or not hmac.compare_digest(r, root):
        raise VerificationError(f"{what}: UID {uid.hex()} is not in the set", code="unauthorized")


class AuthorizedSet:
    """Sorted distinct UIDs and the Merkle tree over them (never empty)."""

    def __init__(self, uids: bytes, family_id: bytes | None = None) -> None:
        """``uids``: the UIDs concatenated, strictly ascending (checked)."""
        if len(uids) % UID_LEN or not uids:
            raise FormatError(f"authorized set: needs one or more {UID_LEN}-byte UIDs")
        if len(uids) // UID_LEN > LIMITS.authorized_uids:
            raise FormatError(f"authorized set: more than {LIMITS.authorized_uids} UIDs")
        if family_id is not None and len(family_id) != FAMILY_ID_LEN:
            raise FormatError(f"authorized set: a family id is {FAMILY_ID_LEN} bytes")
        self._blob = uids
        self._sorted: list[bytes] | None = None  # the UIDs as a list, made on the first lookup
        self.family_id = family_id
        n = len(uids) // UID_LEN
        prev = b""
        for i in range(n):
            u = uids[i * UID_LEN : (i + 1) * UID_LEN]
            if u <= prev:
                raise FormatError("authorized set: UIDs must be strictly ascending (each once)")
            prev = u
        # levels[0] the leaf hashes, levels[-1] the root; each concatenated 32-byte hashes
        level = b"".join(leaf_hash(uids[i * UID_LEN : (i + 1) * UID_LEN]) for i in range(n))
        self._levels = [level]
        while len(level) > DIGEST_LEN:
            count = len(level) // DIGEST_LEN
            nodes = [
                node_hash(
                    level[i * DIGEST_LEN : (i + 1) * DIGEST_LEN],
                    level[(i + 1) * DIGEST_LEN : (i + 2) * DIGEST_LEN],
                )
                for i in range(0, count - 1, 2)
            ]
            if count & 1:  # the odd last node moves up unchanged (RFC 9162's k split)
                nodes.append(level[(count - 1) * DIGEST_LEN :])
            level = b"".join(nodes)
            self._levels.append(level)

    @classmethod
    def from_uids(cls, uids: Iterable[bytes], family_id: bytes | None = None) -> AuthorizedSet:
        """The set of ``uids`` (any order; a UID given twice is refused)."""
        ordered = sorted(uids)
        for u in ordered:
            if len(u) != UID_LEN:
                raise FormatError(f"authorized set: a UID is {UID_LEN} bytes")
        return cls(b"".join(ordered), family_id)

    def __repr__(self) -> str:
        return f"AuthorizedSet({len(self)} UIDs, root={self.root.hex()})"

    def __len__(self) -> int:
        return len(self._blob) // UID_LEN

    def __reduce__(self) -> tuple[Any, ...]:
        # to a worker process: the UIDs, not the ~4x larger tree (rebuilt there)
        return (AuthorizedSet, (self._blob, self.family_id))

    @property
    def root(self) -> bytes:
        return self._levels[-1]

    @property
    def uids(self) -> list[bytes]:
        """The UIDs, ascending."""
        b = self._blob
        return [b[i : i + UID_LEN] for i in range(0, len(b), UID_LEN)]

    def _index(self, uid: bytes) -> int | None:
        if len(uid) != UID_LEN:
            return None
        if self._sorted is None:  # a list bisects in C: a proof per chip of a lot stays cheap
            self._sorted = self.uids
        i = bisect.bisect_left(self._sorted, uid)
        return i if i < len(self._sorted) and self._sorted[i] == uid else None

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, bytes) and self._index(uid) is not None

    def proof(self, uid: bytes) -> InclusionProof:
        """The audit path of ``uid``; `FormatError` if it is not in the set."""
        index = self._index(uid)
        if index is None:
            raise FormatError(f"authorized set: UID {uid.hex()} is not in the set")
        path = []
        m = index
        for level in self._levels[:-1]:
            sibling = m ^ 1
            if sibling * DIGEST_LEN < len(level):  # else m is the odd last node: no sibling here
                path.append(level[sibling * DIGEST_LEN : (sibling + 1) * DIGEST_LEN])
            m >>= 1
        return InclusionProof(index, len(self), tuple(path))

    def to_bytes(self) -> bytes:
        return cbor.encode([AUTH_MAGIC, AUTH_FORMAT, self.family_id, self.root, self._blob])

    @classmethod
    def from_bytes(cls, data: bytes) -> AuthorizedSet:
        what = "authorized set"
        v = cbor.expect(
            cbor.decode(data, limit=LIMITS.authorized, what=what, shape=_AUTH_SHAPE), list, what
        )
        if len(v) != 5 or v[0] != AUTH_MAGIC or v[1] != AUTH_FORMAT or isinstance(v[1], bool):
            raise FormatError(f"{what}: not a trustprov authorized set (format {AUTH_FORMAT})")
        family = None if v[2] is None else cbor.expect_bstr(v[2], f"{what}: family", FAMILY_ID_LEN)
        root = cbor.expect_bstr(v[3], f"{what}: root", DIGEST_LEN)
        uids = cbor.expect_bstr(v[4], f"{what}: UIDs")
        s = cls(uids, family)
        if not hmac.compare_digest(s.root, root):
            raise VerificationError(f"{what}: its root is not the root of its UIDs")
        return s
