"""Manifest v1 (the hash chain over every ciphertext byte) is refused, by the host tools and by a
chip, with code ``bundle-version`` and one line that says to reseal (docs/protocol.md 6.1, 6.3).

The v1 bundle here is a genuine one of the old construction: the world's sealed chunks, each
asset's digest the head of SHA-256(sealed_i || h_{i+1}), its manifest MACed under the world's
K_AUTH (which only a test can reach), so nothing but its version and its chain tells it apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from click.testing import CliRunner
from helpers import Bench, assert_untouched, world_job

from trustprov.cli.main import cli
from trustprov.crypto.aead import cmac_tag
from trustprov.crypto.digest import CHAIN_END, sha256
from trustprov.crypto.schedule import derive_keys, g_master_key
from trustprov.errors import ChipRefused
from trustprov.formats import cbor, cose
from trustprov.formats.bundle import BUNDLE_MAGIC, Bundle, SignedManifest
from trustprov.formats.sealed import SealedValue
from trustprov.link import messages


def _v1_head(chunks: tuple[bytes, ...]) -> bytes:
    link = CHAIN_END
    for c in reversed(chunks):
        link = sha256(c, link)
    return link


def _old_bundle(world: Any, version: int) -> tuple[bytes, bytes]:
    """(the manifest COSE_Mac0, the bundle file) of a genuine bundle of ``version``."""
    imm = world.icm.immutable
    oem_share = SealedValue.from_bytes(world.share.read_bytes()).open(imm.k_oem_share)
    keys = derive_keys(g_master_key(oem_share, imm.hw_share, imm.rom_share), imm.family_id)
    good = Bundle.from_bytes(world.bundle.read_bytes())
    payload = cbor2.loads(good.signed.message.body)
    payload["v"] = version
    for asset, chunks in zip(payload["assets"], good.chunks, strict=True):
        asset["digest"] = _v1_head(chunks)
    body = cbor.encode(payload)
    header = SignedManifest.protected_header(imm.family_id)
    protected = cose.encode_protected(header)
    tag = cmac_tag(keys.auth, cose.mac_structure(protected, body))
    mac0 = cose.CoseMessage(cose.TAG_MAC0, protected, header, {}, body, tag).to_bytes()
    return mac0, cbor.encode([BUNDLE_MAGIC, 1, mac0, [list(c) for c in good.chunks]])


@pytest.fixture
def bench(cm_farm: Path) -> Iterator[Bench]:
    with Bench(cm_farm) as b:
        yield b


@pytest.mark.parametrize("version", [1, 3])
def test_a_chip_refuses_a_genuine_manifest_of_another_version(
    world: Any, bench: Bench, version: int
) -> None:
    mac0, _ = _old_bundle(world, version)
    uid = bench.uids()[0]
    client = bench.client(uid)
    client.boot(world.software.read_bytes())
    begin = {"enc-oem-share": world.share.read_bytes(), "manifest": mac0}
    with pytest.raises(ChipRefused) as e:
        client.send(messages.encode_request("cm.begin", begin))
    assert e.value.code == "bundle-version"
    assert f"manifest v{version}" in e.value.message
    assert_untouched(bench.read(uid))
    # the same chip installs the bundle of this version
    assert bench.provision(uid, world_job(world)).result == "provisioned"


def _invoke(*argv: str | Path) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in argv], prog_name="trustprov")


def _one_line_reseal(result: Any, code: int = 1) -> None:
    # exit 1 as for any artifact that fails its checks (cli/options.py); inspect's is 2, its
    # input being what the user names
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "manifest v1" in lines[0]
    assert "reseal" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_cm_tool_refuses_a_v1_bundle_in_one_line(
    world: Any, cm_farm: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old-bundle.cbor"
    old.write_bytes(_old_bundle(world, 1)[1])
    result = _invoke(
        "cm", "provision", "--farm", cm_farm, "--lot", world.cm_lot,
        "--software", world.software, "--share", world.share, "--bundle", old,
        "--records", f"sqlite:///{tmp_path / 'records.sqlite'}",
    )  # fmt: skip
    _one_line_reseal(result)
    with Bench(cm_farm) as b:
        for uid in b.uids():
            assert_untouched(b.read(uid))


def test_the_oem_and_inspect_tools_refuse_a_v1_bundle_in_one_line(
    world: Any, tmp_path: Path
) -> None:
    old = tmp_path / "old-bundle.cbor"
    old.write_bytes(_old_bundle(world, 1)[1])
    receipts = tmp_path / "receipts.jsonl"
    receipts.write_text("")
    ca = world.root / "icm" / "device-ca.pem"
    _one_line_reseal(
        _invoke("oem", "reconcile", "--ca", ca, "--bundle", old, "--receipts", receipts)
    )
    _one_line_reseal(_invoke("inspect", old), code=2)
