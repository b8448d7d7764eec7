"""The provisioning software signed with the family's software signing key(s) (K_PRK_ICM_PROV).

Invariants:
- Only the family's own suite is signed: an image signed with another would boot on none of its
  chips, so another ``alg`` is refused with what the family's keys are.
- An image is never larger than a chip's boot ROM parses (``LIMITS.software``): refused before
  it is written, as is a firmware image outside 1..``LIMITS.software`` bytes.
- The output is checked before any work and replaced only with ``force``, and only a regular
  file (`check_output`).
"""

from __future__ import annotations

from pathlib import Path

from trustprov import __version__
from trustprov.crypto.keys import (
    SIGNATURE_ALGORITHMS,
    SUITES,
    key_type_of,
)
from trustprov.errors import InputError
from trustprov.formats.limits import LIMITS
from trustprov.formats.software import CODE_ROOT, SignedSoftware, code_archive
from trustprov.roles.files import (
    check_output,
    write_file,
)
from trustprov.roles.icm.family import Icm, unknown_alg

SOFTWARE_NAME = "trustprov-provisioning"


def sign_software(
    icm: Icm,
    out: Path,
    *,
    version: str = __version__,
    security_version: int = 1,
    alg: str | None = None,
    code_root: Path = CODE_ROOT,
    code: bytes | None = None,
    force: bool = False,
) -> SignedSoftware:
    """Sign the provisioning software's code with K_PRK_ICM_PROV (every key of a hybrid);
    ``out`` is replaced only with ``force``, and only if it is a regular file.

    ``code`` is a port's firmware image (docs/protocol.md 5.3), signed as it is: its SHA-256 is
    ``tp-code``. Without it, the code archive under ``code_root`` (the virtual chip's code)."""
    check_output(out, force=force, kind="software")  # before the work, so a refusal costs nothing
    if code is not None and not 0 < len(code) <= LIMITS.software:
        raise InputError(f"a firmware image is 1 to {LIMITS.software} bytes, not {len(code)}")
    alg = alg or icm.alg
    if alg not in SUITES:
        raise unknown_alg(alg)
    if alg != icm.alg:  # its chips verify exactly the family's suite: nothing else would boot
        needed = "+".join(SIGNATURE_ALGORITHMS[a].key_type for a in SUITES[alg])
        have = "+".join(key_type_of(k) for k in icm.signing_keys)
        raise InputError(
            f"{alg} needs a {needed} signing key; this ICM's is {have} "
            f"(made by 'icm init --alg {icm.alg}')"
        )
    if not 0 <= security_version < 2**32:
        raise InputError("security version must be 0..2^32-1")
    software = SignedSoftware.sign(
        icm.signing_keys,
        alg=alg,
        name=SOFTWARE_NAME,
        version=version,
        security_version=security_version,
        code=code_archive(code_root) if code is None else code,
    )
    image = software.to_bytes()
    if len(image) > LIMITS.software:  # what a chip's boot ROM parses at most (section 1)
        raise InputError(
            f"the signed image would be {len(image)} bytes, above the {LIMITS.software} a chip "
            "takes: the firmware image is too large"
        )
    write_file(out, image, force=force, kind="software")
    return software
