"""The ICM's private keys behind one interface, whether they live in files or in a PKCS#11 token.

`load_private_key` turns a key reference (roles/icm/keyref.py) into a private-key object that the
roles use as they use a file's key: a token's EC key is a `TokenEcKey`, a subclass of
pyca/cryptography's ``EllipticCurvePrivateKey`` whose ``sign`` hashes the message here and sends
the token only the digest (CKM_ECDSA), then returns the DER signature cryptography expects. So
COSE signing (crypto/keys.py) and X.509 signing (``CertificateBuilder.sign``) run unchanged, and
no image or certificate body ever reaches the token.

Invariants: keys made in a token are CKA_SENSITIVE and not CKA_EXTRACTABLE, and only their
public parts ever come out; a `TokenEcKey` has no private value to export (its exporting methods
raise); a PIN is read once per token and session and never stored, logged or shown in an error.
One session per (module, token) per process is kept open and reused: opening and logging in
costs more than a signature.
"""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from trustprov.crypto.keys import PrivateKey
from trustprov.errors import InputError
from trustprov.roles.files import read_bytes
from trustprov.roles.icm.keyref import Pkcs11Uri, is_pkcs11, parse_pkcs11_uri, read_pin

#: the curves a token key may have, by key type
TOKEN_CURVES: dict[str, tuple[str, ec.EllipticCurve]] = {
    "ec-p256": ("secp256r1", ec.SECP256R1()),
    "ec-p384": ("secp384r1", ec.SECP384R1()),
}
_lock = threading.Lock()
_libs: dict[str, Any] = {}
_sessions: dict[tuple[str, str], Any] = {}


def _fail(uri: Pkcs11Uri, what: str, e: BaseException) -> NoReturn:
    # the exception class names the PKCS#11 return value (PinIncorrect, NoSuchToken, ...)
    # said in words: "pin incorrect", never the class name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", type(e).__name__).lower()
    raise InputError(f"PKCS#11 token {uri.token!r}: {what} ({words})") from e


def session(uri: Pkcs11Uri) -> Any:
    """The logged-in read-write session of the token ``uri`` names, opened on first use."""
    key = (uri.module_path, uri.token)
    with _lock:
        if key in _sessions:
            return _sessions[key]
        try:
            lib = _libs.get(uri.module_path) or pkcs11.lib(uri.module_path)
        except (RuntimeError, OSError, pkcs11.PKCS11Error) as e:
            _fail(uri, f"cannot load the module {uri.module_path}", e)
        _libs[uri.module_path] = lib
        try:
            token = lib.get_token(token_label=uri.token)
        except pkcs11.PKCS11Error as e:
            _fail(uri, "not found", e)
        try:
            s = token.open(user_pin=read_pin(uri), rw=True)
        except pkcs11.PKCS11Error as e:
            _fail(uri, "cannot log in", e)
        _sessions[key] = s
        return s


def close_sessions() -> None:
    """Log out of and close every open token session (tests; the end of a process does too)."""
    with _lock:
        for s in _sessions.values():
            # a session the module already closed has nothing left to free
            with contextlib.suppress(pkcs11.PKCS11Error):
                s.close()
        _sessions.clear()


class TokenEcKey(ec.EllipticCurvePrivateKey):
    """An EC private key inside a token: signs digests there; its private value never leaves."""

    def __init__(self, uri: Pkcs11Uri, private: Any, public: ec.EllipticCurvePublicKey) -> None:
        self.uri = uri
        self._private = private
        self._public = public

    def __repr__(self) -> str:
        return f"TokenEcKey({self.uri.token!r}, {self.uri.object!r})"

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("a token EC key signs ECDSA only")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, utils.Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(algorithm)
            h.update(data)
            digest = h.finalize()
        try:
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        except pkcs11.PKCS11Error as e:
            _fail(self.uri, "signing failed", e)
        size = len(raw) // 2  # CKM_ECDSA gives r || s, each of the curve's size
        return utils.encode_dss_signature(
            int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
        )

    def exchange(
        self,
        algorithm: ec.ECDH,  # noqa: ARG002 - the signature of cryptography's abstract method
        peer_public_key: ec.EllipticCurvePublicKey,  # noqa: ARG002 - likewise
    ) -> bytes:
        raise TypeError("a token signing key does no key exchange")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise TypeError("a token key's private value never leaves the token")

    def private_bytes(
        self,
        encoding: serialization.Encoding,  # noqa: ARG002 - cryptography's abstract signature
        format: serialization.PrivateFormat,  # noqa: ARG002 - likewise
        encryption_algorithm: serialization.KeySerializationEncryption,  # noqa: ARG002 - likewise
    ) -> bytes:
        raise TypeError("a token key's private value never leaves the token")

    def __copy__(self) -> TokenEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenEcKey:
        return self


def _public_of(uri: Pkcs11Uri, public: Any) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(encode_ec_public_key(public))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"PKCS#11 object {uri.object!r}: not an EC key")
    return key


def token_key(uri: Pkcs11Uri) -> TokenEcKey:
    """The EC key pair labelled ``uri.object`` in its token."""
    if uri.object is None:
        raise InputError(f"PKCS#11 URI of token {uri.token!r} names no object (object=...)")
    s = session(uri)
    try:
        private = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=uri.object)
        public = s.get_key(object_class=ObjectClass.PUBLIC_KEY, label=uri.object)
    except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as e:
        _fail(uri, f"no single key pair labelled {uri.object!r}", e)
    except pkcs11.PKCS11Error as e:
        _fail(uri, f"cannot find {uri.object!r}", e)
    if private.key_type != KeyType.EC:
        raise InputError(f"PKCS#11 object {uri.object!r}: not an EC key")
    return TokenEcKey(uri, private, _public_of(uri, public))


def generate_token_key(uri: Pkcs11Uri, key_type: str) -> TokenEcKey:
    """Make an EC key pair labelled ``uri.object`` inside the token: sensitive, not extractable.

    Refuses to make a second pair under a label that is taken, so a key is never shadowed."""
    if key_type not in TOKEN_CURVES:
        raise InputError(f"a {key_type} key cannot be made in a PKCS#11 token here (EC only)")
    if uri.object is None:
        raise InputError("PKCS#11: a key to make needs a label (object=...)")
    s = session(uri)
    if list(s.get_objects({Attribute.LABEL: uri.object})):
        raise InputError(f"PKCS#11 token {uri.token!r} already holds {uri.object!r}")
    curve_name, _ = TOKEN_CURVES[key_type]
    try:
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve_name)}, local=True
        )
        public, private = params.generate_keypair(
            store=True,
            label=uri.object,
            public_template={Attribute.VERIFY: True},
            private_template={
                Attribute.SIGN: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            },
        )
    except pkcs11.PKCS11Error as e:
        _fail(uri, f"cannot make {uri.object!r}", e)
    return TokenEcKey(uri, private, _public_of(uri, public))


def _secret_key(uri: Pkcs11Uri) -> Any:
    if uri.object is None:
        raise InputError(f"PKCS#11 URI of token {uri.token!r} names no object (object=...)")
    try:
        return session(uri).get_key(object_class=ObjectClass.SECRET_KEY, label=uri.object)
    except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as e:
        _fail(uri, f"no single secret key labelled {uri.object!r}", e)
    except pkcs11.PKCS11Error as e:
        _fail(uri, f"cannot find {uri.object!r}", e)


def generate_token_aes_key(uri: Pkcs11Uri) -> None:
    """Make an AES-256 key labelled ``uri.object`` in the token: sensitive, not extractable,
    for encrypting and decrypting only."""
    if uri.object is None:
        raise InputError("PKCS#11: a key to make needs a label (object=...)")
    s = session(uri)
    if list(s.get_objects({Attribute.LABEL: uri.object})):
        raise InputError(f"PKCS#11 token {uri.token!r} already holds {uri.object!r}")
    try:
        s.generate_key(
            KeyType.AES,
            256,
            label=uri.object,
            store=True,
            template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
            },
        )
    except pkcs11.PKCS11Error as e:
        _fail(uri, f"cannot make {uri.object!r}", e)


def token_gcm_encrypt(uri: Pkcs11Uri, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM (CKM_AES_GCM, 128-bit tag) inside the token, under its key ``uri.object``."""
    try:
        out: bytes = _secret_key(uri).encrypt(
            plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
        )
    except pkcs11.PKCS11Error as e:
        _fail(uri, "encryption failed", e)
    return out


def token_gcm_decrypt(uri: Pkcs11Uri, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """The inverse of `token_gcm_encrypt`; a wrong tag is an `InputError` (a damaged file)."""
    try:
        out: bytes = _secret_key(uri).decrypt(
            ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
        )
    except pkcs11.PKCS11Error as e:
        _fail(uri, "the wrapped family secrets do not open (damaged or another key)", e)
    return out


def destroy_labelled(uri: Pkcs11Uri, prefix: str) -> int:
    """Destroy every object of the token whose label starts with ``prefix`` (what a failed
    `icm init` made there, so that no key of a family that was never made stays behind).
    Without an open session nothing can have been made, and no PIN is asked for again."""
    with _lock:
        s = _sessions.get((uri.module_path, uri.token))
    if s is None:
        return 0
    doomed = [o for o in s.get_objects() if str(o[Attribute.LABEL]).startswith(prefix)]
    for o in doomed:
        try:
            o.destroy()
        except pkcs11.PKCS11Error as e:
            _fail(uri, "cannot remove a key of the failed init", e)
    return len(doomed)


def load_private_key(reference: str, base: Path) -> PrivateKey:
    """The private key a reference names: a PEM file (relative to ``base``) or a token key."""
    if is_pkcs11(reference):
        return token_key(parse_pkcs11_uri(reference))
    path = Path(reference)
    path = path if path.is_absolute() else base / path
    data = read_bytes(path, limit=16 * 1024, what="private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise InputError(f"{path}: not an unencrypted PEM private key") from e
    if not isinstance(key, PrivateKey):
        raise InputError(f"{path}: unsupported key type")
    return key
