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

A generated asset (kind = "generate", key-type ec-p256 | ec-p384 | ed25519 | aes-256) is made on
the chip from the seed H; only its public key leaves. It is the same key on every chip that
installs the bundle. A device key (kind = "device-key", key-type ec-p256) is the opposite: each
chip makes its own from its TRNG when it installs the bundle; the private half never leaves the
chip, the public half comes back in the chip's receipt (`oem reconcile --csv`). The reference,
with every field, is docs/assets.md; `trustprov oem template` prints a commented list to start from.
Certificates may be PEM or DER and are installed as DER.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from trustprov.crypto.aead import AEAD_ALIASES, TAG_LEN, Aead
from trustprov.crypto.digest import CHAIN_END
from trustprov.crypto.keys import CURVES, MATERIAL_LEN, check_private_scalar
from trustprov.crypto.schedule import FAMILY_ID_LEN
from trustprov.errors import FormatError, InputError
from trustprov.formats import budget, cbor, cose, text
from trustprov.formats.bundle import (
    BUNDLE_ID_LEN,
    BUNDLE_MAGIC,
    DEVICE_KEY_TYPES,
    FORMAT,
    KEY_TYPES,
    MAX_SLOT,
    MIN_CHUNK,
    AssetEntry,
    Authorization,
    DeviceKeySpec,
    Manifest,
    SignedManifest,
    chunk_count,
)
from trustprov.formats.bundle_file import chunk_lengths
from trustprov.formats.limits import LIMITS, GiB
from trustprov.roles.files import read_bytes
from trustprov.roles.keyfiles import read_key_file

KINDS = ("key", "certificate", "firmware", "config", "generate", "device-key")
MAX_FILE = LIMITS.bundle  # a larger file cannot be in a bundle that cm provision reads
#: a chip holds a chunk's ciphertext and plaintext at once, beside the manifest and its keys,
#: so no chunk of 32 KiB fits its 64 KiB of RAM (the format itself allows 64 KiB); whether a
#: smaller one fits is `check_fits`'s question, asked with the chip's own numbers
MAX_CHUNK = 32 * 1024
#: without [bundle] chunk-size, the largest multiple of this that fits the family's RAM
CHUNK_STEP = 1024


@dataclass(frozen=True)
class AssetSpec:
    name: str
    kind: str
    key_type: str | None = None
    slot: int | None = None
    region: str | None = None
    value: bytes | None = field(default=None, repr=False)
    path: Path | None = None

    @property
    def length(self) -> int:
        if self.value is not None:
            return len(self.value)
        assert self.path is not None  # noqa: S101 - every non-generated asset has one source
        return self.path.stat().st_size

    def read(self, offset: int, size: int) -> bytes:
        with self.reader() as read:
            return read(offset, size)

    @contextmanager
    def reader(self) -> Iterator[Callable[[int, int], bytes]]:
        """``read(offset, size)`` of the asset's bytes, its file opened once for all of them:
        the sealing tool reads a large file a chunk at a time, in any order."""
        if self.value is not None:
            value = self.value
            yield lambda offset, size: value[offset : offset + size]
            return
        assert self.path is not None  # noqa: S101 - every non-generated asset has one source
        path, name = self.path, self.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise InputError(f"asset {name!r}: cannot read {path} ({e.strerror})") from e

        def read(offset: int, size: int) -> bytes:
            try:
                data = os.pread(fd, size, offset)
            except OSError as e:
                raise InputError(f"asset {name!r}: cannot read {path} ({e.strerror})") from e
            if len(data) != size:
                raise InputError(f"asset {name!r}: {path} changed while being read")
            return data

        try:
            yield read
        finally:
            os.close(fd)


@dataclass(frozen=True)
class AssetList:
    epoch: int
    aead: Aead
    chunk_size: int
    min_security_version: int | None
    assets: tuple[AssetSpec, ...]


def _planned_entry(spec: AssetSpec, aead: Aead, chunk_size: int) -> AssetEntry:
    """The manifest entry the chip will make for ``spec``, with placeholder nonce and digest
    of their fixed lengths: its encoding is as long as the real one."""
    if spec.kind == "generate":
        assert spec.key_type is not None  # noqa: S101 - the parser checked it
        length, kind = KEY_TYPES[spec.key_type][0], "key"
    else:
        length, kind = spec.length, spec.kind
    return AssetEntry(
        name=spec.name,
        kind=kind,
        length=length,
        chunks=chunk_count(length, chunk_size),
        nonce=bytes(aead.nonce_len - 5),
        digest=CHAIN_END,
        key_type=spec.key_type,
        slot=spec.slot,
        region=spec.region,
    )


def _head(n: int) -> int:
    """Bytes of a CBOR item head carrying the number ``n`` (RFC 8949 3.1)."""
    return 1 if n < 24 else 2 if n < 2**8 else 3 if n < 2**16 else 5 if n < 2**32 else 9


def planned_sizes(
    assets: AssetList, min_security_version: int, authorized: Authorization | None = None
) -> tuple[int, int]:
    """(manifest bytes, bundle bytes) of the bundle a chip seals from ``assets`` (for the
    chips of ``authorized``): exact, as the chip encodes the same structure with values of the
    same lengths."""
    manifest_len, entries = _planned(assets, min_security_version, authorized)
    size = _head(4) + len(cbor.encode(BUNDLE_MAGIC)) + len(cbor.encode(FORMAT))
    size += _head(manifest_len) + manifest_len + _head(len(entries))
    for e in entries:
        size += _head(e.chunks)
        full, last = e.chunks - 1, e.length - assets.chunk_size * (e.chunks - 1)
        size += full * (_head(assets.chunk_size + TAG_LEN) + assets.chunk_size + TAG_LEN)
        size += _head(last + TAG_LEN) + last + TAG_LEN
    return manifest_len, size


def planned_layout(
    assets: AssetList, min_security_version: int, authorized: Authorization | None = None
) -> tuple[int, list[list[int]]]:
    """The manifest's exact length and each sealed asset's chunk lengths: where every byte of
    the bundle file goes before the chip seals any (`trustprov.formats.bundle_file`)."""
    manifest_len, entries = _planned(assets, min_security_version, authorized)
    return manifest_len, [chunk_lengths(e, assets.chunk_size) for e in entries]


def _planned(
    assets: AssetList, min_security_version: int, authorized: Authorization | None
) -> tuple[int, tuple[AssetEntry, ...]]:
    entries = tuple(
        _planned_entry(a, assets.aead, assets.chunk_size)
        for a in assets.assets
        if a.kind != "device-key"
    )
    device_keys = tuple(
        DeviceKeySpec(a.name, a.key_type or "", a.slot or 0)
        for a in assets.assets
        if a.kind == "device-key"
    )
    manifest = Manifest(
        family_id=bytes(FAMILY_ID_LEN),
        bundle_id=bytes(BUNDLE_ID_LEN),
        epoch=assets.epoch,
        min_security_version=min_security_version,
        aead=assets.aead,
        chunk_size=assets.chunk_size,
        assets=entries,
        authorized=authorized,
        device_keys=device_keys,
    )
    header = SignedManifest.protected_header(manifest.family_id)
    message = cose.CoseMessage(
        cose.TAG_MAC0,
        cose.encode_protected(header),
        header,
        {},
        manifest.to_payload(),
        bytes(TAG_LEN),
    )
    return len(message.to_bytes()), entries


def check_fits(assets: AssetList, min_security_version: int) -> None:
    """Refuse, before a chip is touched, an asset list whose bundle a chip of the family or
    `cm provision` would refuse (`trustprov.formats.budget`)."""
    try:
        manifest_len, bundle_len = planned_sizes(assets, min_security_version)
        budget.check_bundle(
            manifest_len=manifest_len,
            chunk_size=assets.chunk_size,
            assets=len(assets.assets),
            bundle_len=bundle_len,
        )
    except FormatError as e:
        raise InputError(f"asset list: {e.message}") from e


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
    if chunk_size is None:
        return fit_chunk_size(AssetList(epoch, aead, CHUNK_STEP, min_svn, assets))
    return AssetList(epoch, aead, chunk_size, min_svn, assets)


def fit_chunk_size(assets: AssetList) -> AssetList:
    """``assets`` with the largest chunk size, a multiple of `CHUNK_STEP`, that every chip of
    the family has the RAM to seal and install (`trustprov.formats.budget`): fewer, larger
    chunks are fewer link exchanges at the OEM and at the CM.

    The manifest is planned with chunks of `CHUNK_STEP` (the most chunks, so the longest
    counts), the highest min-security-version and an authorized set, so the size chosen fits
    whatever keygen or regen adds; a list that fits no size keeps `CHUNK_STEP` * 16 and is
    refused by `check_fits` with the reason."""
    at_step = dataclasses.replace(assets, chunk_size=CHUNK_STEP)
    manifest_len, _ = _planned(at_step, 2**32 - 1, Authorization(bytes(32), LIMITS.authorized_uids))
    room = budget.CHIP_RAM - max(
        budget.provisioning_ram(manifest_len, 0), budget.sealing_ram(len(assets.assets), 0)
    )
    steps = min(room // 2, MAX_CHUNK) // CHUNK_STEP
    chunk_size = steps * CHUNK_STEP if steps * CHUNK_STEP >= MIN_CHUNK else 16 * CHUNK_STEP
    return dataclasses.replace(assets, chunk_size=chunk_size)


def _asset(item: Any, base: Path, i: int) -> AssetSpec:
    if not isinstance(item, dict):
        raise FormatError(f"asset {i} must be a table")
    name = _name(item.get("name"), f"asset {i} name")
    what = f"asset {name!r}"
    kind = _typed(item.get("kind"), str, f"{what} kind")
    if kind not in KINDS:
        raise FormatError(f"{what}: kind must be one of {', '.join(KINDS)}")
    if kind in ("key", "generate", "device-key"):
        return _key_asset(item, base, name, kind)
    text = kind == "config"
    _keys(
        item,
        what,
        {"name", "kind", "region"},
        {"hex", "file", "value"} if text else {"hex", "file"},
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
            raise FormatError(f"{what}: {path} must be 1 byte to {MAX_FILE // GiB} GiB")
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
