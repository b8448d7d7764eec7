"""The host's typed view of one chip, over any `Link`. Everything here is public data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trustprov.crypto.aead import TAG_LEN
from trustprov.errors import FormatError, TransportError
from trustprov.formats import cbor
from trustprov.formats.authz import AuthorizedSet
from trustprov.formats.bundle import Authorization, Bundle, Manifest
from trustprov.formats.installed import expected_installed_digest
from trustprov.link import messages, seal_wire
from trustprov.link.chunk_requests import PREENCODE_MAX, ChunkRequests, ChunkSource, Requests
from trustprov.link.transport import Link


@dataclass(frozen=True)
class BundleParams:
    epoch: int
    min_security_version: int
    aead_id: int
    chunk_size: int
    authorized: Authorization | None = None

    def to_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "epoch": self.epoch,
            "min-svn": self.min_security_version,
            "aead": self.aead_id,
            "chunk-size": self.chunk_size,
        }
        if self.authorized is not None:
            args["authorized"] = self.authorized.to_cbor()
        return args


@dataclass(frozen=True)
class PreparedBundle:
    """The requests that provision a chip, encoded once and sent to every chip of a lot.

    A bundle for authorized chips only takes, per chip, its inclusion proof in cm.begin:
    `begin_for` splices the proof's CBOR into the begin request encoded once (its "proof"
    argument sorts first in the canonical map), so the per-chip cost is the proof alone."""

    bundle_id: bytes
    begin: bytes
    chunks: Sequence[bytes]  # a tuple, or read from the bundle file per request (`prepare`)
    finish: bytes
    manifest: Manifest = field(repr=False)
    authorized: AuthorizedSet | None = field(default=None, repr=False)
    _begin_parts: tuple[bytes, bytes] = field(default=(b"", b""), repr=False)

    def begin_for(self, uid: bytes | None) -> bytes:
        """The cm.begin request for chip ``uid``: with its proof when the bundle names an
        authorized set that holds it; else without (such a chip refuses: ``unauthorized``)."""
        if self.authorized is None or uid is None or uid not in self.authorized:
            return self.begin
        head, tail = self._begin_parts
        return head + cbor.encode(self.authorized.proof(uid).to_cbor()) + tail

    def requests(self, uid: bytes | None) -> Sequence[bytes]:
        """FIG. 3's requests for chip ``uid``, in order."""
        if isinstance(self.chunks, tuple):
            return [self.begin_for(uid), *self.chunks, self.finish]
        return Requests(self.begin_for(uid), self.chunks, self.finish)

    def installed_digest(self, domain_id: bytes) -> bytes:
        """The installed digest of a chip of OEM domain ``domain_id`` holding this bundle."""
        return expected_installed_digest(self.manifest, domain_id)

    @classmethod
    def prepare(
        cls,
        bundle: Bundle | ChunkSource,
        enc_oem_share: bytes,
        authorized: AuthorizedSet | None = None,
    ) -> PreparedBundle:
        """Raises `FormatError` if ``authorized`` is not the set the bundle names. A bundle
        file above `PREENCODE_MAX` keeps its chunks in the file: each request is encoded from
        it as it is sent."""
        args = {"enc-oem-share": enc_oem_share, "manifest": bundle.signed.to_bytes()}
        begin = messages.encode_request("cm.begin", args)
        named = bundle.manifest.authorized
        parts = (b"", b"")
        if named is None:
            authorized = None  # any chip of the family: no proofs to send
        elif authorized is None or (authorized.root, len(authorized)) != (named.root, named.count):
            raise FormatError(
                "the bundle is for an authorized set of chips: it needs that set's AUTH file"
                if authorized is None
                else "the authorized set is not the one the bundle names (another root)"
            )
        else:
            # "proof" is the first key of the canonical args map, before the manifest's bytes:
            # its first occurrence with a placeholder value is the one to fill per chip
            key, marker = cbor.encode("proof"), cbor.encode(b"\xff" * 8)
            whole = messages.encode_request("cm.begin", {**args, "proof": b"\xff" * 8})
            at = whole.index(key + marker) + len(key)
            parts = (whole[:at], whole[at + len(marker) :])
        chunks: Sequence[bytes]
        if isinstance(bundle, Bundle):
            encoded = []
            for a, asset_chunks in enumerate(bundle.chunks):
                for i, (data, nxt) in enumerate(
                    zip(asset_chunks, bundle.chain_links(a), strict=True)
                ):
                    encoded.append(
                        messages.encode_request(
                            "cm.chunk", {"asset": a, "index": i, "data": data, "next": nxt}
                        )
                    )
            chunks = tuple(encoded)
        elif bundle.size <= PREENCODE_MAX:
            chunks = tuple(ChunkRequests(bundle))
        else:
            chunks = ChunkRequests(bundle)
        return cls(
            bundle.manifest.bundle_id,
            begin,
            chunks,
            messages.encode_request("cm.finish", {}),
            bundle.manifest,
            authorized,
            parts,
        )


class ChipClient:
    def __init__(self, link: Link) -> None:
        self._link = link

    def call(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.send(messages.encode_request(op, args or {}))

    def send(self, request: bytes) -> dict[str, Any]:
        return messages.decode_response(self._link.exchange(request))

    def _bytes(self, result: dict[str, Any], key: str) -> bytes:
        value = result.get(key)
        if not isinstance(value, bytes):
            raise TransportError(f"chip answered without {key!r}")
        return value

    # -- ROM ---------------------------------------------------------------------------------
    def status(self, *, digests: bool = False) -> dict[str, Any]:
        """Public state; with ``digests`` also each region's content SHA-256 and each asymmetric
        key slot's public key (SPKI DER)."""
        return self.call("rom.status", {"digests": True} if digests else {})

    def attest(self, challenge: bytes) -> bytes:
        """The chip's attestation token over ``challenge`` (docs/protocol.md 8.8), as it
        answered it: parsed and verified by whoever holds the chip's trusted certificate."""
        return self._bytes(self.call("rom.attest", {"challenge": challenge}), "token")

    def certificate(self) -> bytes | None:
        cert = self.call("rom.identity").get("certificate")
        return cert if isinstance(cert, bytes) else None

    def burn(self, image: bytes) -> None:
        self.call("rom.burn", {"image": image})

    def make_identity(self) -> bytes:
        return self._bytes(self.call("rom.make-identity"), "public-key")

    def store_certificate(self, der: bytes) -> None:
        self.call("rom.store-certificate", {"certificate": der})

    def boot(self, image: bytes) -> None:
        self.send(self.boot_request(image))

    @staticmethod
    def boot_request(image: bytes) -> bytes:
        """The "rom.boot" request for ``image``: encode once, send to every chip of a lot."""
        return messages.encode_request("rom.boot", {"image": image})

    # -- provisioning software ----------------------------------------------------------------
    def keygen(self, oem_rnd_input: bytes, params: BundleParams) -> dict[str, bytes]:
        r = self.call("oem.keygen", {"oem-rnd-input": oem_rnd_input, "bundle": params.to_args()})
        return {
            k: self._bytes(r, k) for k in ("enc-oem-rnd-input", "enc-rnd-share", "enc-oem-share")
        }

    def regen(self, enc_oem_rnd_input: bytes, enc_rnd_share: bytes, params: BundleParams) -> bytes:
        r = self.call(
            "oem.regen",
            {
                "enc-oem-rnd-input": enc_oem_rnd_input,
                "enc-rnd-share": enc_rnd_share,
                "bundle": params.to_args(),
            },
        )
        return self._bytes(r, "enc-oem-share")

    def seal_asset(self, name: str, kind: str, length: int, target: dict[str, Any]) -> None:
        self.call("seal.asset", {"name": name, "kind": kind, "length": length, **target})

    def seal_chunk(self, index: int, data: bytes) -> bytes:
        return bytes(self.seal_chunk_view(index, data, len(data) + TAG_LEN))

    def seal_chunk_view(self, index: int, data: bytes, sealed_len: int) -> memoryview:
        """`seal_chunk` without a copy of the answer: the sealed chunk as a view of it, which
        the bundle writer writes to the file as it is (`trustprov.link.seal_wire`)."""
        answer = self._link.exchange(seal_wire.chunk_request(index, data))
        return seal_wire.chunk_answer(answer, sealed_len)

    def seal_generate(self, name: str, key_type: str, slot: int) -> tuple[bytes, bytes | None]:
        r = self.call("seal.generate", {"name": name, "key-type": key_type, "slot": slot})
        public = r.get("public-key")
        return self._bytes(r, "chunk"), public if isinstance(public, bytes) else None

    def seal_finish(self) -> bytes:
        return self._bytes(self.call("seal.finish"), "manifest")

    def provision(self, prepared: PreparedBundle, uid: bytes | None = None) -> dict[str, Any]:
        """FIG. 3 on this chip (``uid``: its UID, for its inclusion proof): begin, every chunk
        in order, finish. Raises on any refusal."""
        answer: dict[str, Any] = {}
        for request in prepared.requests(uid):
            answer = self.send(request)
        return answer

    def holds(self, prepared: PreparedBundle) -> bool:
        """Whether this chip holds exactly ``prepared``'s bundle: its bundle id, and the
        installed digest it reports equal to the one computed here for its domain. A chip that
        holds anything more or less than the bundle (say, what an earlier one left) does not."""
        status = self.status()
        installed = status.get("installed")
        if not isinstance(installed, dict) or installed.get("bundle-id") != prepared.bundle_id:
            return False
        domain_id = installed.get("domain-id")
        if not isinstance(domain_id, bytes):
            return False
        return status.get("installed-digest") == prepared.installed_digest(domain_id)

    def lock(self) -> None:
        self.call("lock")
