"""The signed provisioning software: COSE_Sign1 (ES256 by default; ES384, EdDSA, ML-DSA-65,
ML-DSA-87 selectable), or COSE_Sign with one signature per algorithm of a hybrid suite
(ES256+ML-DSA-65), every one required.

Protected header (of the COSE_Sign1; of the COSE_Sign's body, without alg)::

    1 (alg)            -7 | -35 | -8 | -49 | -50          (COSE_Sign1 only)
    3 (content type)   "application/vnd.trustprov.software+cbor"
    "tp-name"          tstr       name of the software
    "tp-version"       tstr       version, for people
    "tp-svn"           uint       security version; chips refuse it below their OTP counter
    "tp-code"          bstr .32   SHA-256 of the payload, the firmware code archive

Payload: the code archive, a canonical CBOR map {relative path (tstr): file bytes (bstr)} of the
software's sources: every module of the firmware and every module of the libraries it is linked
with (`CODE_PARTS`) that the firmware's import graph reaches (`code_modules`), nothing else, so
the image carries no code the chip never runs. The chip's
boot ROM refuses the image unless the signature verifies under its immutable K_PUK_ICM_PROV,
"tp-code" equals the digest of the code it is about to run, and "tp-svn" is not below its
counter. A COSE_Sign's signatures each have the protected header {1: alg} alone and an empty
unprotected header, in the suite's order (classical first); the suite they spell must be one of
`SUITES`, and verification needs every one of them to verify under its own key.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustprov.crypto.digest import DIGEST_LEN, sha256
from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SIGNATURE_BY_ID,
    SUITES,
    KeySigner,
    PrivateKey,
    PublicKey,
    Signer,
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


PACKAGE = "trustprov"


def code_archive(root: Path = CODE_ROOT) -> bytes:
    """The canonical archive of the software's ``*.py`` files: `code_modules` of ``root``."""
    files = {name: (root / name).read_bytes() for name in code_modules(root)}
    if not files:
        raise FormatError(f"no provisioning software code under {root}")
    return cbor.encode(files)


def code_modules(root: Path = CODE_ROOT) -> list[str]:
    """The files (relative to ``root``) of the modules the firmware runs with: every ``*.py`` of
    ``firmware/``, then every module of `CODE_PARTS` its imports reach, transitively, with the
    ``__init__.py`` of each package on the way (importing a module runs them). The graph is read
    from the sources (imports inside functions count: they run; imports under ``if
    TYPE_CHECKING`` do not) and walks through the chip's own modules (the hardware interface the
    firmware is given: they are not in the archive, but what they import from `CODE_PARTS` is)."""
    firmware = root / "firmware"
    todo = [p for p in sorted(firmware.rglob("*.py")) if "__pycache__" not in p.parts]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            todo.extend(_module_files(root, module))
    wanted = {p.relative_to(root).as_posix() for p in seen}
    return sorted(n for n in wanted if n.split("/")[0] in CODE_PARTS and n != "__init__.py")


def _imports(path: Path) -> Iterator[str]:
    """The ``trustprov.*`` module names a source file imports when it runs."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)  # typing only: never imported at run time
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)  # a submodule, maybe
        stack.extend(ast.iter_child_nodes(node))


def _module_files(root: Path, module: str) -> list[Path]:
    """The files importing ``module`` runs: its own and its packages' ``__init__.py``."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return []
    files: list[Path] = []
    for i in range(2, len(parts) + 1):
        base = root.joinpath(*parts[1:i])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                files.append(candidate)
    return files


def _signers(keys: PrivateKey | Signer | Sequence[PrivateKey | Signer]) -> list[Signer]:
    many: Sequence[PrivateKey | Signer] = keys if isinstance(keys, Sequence) else [keys]
    return [KeySigner(k) if isinstance(k, PrivateKey) else k for k in many]


@dataclass(frozen=True)
class SignedSoftware:
    name: str
    version: str
    security_version: int
    alg: str  # the suite: one algorithm, or a hybrid such as "ES256+ML-DSA-65"
    code: bytes = field(repr=False)
    message: cose.CoseMessage = field(repr=False)

    @property
    def code_digest(self) -> bytes:
        return bytes(self.message.protected[H_CODE])

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self.alg.split("+"))

    @functools.cached_property
    def _to_be_signed(self) -> bytes:
        # a COSE_Sign1's Sig_structure: encoded once per parsed image, however many chips
        # verify it (it repeats the whole code archive)
        return self.message.to_be_signed()

    @classmethod
    def sign(
        cls,
        key: PrivateKey | Signer | Sequence[PrivateKey | Signer],
        *,
        alg: str,
        name: str,
        version: str,
        security_version: int,
        code: bytes,
    ) -> SignedSoftware:
        """Sign ``code`` with one key per algorithm of the suite ``alg``, in the suite's order."""
        signers = _signers(key)
        if alg not in SUITES or len(signers) != len(SUITES[alg]):
            raise VerificationError(
                f"{alg} needs {len(SUITES.get(alg, ()))} signing keys, not {len(signers)}",
                code="wrong-key-type",
            )
        algorithms = [SIGNATURE_ALGORITHMS[a] for a in SUITES[alg]]
        for algorithm, signer in zip(algorithms, signers, strict=True):
            if signer.key_type != algorithm.key_type:
                raise VerificationError(
                    f"{algorithm.name} needs a {algorithm.key_type} signing key, "
                    f"this one is {signer.key_type}",
                    code="wrong-key-type",
                )
        header: dict[Any, Any] = {
            cose.CONTENT_TYPE: CONTENT_TYPE,
            H_NAME: name,
            H_VERSION: version,
            H_SVN: security_version,
            H_CODE: sha256(code),
        }
        if len(algorithms) == 1:
            header = {cose.ALG: algorithms[0].cose_id, **header}
            protected = cose.encode_protected(header)
            signature = signers[0].sign(algorithms[0], cose.sig_structure(protected, code))
            message = cose.CoseMessage(cose.TAG_SIGN1, protected, header, {}, code, signature)
            return cls.from_message(message)
        protected = cose.encode_protected(header)
        signatures = []
        for algorithm, signer in zip(algorithms, signers, strict=True):
            sig_header = {cose.ALG: algorithm.cose_id}
            sig_protected = cose.encode_protected(sig_header)
            tbs = cose.sign_structure(protected, sig_protected, code)
            signatures.append(
                cose.CoseSignature(sig_protected, sig_header, {}, signer.sign(algorithm, tbs))
            )
        message = cose.CoseMessage(
            cose.TAG_SIGN, protected, header, {}, code, b"", tuple(signatures)
        )
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
        message = cose.decode_signed(
            data, limit=LIMITS.software, what=what, shape=LIMITS.software_shape
        )
        return cls.from_message(message, check_code=check_code)

    @classmethod
    def from_message(cls, m: cose.CoseMessage, *, check_code: bool = True) -> SignedSoftware:
        what = "provisioning software header"
        fields = {cose.CONTENT_TYPE, H_NAME, H_VERSION, H_SVN, H_CODE}
        if m.tag == cose.TAG_SIGN1:
            h = cbor.expect_map(m.protected, what, {cose.ALG, *fields})
            alg_ids = [cbor.expect(h[cose.ALG], int, f"{what}: alg")]
        else:
            h = cbor.expect_map(m.protected, what, fields)
            alg_ids = [
                _signature_alg(s, f"{what}: signature {n}") for n, s in enumerate(m.signatures)
            ]
        for alg_id in alg_ids:
            if alg_id not in SIGNATURE_BY_ID:
                raise FormatError(f"{what}: unsupported signature algorithm {cbor.show(alg_id)}")
        # the suite is checked by `verify`, so that a stripped, reordered or downgraded set of
        # signatures is refused as a bad signature, like any other signature a chip won't take
        suite = "+".join(SIGNATURE_BY_ID[i].name for i in alg_ids)
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
            alg=suite,
            code=m.body,
            message=m,
        )

    def verify(self, key: PublicKey | Sequence[PublicKey], *, suite: str | None = None) -> None:
        """Raise `VerificationError` unless signed by the private half of ``key`` (one key per
        algorithm of the suite, in its order) and, when ``suite`` is given, with exactly that
        suite: a verifier that names its suite refuses a swapped, stripped or downgraded one."""
        keys: list[PublicKey] = list(key) if isinstance(key, Sequence) else [key]
        if suite is not None and suite != self.alg:
            raise VerificationError(
                f"signed with {self.alg}, the verifier requires {suite}", code="bad-signature"
            )
        # a single algorithm is a COSE_Sign1, a hybrid a COSE_Sign: one form per suite
        if self.alg not in SUITES or (self.message.tag == cose.TAG_SIGN) != (
            len(self.algorithms) > 1
        ):
            raise VerificationError(
                f"{self.alg} in a {self.message.kind} is not a signature suite",
                code="bad-signature",
            )
        if len(keys) != len(self.algorithms):
            raise VerificationError(
                f"{self.alg} needs {len(self.algorithms)} keys, {len(keys)} given",
                code="wrong-key-type",
            )
        m = self.message
        if m.tag == cose.TAG_SIGN1:
            SIGNATURE_ALGORITHMS[self.alg].verify(keys[0], m.auth, self._to_be_signed)
            return
        for name, k, signature in zip(self.algorithms, keys, m.signatures, strict=True):
            SIGNATURE_ALGORITHMS[name].verify(k, signature.signature, m.to_be_signed_by(signature))

    def to_bytes(self) -> bytes:
        return self.message.to_bytes()


def _signature_alg(signature: cose.CoseSignature, what: str) -> int:
    h = cbor.expect_map(signature.protected, what, {cose.ALG})
    if signature.unprotected:
        raise FormatError(f"{what}: unexpected unprotected header")
    alg_id: int = cbor.expect(h[cose.ALG], int, f"{what}: alg")
    return alg_id
