"""The boot ROM's check of a software image, before the chip runs it (`Chip.boot`).

`verify_image` returns the parsed image only if
1. the image parses as signed provisioning software,
2. it is signed with exactly the suite its immutable K_PUK_ICM_PROV names (one algorithm, or every
   signature of a hybrid: a stripped, swapped or downgraded set is refused), and every signature
   verifies under its immutable key,
3. the code it signs is the code the chip is about to run, and
4. its security version is not below the chip's OTP counter;
otherwise it raises `ChipRefused` (``bad-software``, ``bad-signature``, ``code-mismatch``,
``rollback``). Invariants: it reads and writes no chip state (advancing the counter is the
caller's commit); what it caches (the last image's parse, public keys, the code digest) is
immutable, and the signature is verified at every call.
"""

from __future__ import annotations

import functools
from pathlib import Path

from trustprov.crypto.digest import sha256
from trustprov.crypto.keys import PublicKey, load_public_key
from trustprov.errors import ArtifactError, ChipRefused
from trustprov.formats.immutable import ImmutableMemory
from trustprov.formats.software import CODE_ROOT, SignedSoftware, code_archive


@functools.cache
def measured_code_digest(root: Path = CODE_ROOT) -> bytes:
    """SHA-256 of the code archive of the software this chip model executes."""
    return sha256(code_archive(root))


@functools.lru_cache(maxsize=16)
def _rom_public_key(spki_der: bytes) -> PublicKey:
    return load_public_key(spki_der)


_booted: tuple[bytes, SignedSoftware] | None = None  # see `_parse_image`


def _parse_image(image: bytes) -> SignedSoftware:
    """`SignedSoftware.from_bytes` of the boot ROM (step 1). A lot boots one image chip after
    chip: the last image parsed in this process is kept with its parse and recognized by
    comparing the bytes, a memcmp far below a parse. The parse is immutable; its signature
    (step 2) is verified at every boot."""
    global _booted  # noqa: PLW0603 - one image at a time, per process
    last = _booted
    if last is not None and last[0] == image:
        return last[1]
    software = SignedSoftware.from_bytes(image, check_code=False)
    _booted = (image, software)
    return software


def verify_image(
    image: bytes, mem: ImmutableMemory, security_counter: int, code_root: Path = CODE_ROOT
) -> SignedSoftware:
    """Steps 1 to 4 of the module's docstring for a chip with immutable memory ``mem`` and
    OTP counter ``security_counter``, running the code under ``code_root``."""
    try:  # 1.
        # the payload is not hashed on its own: the signature (2.) covers it, and "tp-code"
        # is compared with the code this chip runs (3.)
        software = _parse_image(image)
    except ArtifactError as e:
        raise ChipRefused(f"boot refused: {e.message}", code="bad-software") from e
    try:  # 2.
        keys = [_rom_public_key(k) for k in mem.software_keys]
        software.verify(keys, suite=mem.software_suite)
    except ArtifactError as e:
        raise ChipRefused("boot refused: software signature", code="bad-signature") from e
    if software.code_digest != measured_code_digest(code_root):  # 3.
        raise ChipRefused(
            "boot refused: code does not match the signed image", code="code-mismatch"
        )
    if software.security_version < security_counter:  # 4.
        raise ChipRefused(
            f"boot refused: security version {software.security_version} is below the "
            f"chip's counter {security_counter}",
            code="rollback",
        )
    return software
