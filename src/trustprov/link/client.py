"""The host's typed view of one chip, over any `Link`. Everything here is public data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustprov.errors import TransportError
from trustprov.formats.bundle import Bundle
from trustprov.link import messages
from trustprov.link.transport import Link


@dataclass(frozen=True)
class BundleParams:
    epoch: int
    min_security_version: int
    aead_id: int
    chunk_size: int

    def to_args(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "min-svn": self.min_security_version,
            "aead": self.aead_id,
            "chunk-size": self.chunk_size,
        }


@dataclass(frozen=True)
class PreparedBundle:
    """The requests that provision a chip, encoded once and sent to every chip of a lot."""

    bundle_id: bytes
    begin: bytes
    chunks: tuple[bytes, ...]
    finish: bytes

    @classmethod
    def prepare(cls, bundle: Bundle, enc_oem_share: bytes) -> PreparedBundle:
        begin = messages.encode_request(
            "cm.begin", {"enc-oem-share": enc_oem_share, "manifest": bundle.signed.to_bytes()}
        )
        chunks = []
        for a, asset_chunks in enumerate(bundle.chunks):
            for i, (data, nxt) in enumerate(zip(asset_chunks, bundle.chain_links(a), strict=True)):
                chunks.append(
                    messages.encode_request(
                        "cm.chunk", {"asset": a, "index": i, "data": data, "next": nxt}
                    )
                )
        return cls(
            bundle.manifest.bundle_id,
            begin,
            tuple(chunks),
            messages.encode_request("cm.finish", {}),
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
    def status(self) -> dict[str, Any]:
        return self.call("rom.status")

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
        return self._bytes(self.call("seal.chunk", {"index": index, "data": data}), "chunk")

    def seal_generate(self, name: str, key_type: str, slot: int) -> tuple[bytes, bytes | None]:
        r = self.call("seal.generate", {"name": name, "key-type": key_type, "slot": slot})
        public = r.get("public-key")
        return self._bytes(r, "chunk"), public if isinstance(public, bytes) else None

    def seal_finish(self) -> bytes:
        return self._bytes(self.call("seal.finish"), "manifest")

    def provision(self, prepared: PreparedBundle) -> dict[str, Any]:
        """FIG. 3 on this chip: begin, every chunk in order, finish. Raises on any refusal."""
        self.send(prepared.begin)
        for request in prepared.chunks:
            self.send(request)
        return self.send(prepared.finish)

    def lock(self) -> None:
        self.call("lock")
