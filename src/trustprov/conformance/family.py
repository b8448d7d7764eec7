"""The published test family (docs/protocol.md, "Conformance"): fixed, public secrets and keys.

Everything here is public on purpose, so a silicon port is burned with exactly the same family
and the suite knows every secret a chip of it holds: it signs its own software images, seals its
own ENC values, and scans every answer for these secrets and the keys derived from them.

Invariant: the values come from ``test-family.json``, written by
``tests/conformance/generate_family.py`` from fixed seeds and the known-answer vectors; this module
derives, never invents.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.x509.oid import NameOID

from trustprov.crypto.aead import cmac_tag
from trustprov.crypto.keys import (
    MATERIAL_LEN,
    SUITES,
    PrivateKey,
    PublicKey,
    private_key_bytes,
    private_key_from_material,
    public_key_der,
)
from trustprov.crypto.schedule import (
    OemKeys,
    asset_material,
    derive_keys,
    f_oem_share,
    g_master_key,
    h_seed,
)
from trustprov.formats import cose
from trustprov.formats.bundle import Bundle, SignedManifest, chunk_aad, chunk_nonce
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.sealed import SealedKind, SealedValue
from trustprov.formats.software import SignedSoftware

#: the certificate's expiry of section 7 (no well-defined expiry)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _suite_keys(material: dict[str, str], ed25519_key: str) -> dict[str, PrivateKey]:
    """Each algorithm's key from its published material (test-family.json)."""
    keys: dict[str, PrivateKey] = {
        "EdDSA": ed25519.Ed25519PrivateKey.from_private_bytes(_h(ed25519_key)),
        "ES256": private_key_from_material("ec-p256", _h(material["ES256"])),
        "ES384": private_key_from_material("ec-p384", _h(material["ES384"])),
        "ML-DSA-65": mldsa.MLDSA65PrivateKey.from_seed_bytes(_h(material["ML-DSA-65"])),
        "ML-DSA-87": mldsa.MLDSA87PrivateKey.from_seed_bytes(_h(material["ML-DSA-87"])),
    }
    return keys


@dataclass(frozen=True)
class VectorBundle:
    bundle: Bundle = field(repr=False)
    encoded: bytes = field(repr=False)
    domain_id: bytes
    epoch: int
    min_svn: int
    installed_digest: bytes


@dataclass(frozen=True)
class TestFamily:
    family_id: bytes
    hw_share: bytes = field(repr=False)
    rom_share: bytes = field(repr=False)
    k_oem_share: bytes = field(repr=False)
    k_oem_master_share: bytes = field(repr=False)
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)
    wrong_key: ed25519.Ed25519PrivateKey = field(repr=False)
    device_ca: ec.EllipticCurvePrivateKey = field(repr=False)
    oem_rnd_input: bytes = field(repr=False)
    rnd_share: bytes = field(repr=False)
    oem_share: bytes = field(repr=False)
    other_oem_rnd_input: bytes = field(repr=False)  # a second OEM, for secrets.fixed-messages
    other_rnd_share: bytes = field(repr=False)
    vector: VectorBundle = field(repr=False)
    #: every signature algorithm's key (EdDSA's is ``signing_key``), and a wrong one of each
    suite_keys: dict[str, PrivateKey] = field(default_factory=dict, repr=False)
    wrong_suite_keys: dict[str, PrivateKey] = field(default_factory=dict, repr=False)
    suite: str = "EdDSA"  # the suite the chip is burned for (section 5.1)

    __test__ = False  # not a pytest class

    @classmethod
    def load(cls) -> TestFamily:
        text = resources.files("trustprov.conformance").joinpath("test-family.json").read_text()
        d = json.loads(text)
        b = d["bundle"]
        encoded = _h(b["bundle"])
        ca = private_key_from_material("ec-p256", _h(d["device_ca_material"]))
        assert isinstance(ca, ec.EllipticCurvePrivateKey)  # noqa: S101 - ec-p256 gives an EC key
        return cls(
            family_id=_h(d["family_id"]),
            hw_share=_h(d["hw_share"]),
            rom_share=_h(d["rom_share"]),
            k_oem_share=_h(d["k_oem_share"]),
            k_oem_master_share=_h(d["k_oem_master_share"]),
            signing_key=ed25519.Ed25519PrivateKey.from_private_bytes(_h(d["signing_key_ed25519"])),
            wrong_key=ed25519.Ed25519PrivateKey.from_private_bytes(_h(d["wrong_key_ed25519"])),
            device_ca=ca,
            oem_rnd_input=_h(d["oem_rnd_input"]),
            rnd_share=_h(d["rnd_share"]),
            oem_share=_h(d["oem_share"]),
            other_oem_rnd_input=_h(d["other_oem_rnd_input"]),
            other_rnd_share=_h(d["other_rnd_share"]),
            suite_keys=_suite_keys(d["suite_keys"], d["signing_key_ed25519"]),
            wrong_suite_keys=_suite_keys(d["wrong_suite_keys"], d["wrong_key_ed25519"]),
            vector=VectorBundle(
                bundle=Bundle.from_bytes(encoded),
                encoded=encoded,
                domain_id=_h(b["domain_id"]),
                epoch=int(b["epoch"]),
                min_svn=int(b["min_svn"]),
                installed_digest=_h(b["installed_digest"]),
            ),
        )

    def for_suite(self, suite: str) -> TestFamily:
        """The same family burned for another signature suite of section 5.1."""
        if suite not in SUITES:
            raise ValueError(f"no signature suite {suite!r}")
        return dataclasses.replace(self, suite=suite)

    def keys_of(self, suite: str, *, wrong: bool = False) -> list[PrivateKey]:
        """The test family's signing keys of ``suite``, one per algorithm, in its order."""
        keys = self.wrong_suite_keys if wrong else self.suite_keys
        return [keys[alg] for alg in SUITES[suite]]

    # -- what is burned ------------------------------------------------------------------------
    def immutable(self) -> ImmutableMemory:
        return ImmutableMemory(
            family_id=self.family_id,
            hw_share=self.hw_share,
            rom_share=self.rom_share,
            k_oem_share=self.k_oem_share,
            k_oem_master_share=self.k_oem_master_share,
            software_keys=tuple(public_key_der(k) for k in self.keys_of(self.suite)),
            software_suite=self.suite,
        )

    def certificate(self, uid: bytes, chip_key: PublicKey) -> bytes:
        """The chip certificate of section 7, issued by the test family's device CA."""
        fam = self.family_id.hex()
        ca_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov ICM"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"trustprov device CA {fam}"),
            ]
        )
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustprov chip"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, uid.hex()),
                x509.NameAttribute(NameOID.COMMON_NAME, uid.hex()),
            ]
        )
        ca_public = self.device_ca.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(chip_key)
            .serial_number(int.from_bytes(uid) or 1)
            .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
            )
            .sign(self.device_ca, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.DER)

    # -- what the suite makes --------------------------------------------------------------------
    def sign(
        self, code: bytes, svn: int, *, wrong_key: bool = False, suite: str | None = None
    ) -> bytes:
        """An image of ``code`` at ``svn`` in the family's suite (or ``suite``), signed with its
        published keys (or the wrong ones). EdDSA images are reproducible byte for byte."""
        suite = suite or self.suite
        return SignedSoftware.sign(
            self.keys_of(suite, wrong=wrong_key),
            alg=suite,
            name="conformance",
            version=str(svn),
            security_version=svn,
            code=code,
        ).to_bytes()

    def seal(
        self,
        kind: SealedKind,
        plaintext: bytes,
        *,
        family_id: bytes | None = None,
        under: SealedKind | None = None,
    ) -> bytes:
        """A sealed value of ``kind``, under the key of its kind (or of kind ``under``: a value
        of one kind sealed with another kind's key, for the kind checks of section 4)."""
        key = self.k_oem_share if (under or kind) == "oem-share" else self.k_oem_master_share
        return SealedValue.seal(
            key, kind, family_id or self.family_id, os.urandom(12), plaintext
        ).to_bytes()

    def open(self, data: bytes, kind: SealedKind) -> bytes:
        key = self.k_oem_share if kind == "oem-share" else self.k_oem_master_share
        value = SealedValue.from_bytes(data, kind)
        if value.family_id != self.family_id:
            raise ValueError(f"sealed {kind} names family {value.family_id.hex()}")
        return value.open(key)

    def manifest_mac0(self, payload: bytes, oem_share: bytes | None = None) -> bytes:
        """A manifest COSE_Mac0 over ``payload`` under the vector OEM's K_AUTH (or that of
        ``oem_share``'s domain): genuine, so a chip refuses it only for what the payload says
        (a test's own manifest)."""
        header = SignedManifest.protected_header(self.family_id)
        protected = cose.encode_protected(header)
        auth = self.oem_keys(oem_share or self.oem_share).auth
        tag = cmac_tag(auth, cose.mac_structure(protected, payload))
        return cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, payload, tag).to_bytes()

    @property
    def other_oem_share(self) -> bytes:
        """The second published OEM's OEM_SHARE: another DOMAIN_ID of the same family."""
        return f_oem_share(self.other_oem_rnd_input, self.other_rnd_share)

    def oem_keys(self, oem_share: bytes) -> OemKeys:
        return derive_keys(g_master_key(oem_share, self.hw_share, self.rom_share), self.family_id)

    @cached_property
    def secrets(self) -> dict[str, bytes]:
        """Every secret a chip of this family holds while it runs the vector OEM's flow."""
        k_mk = g_master_key(self.oem_share, self.hw_share, self.rom_share)
        keys = self.oem_keys(self.oem_share)
        out = {
            "HW_SHARE": self.hw_share,
            "ROM_SHARE": self.rom_share,
            "HW_SHARE xor ROM_SHARE": bytes(
                a ^ b for a, b in zip(self.hw_share, self.rom_share, strict=True)
            ),
            "K_OEM_SHARE": self.k_oem_share,
            "K_OEM_MASTER_SHARE": self.k_oem_master_share,
            "RND_SHARE": self.rnd_share,
            "OEM_SHARE": self.oem_share,
            "K_MK": k_mk,
            "K_ENCK": keys.enck,
            "K_ENCD": keys.encd,
            "K_AUTH": keys.auth,
            "seed": h_seed(self.oem_rnd_input, self.rnd_share),
        }
        seed = out["seed"]
        signer = private_key_from_material(
            "ec-p256", asset_material(seed, "ec-p256", "signer", MATERIAL_LEN["ec-p256"])
        )
        out["generated key 'signer'"] = private_key_bytes(signer)
        out.update(self._vector_plaintexts(keys))
        assert f_oem_share(self.oem_rnd_input, self.rnd_share) == self.oem_share  # noqa: S101 - the file is generated from vectors
        return out

    def _vector_plaintexts(self, keys: OemKeys) -> dict[str, bytes]:
        """Each asset of the vector bundle, decrypted: no chip may ever answer one."""
        bundle = self.vector.bundle
        m = bundle.manifest
        out = {}
        for a, (entry, chunks) in enumerate(zip(m.assets, bundle.chunks, strict=True)):
            key = keys.enck if entry.is_key else keys.encd
            out[f"asset {entry.name!r}"] = b"".join(
                m.aead.open(
                    key,
                    chunk_nonce(entry.nonce, i, i == len(chunks) - 1),
                    chunk,
                    chunk_aad(m.bundle_id, a),
                )
                for i, chunk in enumerate(chunks)
            )
        return out
