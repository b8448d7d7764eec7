"""Recognise any trustprov artifact by its content, never its name, and describe what is public.

`describe` reads a file, decides what it is from its first bytes and its structure, parses it
with the artifact's own bounded parser and returns a `Description`: a kind, a sentence for a
person and the public fields, ready for JSON.

Invariants:
- nothing secret is ever put in a description: a private key file or the ICM's family secrets
  are named as what they are and as secret, with none of their bytes; a sealed value or a bundle
  shows its public headers only, and says that its contents are sealed; an asset list shows the
  assets' names and targets, never a key given in it;
- a farm is reached only through `link.farm.FarmLink` and the chips' ``rom.status`` (what any
  host learns over the link); a records store through a reader the caller passes in (line/ sits
  above the roles);
- input that is no trustprov artifact, or a damaged one, is an `InputError` naming the file and,
  where recognised, what the file is; a signature or certificate that fails the check asked for
  is a `VerificationError`.

The recogniser it starts from (roles/sniff.py) names what a file is when a command is given the
wrong one (`sniff_file`, `description.what_it_is`, cli/artifacts.py): "FILE: this is signed
provisioning software, not a sealed bundle".
"""

from __future__ import annotations

import json
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustprov.errors import FormatError, InputError, VerificationError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS, KiB
from trustprov.roles.description import FIRST_UIDS, DatabaseReader, Description
from trustprov.roles.files import read_bytes
from trustprov.roles.sniff import sniff_file, what

FAMILY_SECRETS_KEYS = frozenset({"hw-share", "rom-share", "k-oem-share", "k-oem-master-share"})
_SMALL = 64 * KiB  # key, certificate and metadata files


def describe(
    path: Path,
    *,
    key: Path | None = None,
    ca: Path | None = None,
    database: DatabaseReader | None = None,
) -> Description:
    """Describe ``path``; with ``key`` also verify signed software, with ``ca`` every certificate
    of a lot manifest. Raises `InputError` on unknown or damaged input."""
    path = Path(path)
    _check_regular(path)
    kind = sniff_file(path, strict=True)
    if key is not None and kind != "software":
        raise InputError(f"--key checks signed software; {path} is another file ({what(kind)})")
    if ca is not None and kind != "json":
        raise InputError(f"--verify checks a lot manifest; {path} is another file ({what(kind)})")
    try:
        if kind == "sqlite":
            from trustprov.roles.inspect_farm import describe_database  # noqa: PLC0415 - lazy

            return describe_database(path, database)
        if kind == "software":
            from trustprov.roles import inspect_authz  # noqa: PLC0415 - lazy: start-up

            sig = inspect_authz.lot_signature(path) if key is None else None
            if sig is not None:
                return Description(
                    "lot-signature",
                    "the ICM's signature on a lot manifest (COSE_Sign1)",
                    inspect_authz.lot_signature_fields(sig),
                )
            from trustprov.roles import inspect_receipts  # noqa: PLC0415 - lazy: start-up

            if key is None and inspect_receipts.first_receipt(path) is not None:
                return Description(
                    "receipts",
                    "chip receipts (EAT in COSE_Sign1, a CBOR sequence; cm receipts)",
                    inspect_receipts.receipts_fields(path),
                )
            return _software(path, key)
        if kind == "json":
            return _json(path, ca)
        reader = _READERS.get(kind)
        if reader is None:
            raise InputError(
                f"{path}: not a trustprov artifact (nothing of it is shown; raw keys, "
                "firmware and configuration files look like this)"
            )
        return reader(path)
    except FormatError as e:
        if e.code == "bundle-version":  # not damaged: of another construction, to be resealed
            raise InputError(f"{path}: {e.message}") from e
        raise InputError(f"{path}: a damaged {what(kind)} ({e.message})") from e


def _check_regular(path: Path) -> None:
    """Refuse, before opening it, what is not a regular file: opening a FIFO for reading waits
    for a writer (forever), and a device never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such file") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from e
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a directory; inspect takes a file")
    if not stat.S_ISREG(mode):
        what = (
            "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        )
        raise InputError(f"{path} is {what}, not a regular file; inspect takes a file")


# -- COSE and CBOR artifacts ----------------------------------------------------------------------
def _software(path: Path, key: Path | None) -> Description:
    from trustprov.crypto.keys import load_public_key  # noqa: PLC0415 - only --key needs it
    from trustprov.formats.software import SignedSoftware  # noqa: PLC0415 - lazy: start-up

    sw = SignedSoftware.from_bytes(read_bytes(path, limit=LIMITS.software, what="software"))
    fields: dict[str, Any] = {
        "name": sw.name,
        "version": sw.version,
        "security_version": sw.security_version,
        "algorithm": sw.alg,
        "code_sha256": sw.code_digest.hex(),
        "code_bytes": len(sw.code),
        "signature": "not checked (give --key PUB_PEM to check it)",
    }
    if key is not None:
        public = load_public_key(read_bytes(key, limit=_SMALL, what="public key"))
        try:
            sw.verify(public)
        except VerificationError as e:
            why = "" if e.code == "bad-signature" else f" ({e.message})"
            raise VerificationError(
                f"{path}: the signature does not verify under {key}{why}", code=e.code
            ) from e
        fields["signature"] = f"verified under {key}"
    return Description("software", "signed provisioning software (COSE_Sign1)", fields)


_SEALED_ROLE = {
    "oem-share": "ENC(OEM_SHARE) under K_OEM_SHARE: the OEM sends it to the CM with the bundle",
    "oem-rnd-input": "ENC(OEM_RND_INPUT) under K_OEM_MASTER_SHARE: the OEM keeps it (FIG. 4)",
    "rnd-share": "ENC(RND_SHARE) under K_OEM_MASTER_SHARE: the OEM keeps it (FIG. 4)",
}


def _sealed_value(path: Path) -> Description:
    from trustprov.formats.sealed import SealedValue  # noqa: PLC0415 - lazy: start-up

    v = SealedValue.from_bytes(read_bytes(path, limit=LIMITS.sealed_value, what="sealed value"))
    return Description(
        "sealed-value",
        "sealed value (COSE_Encrypt0, A256GCM)",
        {"value": v.kind, "family": v.family_id.hex(), "role": _SEALED_ROLE[v.kind]},
        note="its content is sealed: only a chip of this family can open it",
    )


def _manifest_fields(m: Any) -> dict[str, Any]:
    return {
        "family": m.family_id.hex(),
        "bundle_id": m.bundle_id.hex(),
        "epoch": m.epoch,
        "min_security_version": m.min_security_version,
        "aead": m.aead.name,
        "chunk_size": m.chunk_size,
        "assets": [
            {
                "name": a.name,
                "kind": a.kind,
                **({"key_type": a.key_type, "slot": a.slot} if a.is_key else {"region": a.region}),
                "length": a.length,
                "chunks": a.chunks,
                **({} if a.deflate is None else {"deflate": a.deflate}),
            }
            for a in m.assets
        ],
        "authorized": "any chip of the family (no authorized set)"
        if m.authorized is None
        else {"root": m.authorized.root.hex(), "chips": m.authorized.count},
    }


def _authorized_set(path: Path) -> Description:
    from trustprov.roles import inspect_authz  # noqa: PLC0415 - lazy: start-up

    return Description(
        "authorized-set",
        "the OEM's authorized set of chips (Merkle tree of UIDs)",
        inspect_authz.authorized_set_fields(path),
    )


_SEALED_NOTE = (
    "the assets are sealed (K_ENCK, K_ENCD) and the manifest is MACed under K_AUTH: only a chip "
    "of this family given the OEM's ENC(OEM_SHARE) can check and open them; nothing of the "
    "assets' content is shown"
)


def _bundle(path: Path) -> Description:
    from trustprov.roles.bundle_io import BundleFile  # noqa: PLC0415 - lazy: start-up

    b = BundleFile(path)  # checked whole, but only its manifest is held
    return Description(
        "bundle", "sealed asset bundle", _manifest_fields(b.manifest), note=_SEALED_NOTE
    )


def _manifest(path: Path) -> Description:
    from trustprov.formats.bundle import SignedManifest  # noqa: PLC0415 - lazy: start-up

    m = SignedManifest.from_bytes(read_bytes(path, limit=LIMITS.manifest, what="manifest"))
    return Description(
        "manifest", "bundle manifest (COSE_Mac0)", _manifest_fields(m.manifest), note=_SEALED_NOTE
    )


def _cbor_map(path: Path) -> Description:
    try:
        value = cbor.decode(read_bytes(path, limit=4 * KiB, what="file"), limit=4 * KiB, what="-")
    except (FormatError, InputError) as e:
        raise InputError(f"{path}: not a trustprov artifact") from e
    is_secrets = isinstance(value, dict) and set(value) == FAMILY_SECRETS_KEYS
    del value  # the shares: never kept, never shown
    if not is_secrets:
        raise InputError(f"{path}: not a trustprov artifact (a CBOR map of unknown keys)")
    return Description(
        "family-secrets",
        "the ICM's family secrets (HW_SHARE, ROM_SHARE, K_OEM_SHARE, K_OEM_MASTER_SHARE)",
        note="SECRET: the ICM alone keeps it (mode 0600); nothing of it is shown",
        secret=True,
    )


# -- text artifacts -----------------------------------------------------------------------------
def _pem(path: Path) -> Description:
    data = read_bytes(path, limit=_SMALL, what="PEM file")
    label = data.lstrip().split(b"\n", 1)[0].decode("ascii", "replace").strip()
    if "PRIVATE KEY" in label:
        return Description(
            "private-key",
            f"a private key ({label.strip('-').removeprefix('BEGIN ')})",
            note="SECRET: keep it at mode 0600 with its owner; nothing of it is shown",
            secret=True,
        )
    from trustprov.roles.inspect_x509 import describe_pem  # noqa: PLC0415 - lazy: start-up

    return describe_pem(data, label)


def _json(path: Path, ca: Path | None) -> Description:
    data = read_bytes(path, limit=LIMITS.lot_manifest, what="JSON file")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        if data.lstrip().startswith(b'{"lot"'):  # how the ICM's writer starts a lot manifest
            raise InputError(f"{path}: a damaged lot manifest (not valid JSON)") from e
        raise InputError(f"{path}: not a trustprov artifact (JSON that does not parse)") from e
    keys = set(doc) if isinstance(doc, dict) else set()
    if keys == {"lot", "family", "chips"}:
        del doc  # parsed again, strictly, by the lot manifest's own parser
        return _lot_manifest(path, data, ca)
    if ca is not None:
        raise InputError(f"--verify checks a lot manifest; {path} is another JSON file")
    if {"family", "alg", "created-by"} <= keys:  # "keys", "secrets": where they live
        return Description("icm-metadata", "the ICM's family metadata (icm.json)", doc)
    if {"software-version", "family", "bundle-id", "assets"} <= keys:
        return Description("oem-metadata", "the OEM's record of a bundle it made (oem.json)", doc)
    if keys == {"issued-epochs"}:
        return Description(
            "issued-epochs", "the epochs issued from an OEM state (issued-epochs.json)", doc
        )
    if {"lot", "station", "bundle_id", "chips", "provisioned", "failed"} <= keys:
        return Description("run-summary", "a provisioning run's summary (--json)", doc)
    raise InputError(f"{path}: not a trustprov artifact (JSON of unknown keys)")


def _lot_manifest(path: Path, data: bytes, ca: Path | None) -> Description:
    from trustprov.formats.lot import LotManifest  # noqa: PLC0415 - lazy: start-up

    try:
        lot = LotManifest.from_json(data)
    except FormatError as e:
        raise InputError(f"{path}: a damaged lot manifest ({e.message})") from e
    fields: dict[str, Any] = {
        "lot": lot.lot,
        "family": lot.family_id.hex(),
        "chips": len(lot.chips),
        "first_uids": [c.uid.hex() for c in lot.chips[:FIRST_UIDS]],
        "certificates": "not checked (give --verify DEVICE_CA_PEM to check them)",
    }
    from trustprov.roles import inspect_authz  # noqa: PLC0415 - lazy: start-up

    fields["signature"] = inspect_authz.lot_manifest_signature(path, data, lot.lot, len(lot.chips))
    if ca is not None:
        from trustprov.roles.inspect_x509 import verify_lot  # noqa: PLC0415 - lazy: start-up

        verify_lot(lot, ca, path)
        fields["certificates"] = f"all {len(lot.chips)} issued by the device CA {ca}"
    return Description("lot-manifest", "the ICM's lot manifest", fields)


def _toml(path: Path) -> Description:
    from trustprov.roles import assets  # noqa: PLC0415 - lazy: start-up

    try:
        doc = tomllib.loads(read_bytes(path, limit=LIMITS.asset_list, what="file").decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a trustprov artifact (not TOML)") from e
    if "asset" not in doc:
        raise InputError(f"{path}: not a trustprov artifact (TOML without [[asset]])")
    try:
        listed = assets.load(path)
    except InputError as e:
        raise InputError(f"a damaged asset list: {e.message}") from e
    rows = []
    for a in listed.assets:
        row: dict[str, Any] = {"name": a.name, "kind": a.kind}
        if a.key_type:
            row["key_type"] = a.key_type
        row["target"] = f"slot {a.slot}" if a.slot is not None else f"region {a.region}"
        if a.kind not in ("generate", "device-key"):  # made on a chip: no length, no source
            row["length"] = a.length
            row["source"] = f"file {a.path.name}" if a.path is not None else "given in the list"
        rows.append(row)
    return Description(
        "asset-list",
        "the OEM's asset list (oem keygen --assets)",
        {
            "epoch": listed.epoch,
            "aead": listed.aead.name,
            "chunk_size": listed.chunk_size,
            "min_security_version": listed.min_security_version,
            "assets": rows,
        },
        note="the assets are the OEM's secrets: only their names, kinds and sizes are shown",
    )


_READERS: dict[str, Callable[[Path], Description]] = {
    "sealed-value": _sealed_value,
    "manifest": _manifest,
    "bundle": _bundle,
    "authorized-set": _authorized_set,
    "cbor-map": _cbor_map,
    "pem": _pem,
    "toml": _toml,
}
