"""The signed provisioning software: COSE_Sign1 (ES256 by default; ES384, EdDSA selectable).

Protected header::

    1 (alg)            -7 | -35 | -8
    3 (content type)   "application/vnd.trustprov.software+cbor"
    "tp-name"          tstr       name of the software
    "tp-version"       tstr       version, for people
    "tp-svn"           uint       security version; chips refuse it below their OTP counter
    "tp-code"          bstr .32   SHA-256 of the payload, the firmware code archive

Payload: the code archive, a canonical CBOR map {relative path (tstr): file bytes (bstr)} of the
software's sources: the firmware and the libraries it is linked with (`CODE_PARTS`). The chip's
boot ROM refuses the image unless the signature verifies under its immutable K_PUK_ICM_PROV,
"tp-code" equals the digest of the code it is about to run, and "tp-svn" is not below its
counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustprov.crypto.digest import DIGEST_LEN, sha256
from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SIGNATURE_BY_ID,
    PrivateKey,
    PublicKey,
    key_type_of,
)
from trustprov.errors import FormatError, VerificationError
from trustprov.formats import cbor, cose
from trustprov.formats.limits import LIMITS

CONTENT_TYPE = "application/vnd.trustprov.software+cbor"
#: the package that holds the provisioning software's code, as installed
CODE_ROOT = Path(__file__).resolve().parent.parent
#: what the software is made of: the firmware and every library it is linked with on silicon
CODE_PARTS = ("errors.py", "crypto", "formats", "firmware")
H_NAME, H_VERSION, H_SVN, H_CODE = "tp-name", "tp-version", "tp-svn", "tp-code"
MAX_SVN = 2**32 - 1


def code_archive(root: Path = CODE_ROOT) -> bytes:
    """The canonical archive of the software's ``*.py`` files (`CODE_PARTS` under ``root``)."""
    files: dict[str, bytes] = {}
    for part in CODE_PARTS:
        path = root / part
        for p in [path] if path.is_file() else sorted(path.rglob("*.py")):
            if "__pycache__" not in p.parts:
                files[p.relative_to(root).as_posix()] = p.read_bytes()
    if not files:
        raise FormatError(f"no provisioning software code under {root}")
    return cbor.encode(files)


@dataclass(frozen=True)
class SignedSoftware:
    name: str
    version: str
    security_version: int
    alg: str
    code: bytes = field(repr=False)
    message: cose.CoseMessage = field(repr=False)

    @property
    def code_digest(self) -> bytes:
        return bytes(self.message.protected[H_CODE])

    @classmethod
    def sign(
        cls,
        key: PrivateKey,
        *,
        alg: str,
        name: str,
        version: str,
        security_version: int,
        code: bytes,
    ) -> SignedSoftware:
        algorithm = SIGNATURE_ALGORITHMS[alg]
        if key_type_of(key) != algorithm.key_type:
            raise VerificationError(
                f"{alg} needs a {algorithm.key_type} signing key, this one is {key_type_of(key)}",
                code="wrong-key-type",
            )
        header: dict[Any, Any] = {
            cose.ALG: algorithm.cose_id,
            cose.CONTENT_TYPE: CONTENT_TYPE,
            H_NAME: name,
            H_VERSION: version,
            H_SVN: security_version,
            H_CODE: sha256(code),
        }
        protected = cose.encode_protected(header)
        signature = algorithm.sign(key, cose.sig_structure(protected, code))
        message = cose.CoseMessage(cose.TAG_SIGN1, protected, header, {}, code, signature)
        return cls.from_message(message)

    @classmethod
    def from_bytes(cls, data: bytes, *, check_code: bool = True) -> SignedSoftware:
        """Parse an image; with ``check_code``, also check that the payload hashes to "tp-code".

        A boot ROM passes ``check_code=False``: it verifies the signature, which covers the
        payload and "tp-code" alike, and compares "tp-code" with the digest of the code it runs,
        so hashing the payload a second time would prove nothing more (and costs a pass over
        the whole image per chip).
        """
        what = "provisioning software"
        message = cose.decode(
            data, cose.TAG_SIGN1, limit=LIMITS.software, what=what, shape=LIMITS.software_shape
        )
        return cls.from_message(message, check_code=check_code)

    @classmethod
    def from_message(cls, m: cose.CoseMessage, *, check_code: bool = True) -> SignedSoftware:
        what = "provisioning software header"
        h = cbor.expect_map(
            m.protected, what, {cose.ALG, cose.CONTENT_TYPE, H_NAME, H_VERSION, H_SVN, H_CODE}
        )
        alg_id = cbor.expect(h[cose.ALG], int, f"{what}: alg")
        if alg_id not in SIGNATURE_BY_ID:
            raise FormatError(f"{what}: unsupported signature algorithm {cbor.show(alg_id)}")
        if h[cose.CONTENT_TYPE] != CONTENT_TYPE:
            raise FormatError(f"{what}: not trustprov provisioning software")
        digest = cbor.expect_bstr(h[H_CODE], f"{what}: code digest", DIGEST_LEN)
        if m.unprotected:
            raise FormatError(f"{what}: unexpected unprotected header")
        if check_code and sha256(m.body) != digest:
            raise FormatError(f"{what}: payload does not match its code digest")
        return cls(
            name=cbor.expect_name(h[H_NAME], f"{what}: name", LIMITS.name),
            version=cbor.expect_name(h[H_VERSION], f"{what}: version", LIMITS.name),
            security_version=cbor.expect_uint(h[H_SVN], f"{what}: security version", MAX_SVN),
            alg=SIGNATURE_BY_ID[alg_id].name,
            code=m.body,
            message=m,
        )

    def verify(self, key: PublicKey) -> None:
        """Raise `VerificationError` unless signed by the private half of ``key``."""
        SIGNATURE_ALGORITHMS[self.alg].verify(key, self.message.auth, self.message.to_be_signed())

    def to_bytes(self) -> bytes:
        return self.message.to_bytes()
