"""The OEM: verify the signed software, run FIG. 2 (keygen) and FIG. 4 (regen) on its chip.

OEM_DIR written by keygen::

    enc-oem-rnd-input.cose   ENC(OEM_RND_INPUT)  keep: with ENC(RND_SHARE), regenerates everything
    enc-rnd-share.cose       ENC(RND_SHARE)      keep
    enc-oem-share.cose       ENC(OEM_SHARE)      send to the CM
    bundle.cbor              the sealed assets   send to the CM
    generated/NAME.pub.pem   public keys of the assets generated on the chip
    oem.json                 what was made: family, bundle id, epoch, assets (no secrets)
    issued-epochs.json       {"issued-epochs": [...]}: every epoch made from this state

regen writes the same but for the two files the OEM already keeps and the record, which it
keeps in the state (``--state``, keygen's directory): it refuses an asset list whose epoch is
not above every epoch issued from the state (a chip holding the latest bundle would refuse the
new one as stale, and an epoch issued twice would name two bundles), and records the new epoch
there in the same step that places its directory. A state without the record (made before it
existed) has issued the epoch of its oem.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustprov.crypto.aead import TAG_LEN
from trustprov.crypto.keys import load_public_key
from trustprov.errors import ArtifactError, FormatError, InputError
from trustprov.formats.bundle import Authorization, Bundle, Manifest, SignedManifest
from trustprov.formats.bundle.bundle_file import BundleWriter, chunk_lengths
from trustprov.formats.limits import LIMITS
from trustprov.formats.sealed import SealedValue
from trustprov.formats.software import SignedSoftware
from trustprov.link.client import BundleParams, ChipClient
from trustprov.roles.asset_compress import deflated_chunk
from trustprov.roles.assets import AssetList, AssetSpec, check_fits, planned_layout
from trustprov.roles.bundle_io import bundle_output
from trustprov.roles.desk_chip import desk_chip
from trustprov.roles.files import PRIVATE, new_directory, read_bytes, write_file

Random = Callable[[int], bytes]
OEM_RND_INPUT_LEN = 32


def load_software(path: Path) -> SignedSoftware:
    return SignedSoftware.from_bytes(read_bytes(path, limit=LIMITS.software, what="software"))


def verify_software(path: Path, public_key_path: Path | Sequence[Path]) -> SignedSoftware:
    """The OEM's check of the ICM's software (FIG. 1, step 18). Raises unless it verifies.

    A hybrid suite takes one public key per algorithm, in the suite's order, and needs every
    signature to verify."""
    software = load_software(path)
    paths = [public_key_path] if isinstance(public_key_path, Path) else list(public_key_path)
    keys = [load_public_key(read_bytes(p, limit=16 * 1024, what="public key")) for p in paths]
    software.verify(keys)
    return software


@dataclass(frozen=True)
class SealResult:
    """What keygen or regen made: the manifest the chip MACed, the public keys of the generated
    assets, and where the bundle file went (its chunks are on disk, never all in memory)."""

    signed: SignedManifest
    public_keys: dict[str, bytes]
    bundle_path: Path

    @property
    def manifest(self) -> Manifest:
        return self.signed.manifest

    @property
    def bundle(self) -> Bundle:
        """The whole bundle, read back from its file: for tools and tests of small bundles."""
        return Bundle.from_bytes(read_bytes(self.bundle_path, limit=LIMITS.bundle, what="bundle"))


def _params(
    assets: AssetList,
    software: SignedSoftware,
    auth: Path | None = None,
    family: bytes | None = None,
) -> tuple[BundleParams, bytes | None]:
    """The bundle's parameters; with ``auth`` (an AUTH file) its root and size, so that only
    the chips of that set install the bundle, and the family the set names (None: any). An AUTH
    file of another ``family`` (when known here: from the kept sealed values) is refused: no
    chip could install the bundle."""
    min_svn = assets.min_security_version
    if min_svn is None:
        min_svn = software.security_version
    if min_svn > software.security_version:
        raise InputError(
            f"min-security-version {min_svn} is above the software's {software.security_version}:"
            " no chip could install the bundle"
        )
    check_fits(assets, min_svn)
    authorized, auth_family = None, None
    if auth is not None:
        # imported here: the lot formats behind it bring X.509, a tenth of a keygen process's
        # start-up, which a bundle for every chip of the family does not need
        from trustprov.roles.authorize import load_authorized  # noqa: PLC0415 - lazy: start-up

        s = load_authorized(auth)
        auth_family = s.family_id
        if family is not None:
            check_auth_family(auth, auth_family, family)
        authorized = Authorization(s.root, len(s))
    params = BundleParams(assets.epoch, min_svn, assets.aead.cose_id, assets.chunk_size, authorized)
    return params, auth_family


def _seal_assets(
    chip: ChipClient, assets: AssetList, params: BundleParams, path: Path
) -> tuple[SignedManifest, dict[str, bytes]]:
    """FIG. 2 step 54 / FIG. 4 step 94: each asset sealed on the chip, then the MACed manifest;
    the bundle written to ``path`` as the chip seals it, a chunk at a time (`bundle_output`),
    each at the place the planned layout gives it."""
    manifest_len, lengths = planned_layout(assets, params.min_security_version, params.authorized)
    public_keys: dict[str, bytes] = {}
    try:
        with bundle_output(path, manifest_len, lengths) as out:
            sealed = 0  # index of the asset in the bundle (device keys are not sealed)
            for spec in assets.assets:
                if spec.kind == "generate":
                    assert spec.key_type is not None  # noqa: S101 - the asset list parser checked it
                    assert spec.slot is not None  # noqa: S101 - the asset list parser checked it
                    chunk, public = chip.seal_generate(spec.name, spec.key_type, spec.slot)
                    out.chunk(sealed, 0, chunk)
                    sealed += 1
                    if public is not None:
                        public_keys[spec.name] = public
                    continue
                if spec.kind == "device-key":  # made by each chip at install: declared only
                    target = {"key-type": spec.key_type, "slot": spec.slot}
                    chip.seal_asset(spec.name, "device-key", 0, target)
                    continue
                _seal_one(chip, spec, assets.chunk_size, out, sealed)
                sealed += 1
            manifest = chip.seal_finish()
            signed = SignedManifest.from_bytes(manifest)
            m = signed.manifest
            planned = [
                chunk_lengths(e, m.chunk_size) if e.deflate is None else want
                for e, want in zip(m.assets, lengths, strict=True)
            ]
            deflated = [a.deflate for a in assets.assets if a.kind != "device-key"]
            if planned != lengths or [e.deflate for e in m.assets] != deflated:
                raise FormatError("its manifest does not describe the chunks it sealed")
            out.finish(manifest)
    except FormatError as e:
        raise ArtifactError(f"the chip produced a bundle that does not parse: {e.message}") from e
    return signed, public_keys


def _seal_one(
    chip: ChipClient, spec: AssetSpec, chunk_size: int, out: BundleWriter, at: int
) -> None:
    """Seal ``spec`` and write its chunks as asset ``at`` of the bundle."""
    length = spec.length
    target: dict[str, Any] = (
        {"key-type": spec.key_type, "slot": spec.slot}
        if spec.kind == "key"
        else {"region": spec.region}
    )
    if spec.deflate is not None:  # each chunk compressed here, sealed as it is (6.5)
        target["deflate"] = spec.deflate
    chip.seal_asset(spec.name, spec.kind, length, target)
    n = max(1, -(-length // chunk_size))
    with spec.reader() as read:
        # last to first: the chip builds the chain as it goes, and the file is read backwards,
        # a chunk at a time
        for i in reversed(range(n)):
            size = chunk_size if i < n - 1 else length - chunk_size * (n - 1)
            data = read(i * chunk_size, size)
            if spec.deflate is not None:
                data = deflated_chunk(spec, data, i)
            out.chunk(at, i, chip.seal_chunk_view(i, data, len(data) + TAG_LEN))


def _write_common(
    d: Path,
    signed: SignedManifest,
    public_keys: dict[str, bytes],
    enc_oem_share: bytes,
    meta: dict[str, Any],
) -> None:
    write_file(d / "enc-oem-share.cose", enc_oem_share)
    if public_keys:
        (d / "generated").mkdir()
        for name, pem in public_keys.items():
            write_file(d / "generated" / f"{_file_name(name)}.pub.pem", pem)
    m = signed.manifest
    meta |= {
        "family": m.family_id.hex(),
        "bundle-id": m.bundle_id.hex(),
        "epoch": m.epoch,
        "min-security-version": m.min_security_version,
        "aead": m.aead.name,
        "assets": [
            {"name": a.name, "kind": a.kind, "target": a.target, "length": a.length}
            | ({} if a.deflate is None else {"deflate": a.deflate})
            for a in m.assets
        ],
        "generated-public-keys": sorted(public_keys),
        "authorized": None
        if m.authorized is None
        else {"root": m.authorized.root.hex(), "chips": m.authorized.count},
    }
    write_file(d / "oem.json", json.dumps(meta, indent=2).encode() + b"\n")


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def check_auth_family(auth: Path, auth_family: bytes | None, family: bytes) -> None:
    """Refuse an authorized set of chips of another family than ``family``: each of its chips
    would refuse the bundle (`wrong-family`), and no chip of the family is in it."""
    if auth_family is not None and auth_family != family:
        raise InputError(
            f"{auth}: an authorized set of chips of family {auth_family.hex()}, not of this "
            f"bundle's family {family.hex()}: no chip could install the bundle"
        )


def _check_manufactured(
    chip: ChipClient, what: str, auth: tuple[Path, bytes | None] | None = None
) -> None:
    """Refuse a chip that is not manufactured; with ``auth`` (an AUTH file and the family its
    set names), one of another family than the set's."""
    status = chip.status()
    if status.get("lifecycle") in ("BLANK", None):
        raise InputError(f"{what}: chip is not manufactured")
    family = status.get("family")
    if auth is not None and isinstance(family, bytes):
        check_auth_family(auth[0], auth[1], family)


def keygen(
    farm_path: Path | None,
    uid: bytes | None,
    *,
    port: str | None = None,
    ca: Path | None = None,
    software_path: Path,
    assets: AssetList,
    out: Path,
    rng: Random = os.urandom,
    auth: Path | None = None,
) -> SealResult:
    """FIG. 2 on the OEM's provisioning chip; writes OEM_DIR (see module docstring). With
    ``auth``, the bundle installs only on the chips of that authorized set. The chip is
    ``uid`` of the farm ``farm_path``, or the one behind ``port``, checked against the device
    CA ``ca`` before anything is sent to it (`trustprov.roles.desk_chip`)."""
    image = read_bytes(software_path, limit=LIMITS.software, what="software")
    software = SignedSoftware.from_bytes(image)
    params, auth_family = _params(assets, software, auth)
    oem_rnd_input = rng(OEM_RND_INPUT_LEN)  # the OEM's random contribution
    where = port or f"chip {uid.hex() if uid else None}"
    with new_directory(out) as d, desk_chip(port=port, farm=farm_path, uid=uid, ca=ca) as chip:
        # the chip's family is the bundle's: an AUTH file of another one is refused here
        _check_manufactured(chip, where, None if auth is None else (auth, auth_family))
        chip.boot(image)
        sealed = chip.keygen(oem_rnd_input, params)
        signed, public_keys = _seal_assets(chip, assets, params, d / "bundle.cbor")
        write_file(d / "enc-oem-rnd-input.cose", sealed["enc-oem-rnd-input"], mode=PRIVATE)
        write_file(d / "enc-rnd-share.cose", sealed["enc-rnd-share"], mode=PRIVATE)
        meta = {"software-version": software.version}
        _write_common(d, signed, public_keys, sealed["enc-oem-share"], meta)
        _record_epochs(d, [assets.epoch], force=False)
    return SealResult(signed, public_keys, out / "bundle.cbor")


ISSUED = "issued-epochs.json"
MAX_ISSUED = 65536  # epochs one state records: far beyond any OEM's updates


def _issued_epochs(state: Path) -> list[int]:
    """Every epoch issued from ``state``: its record, and the epoch of its own oem.json."""
    epochs = {_state_epoch(state)}
    path = state / ISSUED
    if path.exists():
        data = read_bytes(path, limit=MAX_ISSUED * 16, what="OEM state")
        try:
            listed = json.loads(data)["issued-epochs"]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not the record of issued epochs") from e
        if not isinstance(listed, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in listed
        ):
            raise InputError(f"{path}: issued epochs must be non-negative integers")
        epochs.update(listed)
    return sorted(epochs)


def _record_epochs(state: Path, epochs: list[int], *, force: bool) -> None:
    doc = {"issued-epochs": sorted(set(epochs))}
    data = json.dumps(doc).encode() + b"\n"
    write_file(state / ISSUED, data, force=force, kind="issued-epochs")


def _state_epoch(state: Path) -> int:
    """The epoch of the bundle made with the state in ``state`` (its oem.json)."""
    data = read_bytes(state / "oem.json", limit=LIMITS.asset_list, what="OEM state")
    try:
        epoch = json.loads(data)["epoch"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{state}/oem.json: not the oem.json of keygen or regen") from e
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise InputError(f"{state}/oem.json: epoch must be a non-negative integer")
    return epoch


def regen(
    farm_path: Path | None,
    uid: bytes | None,
    *,
    port: str | None = None,
    ca: Path | None = None,
    software_path: Path,
    state: Path,
    assets: AssetList,
    out: Path,
    auth: Path | None = None,
) -> SealResult:
    """FIG. 4: the same K_MK from the kept ENC(OEM_RND_INPUT) and ENC(RND_SHARE); ``auth`` as
    for keygen."""
    image = read_bytes(software_path, limit=LIMITS.software, what="software")
    software = SignedSoftware.from_bytes(image)
    enc_input = read_bytes(
        state / "enc-oem-rnd-input.cose", limit=LIMITS.sealed_value, what="ENC(OEM_RND_INPUT)"
    )
    enc_rnd = read_bytes(
        state / "enc-rnd-share.cose", limit=LIMITS.sealed_value, what="ENC(RND_SHARE)"
    )
    # parse here for a clear error before a chip is touched; the chip checks them again
    kept = SealedValue.from_bytes(enc_input, "oem-rnd-input")
    SealedValue.from_bytes(enc_rnd, "rnd-share")
    params, _ = _params(assets, software, auth, family=kept.family_id)
    issued = _issued_epochs(state)
    if assets.epoch <= issued[-1]:
        shown = ", ".join(map(str, issued[-5:]))
        raise InputError(
            f"epoch {assets.epoch} is not above the epochs already issued from {state} "
            f"({'..., ' if len(issued) > 5 else ''}{shown}): a chip holding the latest bundle "
            f"would refuse it (set [bundle] epoch = {issued[-1] + 1} or more)"
        )
    if len(issued) >= MAX_ISSUED:
        raise InputError(f"{state}: {MAX_ISSUED} epochs issued already; keygen a new state")
    where = port or f"chip {uid.hex() if uid else None}"
    with new_directory(out) as d, desk_chip(port=port, farm=farm_path, uid=uid, ca=ca) as chip:
        _check_manufactured(chip, where)
        chip.boot(image)
        enc_oem_share = chip.regen(enc_input, enc_rnd, params)
        signed, public_keys = _seal_assets(chip, assets, params, d / "bundle.cbor")
        meta = {"software-version": software.version}
        _write_common(d, signed, public_keys, enc_oem_share, meta)
        # recorded before the directory is placed: an epoch is never issued unrecorded
        _record_epochs(state, [*issued, assets.epoch], force=True)
    return SealResult(signed, public_keys, out / "bundle.cbor")
