"""The OEM's asset list (ASSETS_TOML): what goes into a bundle, and where on the chip.

    [bundle]                      # all optional
    epoch = 1                     # chips refuse an update whose epoch is not above theirs
                                  # (regen: above the epoch of the state it starts from)
    aead = "AES-GCM"              # or "AES-CCM" (claim 6)
    chunk-size = 16384            # plaintext bytes per chunk, 256..32768, as fits 64 KiB of
                                  # RAM; default: the largest multiple of 1 KiB that fits
    min-security-version = 1      # default: the signing software's security version

    [[asset]]
    name = "app-key"              # unique in the bundle; names, regions: 1..64 bytes of UTF-8
    kind = "key"                  # key | certificate | firmware | config | generate
                                  # | device-key
    key-type = "aes-256"          # key: aes-256 | ec-p256 | ec-p384 | ed25519 | raw
    slot = 1                      # key, generate, device-key: key slot 0..255
    hex = "00112233..."           # key, config: the value in hex, or
    file = "app-key.bin"          # any kind but generate: a file, relative to this list
                                  # (keys: PEM or DER, PKCS#8 or SEC1, or raw bytes)
    value = "text"                # config: UTF-8 text

    [[asset]]
    name = "app"
    kind = "firmware"
    region = "app"                # certificate, firmware, config: flash region
    file = "app.bin"
    compress = "deflate"          # firmware, config: "deflate" or "none"; default: deflate
                                  # (raw DEFLATE, window 2^15) when it saves at least 5 %

A generated asset (kind = "generate", key-type ec-p256 | ec-p384 | ed25519 | aes-256) is made on
the chip from the seed H; only its public key leaves. It is the same key on every chip that
installs the bundle. A device key (kind = "device-key", key-type ec-p256) is the opposite: each
chip makes its own from its TRNG when it installs the bundle; the private half never leaves the
chip, the public half comes back in the chip's receipt (`oem reconcile --csv`). The reference,
with every field, is docs/assets.md; `trustprov oem template` prints a commented list to start from.
Certificates may be PEM or DER and are installed as DER.

This module parses a list (bounded: its size, items and nesting; every error an `InputError`
naming the list); the specs it makes are in asset_model.py, the bundle they plan in
asset_plan.py.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from trustprov.crypto.aead import AEAD_ALIASES
from trustprov.crypto.keys import CURVES, MATERIAL_LEN, check_private_scalar
from trustprov.errors import FormatError, InputError
from trustprov.formats import cbor, text
from trustprov.formats.bundle import (
    DEVICE_KEY_TYPES,
    KEY_TYPES,
    MAX_SLOT,
    MIN_CHUNK,
)
from trustprov.formats.limits import LIMITS, MiB
from trustprov.roles.asset_compress import COMPRESS_CHOICES, decide
from trustprov.roles.asset_model import CHUNK_STEP, MAX_CHUNK, AssetList, AssetSpec
from trustprov.roles.asset_plan import check_fits, fit_chunk_size, planned_layout, planned_sizes
from trustprov.roles.files import read_bytes
from trustprov.roles.keyfiles import read_key_file

__all__ = [
    "CHUNK_STEP",
    "KINDS",
    "MAX_CHUNK",
    "AssetList",
    "AssetSpec",
    "check_fits",
    "fit_chunk_size",
    "load",
    "parse",
    "planned_layout",
    "planned_sizes",
]

KINDS = ("key", "certificate", "firmware", "config", "generate", "device-key")
MAX_FILE = LIMITS.region  # the most a chip's flash region holds (a bundle holds more)


def load(path: Path) -> AssetList:
    path = Path(path)
    data = read_bytes(path, limit=LIMITS.asset_list, what="asset list")
    try:
        text.check_items(data, LIMITS.asset_list_items, "the list", toml=True)
        doc = tomllib.loads(data.decode("utf-8"))
        text.check_depth(doc, LIMITS.text_depth, "the list")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"asset list {path}: not valid TOML ({e})") from e
    except ValueError as e:  # e.g. an integer beyond Python's conversion limit
        raise InputError(f"asset list {path}: not valid TOML (a value out of range)") from e
    except RecursionError as e:
        raise InputError(f"asset list {path}: nested too deeply") from e
    except FormatError as e:
        raise InputError(f"asset list {path}: {e.message}") from e
    try:
        return parse(doc, path.parent)
    except FormatError as e:
        raise InputError(f"asset list {path}: {e.message}") from e


def parse(doc: dict[str, Any], base: Path) -> AssetList:
    _keys(doc, "the list", set(), {"bundle", "asset"})
    bundle = doc.get("bundle", {})
    if not isinstance(bundle, dict):
        raise FormatError("[bundle] must be a table")
    _keys(bundle, "[bundle]", set(), {"epoch", "aead", "chunk-size", "min-security-version"})
    aead_name = _typed(bundle.get("aead", "AES-GCM"), str, "[bundle] aead")
    if aead_name not in AEAD_ALIASES:
        raise FormatError(f"[bundle] aead must be one of {', '.join(AEAD_ALIASES)}")
    aead = AEAD_ALIASES[aead_name]
    chunk_size = bundle.get("chunk-size")
    if chunk_size is not None:
        chunk_size = _int(chunk_size, "[bundle] chunk-size", MIN_CHUNK, MAX_CHUNK)
    epoch = _int(bundle.get("epoch", 1), "[bundle] epoch", 0, 2**32 - 1)
    min_svn = bundle.get("min-security-version")
    if min_svn is not None:
        min_svn = _int(min_svn, "[bundle] min-security-version", 0, 2**32 - 1)
    items = doc.get("asset", [])
    if not isinstance(items, list) or not items:
        raise FormatError("needs at least one [[asset]]")
    if len(items) > LIMITS.assets_per_bundle:
        raise FormatError(f"at most {LIMITS.assets_per_bundle} assets")
    assets = tuple(_asset(item, base, i) for i, item in enumerate(items))
    if all(a.kind == "device-key" for a in assets):
        raise FormatError("needs at least one [[asset]] that is not a device-key")
    for what, values in (
        ("name", [a.name for a in assets]),
        ("slot", [str(a.slot) for a in assets if a.slot is not None]),
        ("region", [str(a.region) for a in assets if a.region is not None]),
    ):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise FormatError(f"duplicate asset {what}: {', '.join(dupes)}")
    if chunk_size is not None:
        return decide(AssetList(epoch, aead, chunk_size, min_svn, assets))
    # the chunk size that fits with the inflater's RAM while any asset may be deflated; if
    # none is, the size that fits without it (larger, and nothing deflated to redo)
    decided = decide(fit_chunk_size(AssetList(epoch, aead, CHUNK_STEP, min_svn, assets)))
    if any(a.may_deflate for a in assets) and not any(a.may_deflate for a in decided.assets):
        return fit_chunk_size(decided)
    return decided


def _asset(item: Any, base: Path, i: int) -> AssetSpec:
    if not isinstance(item, dict):
        raise FormatError(f"asset {i} must be a table")
    name = _name(item.get("name"), f"asset {i} name")
    what = f"asset {name!r}"
    kind = _typed(item.get("kind"), str, f"{what} kind")
    if kind not in KINDS:
        raise FormatError(f"{what}: kind must be one of {', '.join(KINDS)}")
    if "compress" in item and kind not in ("firmware", "config"):
        raise FormatError(
            f"{what}: compress is for firmware and config assets; a {kind} is never compressed"
        )
    if kind in ("key", "generate", "device-key"):
        return _key_asset(item, base, name, kind)
    text = kind == "config"
    _keys(
        item,
        what,
        {"name", "kind", "region"},
        ({"hex", "file", "value"} if text else {"hex", "file"})
        | ({"compress"} if kind != "certificate" else set()),
    )
    region = _name(item["region"], f"{what} region")
    value, path = _source(item, base, what, allow_text=text)
    if kind == "certificate":
        data = value if value is not None else read_bytes(path, limit=LIMITS.chunk, what=what)  # type: ignore[arg-type]  # _source gives one of the two
        from cryptography import x509  # noqa: PLC0415 - lazy: a list without a certificate
        # (a firmware's) seals without X.509's start-up

        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(data)
            else:
                cert = x509.load_der_x509_certificate(data)
        except ValueError as e:
            raise FormatError(f"{what}: not an X.509 certificate (PEM or DER)") from e
        value, path = cert.public_bytes(serialization.Encoding.DER), None
        return AssetSpec(name, kind, region=region, value=value, path=path)
    compress = _typed(item.get("compress", "auto"), str, f"{what} compress")
    if "compress" in item and compress not in COMPRESS_CHOICES:
        raise FormatError(f'{what}: compress must be "deflate" or "none"')
    return AssetSpec(name, kind, region=region, value=value, path=path, compress=compress)


def _key_asset(item: dict[str, Any], base: Path, name: str, kind: str) -> AssetSpec:
    what = f"asset {name!r}"
    _keys(
        item,
        what,
        {"name", "kind", "key-type", "slot"},
        {"hex", "file"} if kind == "key" else set(),
    )
    key_type = _typed(item["key-type"], str, f"{what} key-type")
    allowed = (
        set(KEY_TYPES)
        if kind == "key"
        else set(DEVICE_KEY_TYPES)
        if kind == "device-key"
        else set(MATERIAL_LEN)
    )
    if key_type not in allowed:
        raise FormatError(f"{what}: key-type must be one of {', '.join(sorted(allowed))}")
    slot = _int(item["slot"], f"{what} slot", 0, MAX_SLOT)
    if kind in ("generate", "device-key"):
        return AssetSpec(name, kind, key_type=key_type, slot=slot)
    value, path = _source(item, base, what, allow_text=False)
    if value is None:  # keys are small: read and check them now (PEM, DER or raw)
        value = read_key_file(path, key_type, what)  # type: ignore[arg-type]  # _source gives one of the two
    if len(value) not in KEY_TYPES[key_type]:
        sizes = " or ".join(map(str, KEY_TYPES[key_type]))
        raise FormatError(f"{what}: a {key_type} key is {sizes} bytes, not {len(value)}")
    if key_type in CURVES:
        try:
            check_private_scalar(key_type, value)
        except ValueError as e:
            raise FormatError(f"{what}: not a valid {key_type} private key (0 < d < n)") from e
    return AssetSpec(name, kind, key_type=key_type, slot=slot, value=value)


def _source(
    item: dict[str, Any], base: Path, what: str, *, allow_text: bool
) -> tuple[bytes | None, Path | None]:
    """Exactly one of (value, path)."""
    sources = [k for k in ("hex", "file", "value") if k in item]
    if len(sources) != 1:
        options = "hex, file or value" if allow_text else "hex or file"
        raise FormatError(f"{what}: give exactly one of {options}")
    src = sources[0]
    if src == "file":
        path = base / _typed(item["file"], str, f"{what} file")
        try:
            if not path.is_file():
                raise FormatError(f"{what}: no such file {path}")
            size = path.stat().st_size
        except OSError as e:
            raise FormatError(f"{what}: cannot use file {str(path)[:80]!r} ({e.strerror})") from e
        if not 0 < size <= MAX_FILE:
            raise FormatError(
                f"{what}: {path} is {size:,} bytes; an asset file is 1 byte to {MAX_FILE:,} "
                f"({MAX_FILE // MiB} MiB), the most a chip's flash region holds"
            )
        return None, path
    text = _typed(item[src], str, f"{what} {src}")
    if src == "value":
        value = text.encode("utf-8")
    else:
        try:
            value = bytes.fromhex(text)
        except ValueError as e:
            raise FormatError(f"{what}: hex is not valid hex") from e
    if not value:
        raise FormatError(f"{what}: empty")
    return value, None


def _name(value: Any, what: str) -> str:
    name: str = _typed(value, str, what)
    # printable first (it refuses lone surrogates); the limit is in UTF-8 bytes, as on the chip
    if not name or not name.isprintable() or len(name.encode("utf-8")) > LIMITS.name:
        raise FormatError(f"{what} must be printable, 1..{LIMITS.name} bytes in UTF-8")
    return name


def _keys(table: dict[str, Any], what: str, required: set[str], optional: set[str]) -> None:
    cbor.expect_map(table, what, required, optional)


#: TOML's types as a person says them ("an integer", never "a int")
_TYPE_WORDS = {int: "an integer", str: "a string", bool: "true or false", dict: "a table"}


def _typed(value: Any, typ: type, what: str) -> Any:
    if not isinstance(value, typ) or isinstance(value, bool):
        raise FormatError(f"{what} must be {_TYPE_WORDS.get(typ, 'of another type')}")
    return value


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    v: int = _typed(value, int, what)
    if not lo <= v <= hi:
        raise FormatError(f"{what} must be {lo}..{hi}")
    return v
