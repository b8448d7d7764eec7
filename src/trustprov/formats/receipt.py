"""The provisioning receipt: an Entity Attestation Token (RFC 9711) that a chip signs after it
installs a bundle, as a CWT (RFC 8392) in a COSE_Sign1 (RFC 9052), ES256 under the chip's
identity key (docs/protocol.md 6.8).

    COSE_Sign1 (tag 18) = [ protected: bstr .cbor {1: -7},
                            unprotected: {33: bstr},   ; x5chain (RFC 9360): the chip's cert DER
                            payload: bstr .cbor claims,
                            signature: bstr (64) ]

Invariants: the payload is the canonical CBOR of `ReceiptClaims` and nothing else is accepted
(every claim present, of its type and bounds, no unknown claim); a receipt is parsed within
`MAX_RECEIPT` bytes and `RECEIPT_SHAPE`; `Receipt.verify` raises, never returns a bool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2

from trustprov.crypto.digest import DIGEST_LEN
from trustprov.crypto.keys import SIGNATURE_ALGORITHMS, PublicKey
from trustprov.crypto.schedule import DOMAIN_ID_LEN
from trustprov.errors import FormatError
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import BUNDLE_ID_LEN, MAX_SLOT
from trustprov.formats.limits import LIMITS, Shape

#: the EAT profile (RFC 9711 section 4.3.2) naming this receipt format, so that a token made
#: for any other purpose never reads as a receipt
PROFILE = "tag:trustprov.dev,2026:receipt/1"
ES256 = -7
X5CHAIN = 33  # RFC 9360 section 2
UEID_RAND = 0x01  # RFC 9711 section 4.2.1.1: a UEID of type RAND, the 16 random bytes of the UID
INTUSE_PROVISIONING = 3  # RFC 9711 section 4.3.3
MAX_RECEIPT = 8 * 1024
MAX_DEVICE_KEYS = 64
RECEIPT_SHAPE = Shape(items=512, depth=5)
UID_LEN = 16
SPKI_MAX = 256

# registered claim keys (IANA CWT Claims registry, from RFC 9711)
C_UEID = 256  # section 4.2.1
C_SWNAME = 270  # section 4.2.6
C_SWVERSION = 271  # section 4.2.7
C_PROFILE = 265  # section 4.3.2
C_INTUSE = 275  # section 4.3.3
# private-use claim keys (RFC 8392 section 4: below -65536)
C_LOT = -70001
C_BUNDLE_ID = -70002
C_MANIFEST_DIGEST = -70003
C_INSTALLED_DIGEST = -70004
C_SVN = -70005
C_LIFECYCLE = -70006
C_COUNTER = -70007
C_DEVICE_KEYS = -70008
C_DOMAIN = -70009
C_EPOCH = -70010
_CLAIMS = frozenset(
    {
        C_UEID,
        C_SWNAME,
        C_SWVERSION,
        C_PROFILE,
        C_INTUSE,
        C_LOT,
        C_BUNDLE_ID,
        C_MANIFEST_DIGEST,
        C_INSTALLED_DIGEST,
        C_SVN,
        C_LIFECYCLE,
        C_COUNTER,
        C_DEVICE_KEYS,
        C_DOMAIN,
        C_EPOCH,
    }
)


@dataclass(frozen=True)
class DeviceKey:
    """The public half of a key made on the chip (asset kind "device-key")."""

    slot: int
    name: str
    public_key: bytes  # SubjectPublicKeyInfo DER


@dataclass(frozen=True)
class ReceiptClaims:
    uid: bytes
    lot: str
    bundle_id: bytes
    manifest_digest: bytes  # SHA-256 of the manifest payload the chip's CMAC check covered
    installed_digest: bytes  # docs/protocol.md 6.7
    domain_id: bytes
    epoch: int
    software_name: str
    software_version: str
    security_version: int
    lifecycle: int
    counter: int  # the chip's provisioning counter after this install (OTP)
    device_keys: tuple[DeviceKey, ...] = ()

    @property
    def ueid(self) -> bytes:
        return bytes([UEID_RAND]) + self.uid

    def to_payload(self) -> bytes:
        return cbor.encode(
            {
                C_PROFILE: PROFILE,
                C_INTUSE: INTUSE_PROVISIONING,
                C_UEID: self.ueid,
                C_SWNAME: self.software_name,
                C_SWVERSION: [self.software_version],
                C_LOT: self.lot,
                C_BUNDLE_ID: self.bundle_id,
                C_MANIFEST_DIGEST: self.manifest_digest,
                C_INSTALLED_DIGEST: self.installed_digest,
                C_DOMAIN: self.domain_id,
                C_EPOCH: self.epoch,
                C_SVN: self.security_version,
                C_LIFECYCLE: self.lifecycle,
                C_COUNTER: self.counter,
                C_DEVICE_KEYS: [[k.slot, k.name, k.public_key] for k in self.device_keys],
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> ReceiptClaims:
        what = "receipt claims"
        value = cbor.decode(payload, limit=MAX_RECEIPT, what=what, shape=RECEIPT_SHAPE)
        m = cbor.expect_map(value, what, _CLAIMS)
        if m[C_PROFILE] != PROFILE or m[C_INTUSE] != INTUSE_PROVISIONING:
            raise FormatError(f"{what}: not a trustprov provisioning receipt")
        ueid = cbor.expect_bstr(m[C_UEID], f"{what}: ueid", 1 + UID_LEN)
        if ueid[0] != UEID_RAND:
            raise FormatError(f"{what}: ueid must be of type RAND (0x01)")
        version = cbor.expect(m[C_SWVERSION], list, f"{what}: swversion")
        if len(version) != 1:
            raise FormatError(f"{what}: swversion must be [version]")
        keys = cbor.expect(m[C_DEVICE_KEYS], list, f"{what}: device keys")
        if len(keys) > MAX_DEVICE_KEYS:
            raise FormatError(f"{what}: too many device keys")
        return cls(
            uid=ueid[1:],
            lot=cbor.expect_name(m[C_LOT], f"{what}: lot", 200),
            bundle_id=cbor.expect_bstr(m[C_BUNDLE_ID], f"{what}: bundle id", BUNDLE_ID_LEN),
            manifest_digest=cbor.expect_bstr(m[C_MANIFEST_DIGEST], f"{what}: digest", DIGEST_LEN),
            installed_digest=cbor.expect_bstr(
                m[C_INSTALLED_DIGEST], f"{what}: installed digest", DIGEST_LEN
            ),
            domain_id=cbor.expect_bstr(m[C_DOMAIN], f"{what}: domain", DOMAIN_ID_LEN),
            epoch=cbor.expect_uint(m[C_EPOCH], f"{what}: epoch", 2**32 - 1),
            software_name=cbor.expect_name(m[C_SWNAME], f"{what}: swname", LIMITS.name),
            software_version=cbor.expect_name(version[0], f"{what}: swversion", LIMITS.name),
            security_version=cbor.expect_uint(m[C_SVN], f"{what}: security version", 2**32 - 1),
            lifecycle=cbor.expect_uint(m[C_LIFECYCLE], f"{what}: lifecycle", 255),
            counter=cbor.expect_uint(m[C_COUNTER], f"{what}: counter", 2**32 - 1),
            device_keys=tuple(_device_key(k, what) for k in keys),
        )


def _device_key(value: Any, what: str) -> DeviceKey:
    k = cbor.expect(value, list, f"{what}: device key")
    if len(k) != 3:
        raise FormatError(f"{what}: a device key is [slot, name, public key]")
    return DeviceKey(
        slot=cbor.expect_uint(k[0], f"{what}: device key slot", MAX_SLOT),
        name=cbor.expect_name(k[1], f"{what}: device key name", LIMITS.name),
        public_key=cbor.expect_bstr(k[2], f"{what}: device public key", max_len=SPKI_MAX),
    )


PROTECTED = cose.encode_protected({cose.ALG: ES256})
_SIGN1_TAG = frozenset({cose.TAG_SIGN1})


def chip_sign1(payload: bytes, certificate: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """What a chip signs with its identity key (a receipt, an attestation token): a COSE_Sign1,
    ES256, its certificate as x5chain; ``sign`` is the chip's ES256 over the Sig_structure."""
    signature = sign(cose.sig_structure(PROTECTED, payload))
    return cose.CoseMessage(
        cose.TAG_SIGN1, PROTECTED, {cose.ALG: ES256}, {X5CHAIN: certificate}, payload, signature
    ).to_bytes()


def open_chip_sign1(
    data: bytes, *, limit: int, shape: Shape, what: str
) -> tuple[bytes, bytes, cose.CoseMessage]:
    """Parse (not verify) a chip's COSE_Sign1 of `chip_sign1` within ``limit`` bytes and
    ``shape``: its certificate (the chip's word, not an anchor), its payload and the message. One
    decode of the whole: the protected header is compared byte for byte with the only one it has,
    so it needs no decode of its own (an OEM reconciles a million receipts)."""
    value = cbor.decode(data, limit=limit, what=what, shape=shape, tags=_SIGN1_TAG)
    if not isinstance(value, cbor2.CBORTag) or value.tag != cose.TAG_SIGN1:
        raise FormatError(f"{what}: not a COSE_Sign1 (CBOR tag 18)")
    items = value.value
    if not isinstance(items, list) or len(items) != 4:
        raise FormatError(f"{what}: COSE_Sign1 must be an array of 4")
    if items[0] != PROTECTED:
        raise FormatError(f"{what}: protected header must be exactly {{1: -7}} (ES256)")
    u = cbor.expect_map(items[1], f"{what}: unprotected header", {X5CHAIN})
    cert = cbor.expect_bstr(u[X5CHAIN], f"{what}: x5chain", max_len=LIMITS.certificate)
    payload = cbor.expect_bstr(items[2], f"{what}: payload")
    signature = cbor.expect_bstr(items[3], f"{what}: signature", 64)
    message = cose.CoseMessage(cose.TAG_SIGN1, PROTECTED, {cose.ALG: ES256}, u, payload, signature)
    return cert, payload, message


def make_receipt(
    claims: ReceiptClaims, certificate: bytes, sign: Callable[[bytes], bytes]
) -> bytes:
    """The signed receipt; ``sign`` is the chip's ES256 over the Sig_structure."""
    return chip_sign1(claims.to_payload(), certificate, sign)


@dataclass(frozen=True)
class Receipt:
    """A parsed receipt; its signature is not checked until `verify`."""

    claims: ReceiptClaims
    certificate: bytes  # DER, from the unprotected x5chain
    message: cose.CoseMessage = field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Parse (not verify) a receipt (`open_chip_sign1`)."""
        cert, payload, message = open_chip_sign1(
            data, limit=MAX_RECEIPT, shape=RECEIPT_SHAPE, what="receipt"
        )
        return cls(ReceiptClaims.from_payload(payload), cert, message)

    def verify(self, key: PublicKey) -> None:
        """Raise `VerificationError` unless the chip key ``key`` signed this receipt."""
        SIGNATURE_ALGORITHMS["ES256"].verify(key, self.message.auth, self.message.to_be_signed())
