"""Deflated firmware on the C chip (protocol.md 6.2, 6.5, 6.6) over a pty, both ends of FIG. 2/3.

The chip seals chunks the host deflated (it checks only their length bound) and inflates them on
install: a deflated firmware installs byte-identical to the plain one, and a sealed stream that
is a bomb, truncated, without its final block, followed by a byte or using a distance beyond
2^W is `bad-chunk` with nothing installed, the chip still able to take a good bundle after.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cbor2
import pytest

from trustprov.conformance.cases import CASES
from trustprov.conformance.suite import Context, run_cases
from trustprov.errors import ChipRefused
from trustprov.formats.bundle import Bundle
from trustprov.link.client import BundleParams, ChipClient, PreparedBundle

from .chipc import PROGRAM, SOFTWARE, ChipProcess, build

UID = "5eed0c0de0000000000000000000c0c1"
CHUNK = 2048  # > 2^9: the chip checks W = 9 distances in a first pass
FIRMWARE = b"".join(b"firmware block %05d " % (i % 97) + bytes([i % 251]) * 9 for i in range(200))


def deflate(data: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -wbits)
    return c.compress(data) + c.flush()


@contextmanager
def booted_chip(tmp_path: Path) -> Iterator[tuple[Context, ChipClient]]:
    build()
    chip = ChipProcess(
        PROGRAM, ["--nvm", str(tmp_path / "chip.nvm"), "--uid", UID, "--listen", "pty"]
    )
    try:
        ctx = Context(chip.port, code=SOFTWARE.read_bytes())
        assert run_cases(ctx, [c for c in CASES if c.name == "manufacture.burn"])[0].passed
        with ctx.client() as client:
            ctx.boot(client)
            yield ctx, client
    finally:
        chip.stop()


def params(ctx: Context) -> BundleParams:
    p = ctx.params()
    return BundleParams(p.epoch, p.min_security_version, p.aead_id, CHUNK)


def seal(ctx: Context, client: ChipClient, data: bytes, streams: list[bytes]) -> PreparedBundle:
    """A bundle of one firmware of ``data``'s length, deflated with W = 9, whose chunks are the
    ``streams`` given (the sealing chip does not inflate them)."""
    sealed = client.keygen(bytes(range(16)), params(ctx))
    client.seal_asset("fw", "firmware", len(data), {"region": "app", "deflate": 9})
    chunks = [b""] * len(streams)
    for i in reversed(range(len(streams))):
        chunks[i] = client.seal_chunk(i, streams[i])
    manifest = client.seal_finish()
    bundle = Bundle.from_bytes(cbor2.dumps(["trustprov-bundle", 1, manifest, [chunks]]))
    return PreparedBundle.prepare(bundle, sealed["enc-oem-share"])


def test_a_deflated_firmware_installs_byte_identical_on_a_c_chip(tmp_path: Path) -> None:
    pieces = [FIRMWARE[i : i + CHUNK] for i in range(0, len(FIRMWARE), CHUNK)]
    assert len(pieces) == 3
    streams = [deflate(p, 9) for p in pieces]
    assert sum(map(len, streams)) < len(FIRMWARE) // 2
    with booted_chip(tmp_path) as (ctx, client):
        prepared = seal(ctx, client, FIRMWARE, streams)
        done = client.provision(prepared)
        status = client.status(digests=True)
    region = status["installed"]["regions"]["app"]
    assert region["length"] == len(FIRMWARE)
    assert region["sha256"] == hashlib.sha256(FIRMWARE).digest()
    assert status["installed-digest"] == prepared.installed_digest(done["domain-id"])


def bad_streams() -> dict[str, bytes]:
    data = FIRMWARE[:2000]
    far = b"".join(hashlib.sha256(b"far%d" % i).digest() for i in range(32))[:1000]
    no_final = zlib.compressobj(9, zlib.DEFLATED, -9)
    return {
        "bomb": deflate(b"\x00" * 65536, 9),
        "short": deflate(data[:1999], 9),
        "truncated": deflate(data, 9)[:-2],
        "no-final-block": no_final.compress(data) + no_final.flush(zlib.Z_SYNC_FLUSH),
        "trailing-byte": deflate(data, 9) + b"\x00",
        # 2,000 bytes made with a window of 2^15: a distance of 1,000 > 2^9
        "too-far": deflate(far + far, 15),
    }


def test_a_bad_deflated_chunk_is_bad_chunk_and_nothing_is_installed(tmp_path: Path) -> None:
    data = FIRMWARE[:2000]
    refused: dict[str, str] = {}
    with booted_chip(tmp_path) as (ctx, client):
        for name, stream in bad_streams().items():
            prepared = seal(ctx, client, data, [stream])  # each for a firmware of 2,000 bytes
            with pytest.raises(ChipRefused) as e:
                client.provision(prepared)
            refused[name] = e.value.code
            assert client.status()["lifecycle"] != "PROVISIONED", name
        # the session ended clean: a good bundle installs after them
        client.provision(seal(ctx, client, data, [deflate(data, 9)]))
        status = client.status(digests=True)
    assert refused == dict.fromkeys(bad_streams(), "bad-chunk")
    assert status["installed"]["regions"]["app"]["sha256"] == hashlib.sha256(data).digest()


def test_the_sealing_c_chip_checks_deflate_and_the_stream_length_bound(tmp_path: Path) -> None:
    """seal.asset: "deflate" on firmware and config only, 9..15, chunks of at most 65,520;
    seal.chunk of a deflated asset: 1 .. len + 16 bytes (6.5). Each refusal ends the session
    (8.3): a new one each."""
    with booted_chip(tmp_path) as (ctx, client):
        for kind, extra in [
            ("firmware", {"region": "a", "deflate": 8}),
            ("config", {"region": "b", "deflate": 16}),
            ("certificate", {"region": "c", "deflate": 15}),
            ("key", {"key-type": "aes-256", "slot": 1, "deflate": 15}),
        ]:
            client.keygen(bytes(range(16)), params(ctx))
            length = 32 if kind == "key" else 100
            with pytest.raises(ChipRefused) as e:
                client.seal_asset("x", kind, length, extra)
            assert e.value.code == "bad-request", (kind, extra)
        for size in (0, 117):  # outside 1 .. 100 + 16
            client.keygen(bytes(range(16)), params(ctx))
            client.seal_asset("fw", "firmware", 100, {"region": "app", "deflate": 15})
            with pytest.raises(ChipRefused) as e:
                client.seal_chunk(0, b"\x01" * size)
            assert e.value.code == "bad-request", size
        # beside chunks of more than 65,520 bytes (a sealed deflated chunk must fit 65,552)
        p = params(ctx)
        client.keygen(
            bytes(range(16)), BundleParams(p.epoch, p.min_security_version, p.aead_id, 65521)
        )
        with pytest.raises(ChipRefused) as e:
            client.seal_asset("fw", "firmware", 100, {"region": "app", "deflate": 15})
        assert e.value.code == "bad-request"
        client.keygen(bytes(range(16)), params(ctx))
        client.seal_asset("fw", "firmware", 100, {"region": "app", "deflate": 15})
        assert len(client.seal_chunk(0, b"\x01" * 116)) == 116 + 16
        client.seal_asset("cfg", "config", 100, {"region": "cfg", "deflate": 9})
        assert len(client.seal_chunk(0, b"\x01")) == 1 + 16
