"""`trustprov icm`: the chip maker's commands. `icm init` (the family) and `icm sign-software`
are here; `icm manufacture` and `icm report` (a lot of chips) are in `cli/icm_lot.py`.

Invariants:
- The roles and the crypto are imported when a command runs (or, for the algorithm names, when
  --alg is parsed or its help shown), so that `trustprov icm --help` starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from trustprov import __version__
from trustprov.cli.icm_lot import manufacture, report
from trustprov.cli.options import force_option, json_option, path_option
from trustprov.cli.output import emit_json, say
from trustprov.errors import InputError


class _Algorithms(click.Choice):  # type: ignore[type-arg]  # click 8.2 made Choice generic
    """The signature suites of crypto.keys, looked up on first use."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]  # a computed stand-in for Choice's attribute
    def choices(self) -> Sequence[Any]:
        from trustprov.crypto.keys import SUITES  # noqa: PLC0415 - lazy

        return list(SUITES)

    @choices.setter
    def choices(self, _value: Sequence[Any]) -> None:
        """Choice.__init__ assigns the list; the property computes it instead."""


ALGS = _Algorithms()


@click.group(short_help="The IC manufacturer: family secrets, signing, chips.")
def icm() -> None:
    """The IC manufacturer: family secrets, software signing, manufacturing."""


@icm.command()
@click.argument("icm_dir", type=click.Path(path_type=Path))
@click.option(
    "--alg",
    type=ALGS,
    default="ES256",
    show_default=True,
    help="Software signature algorithm; ES256+ML-DSA-65 signs with both (hybrid).",
)
@click.option(
    "--keys",
    metavar="PKCS11_URI",
    default=None,
    help="Make the keys inside this PKCS#11 token (pkcs11:token=...?module-path=...; the PIN "
    "from pin-source=file:..., TRUSTPROV_PKCS11_PIN or a prompt) [default: files in ICM_DIR].",
)
@json_option("the family made")
def init(icm_dir: Path, alg: str, keys: str | None, as_json: bool) -> None:
    """Create a chip family in ICM_DIR (a new or empty directory)."""
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up

    made = role.init(icm_dir, alg=alg, keys=keys)
    where = "the PKCS#11 token" if keys else "files"
    if as_json:
        emit_json(
            {
                "family": made.family_id.hex(),
                "icm_dir": str(icm_dir),
                "alg": alg,
                "keys": "pkcs11" if keys else "files",
                "prov_signing_pub": str(icm_dir / "prov-signing.pub.pem"),
                "device_ca": str(icm_dir / "device-ca.pem"),
            }
        )
        return
    say(
        f"family {made.family_id.hex()}: wrote {icm_dir} ({alg} signing key, device CA; "
        f"keys in {where})"
    )


@icm.command("sign-software")
@path_option("--icm", "icm_dir", help="The ICM directory.")
@path_option("--out", help="Where to write the signed software (COSE_Sign1; COSE_Sign if hybrid).")
@click.option(
    "--version",
    default=__version__,
    show_default=True,
    callback=lambda _ctx, _param, v: _version(v),
    help="Version string (printable, 1 to 64 bytes).",
)
@click.option("--security-version", type=click.IntRange(0, 2**32 - 1), default=1, show_default=True)
@click.option("--alg", type=ALGS, default=None, help="Signature algorithm [default: the ICM's].")
@click.option(
    "--code",
    "code_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A port's firmware image to sign as the software [default: trustprov's own code].",
)
@force_option("--out file")
@json_option("what was signed")
def sign_software(
    icm_dir: Path,
    out: Path,
    version: str,
    security_version: int,
    alg: str | None,
    code_file: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Sign the provisioning software with K_PRK_ICM_PROV.

    What is signed (COSE_Sign1): the software's code, a canonical archive of the firmware and
    the libraries it runs with on a chip (trustprov's errors, crypto, formats and firmware
    sources, as installed here), with its name, --version, --security-version and the SHA-256
    of that code in the protected header. A chip boots the image only if the signature verifies
    under its immutable K_PUK_ICM_PROV, the code is the code it runs, and the security version
    is not below its counter. Send the image to the OEM and the CM, and prov-signing.pub.pem to
    the OEM so that it can check it (oem verify-software).

    With --code FILE the software is a port's firmware image (docs/protocol.md 5.3): FILE's bytes
    are the payload, their SHA-256 the code digest, and a chip boots the image only if it runs
    exactly that firmware.
    """
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up

    sw = role.sign_software(
        role.Icm.load(icm_dir),
        out,
        version=version,
        security_version=security_version,
        alg=alg,
        code=_read_code(code_file) if code_file is not None else None,
        force=force,
    )
    if as_json:
        emit_json(
            {
                "name": sw.name,
                "version": sw.version,
                "security_version": sw.security_version,
                "alg": sw.alg,
                "code_sha256": sw.code_digest.hex(),
                "out": str(out),
            }
        )
        return
    say(
        f"signed {sw.name} {sw.version} (security version {sw.security_version}, {sw.alg}, "
        f"code {sw.code_digest.hex()[:16]}): {out}"
    )


def _version(value: str) -> str:
    """--version as the signed header takes it: a bad one is bad input, before any work."""
    from trustprov.errors import FormatError  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.cbor import expect_name  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - lazy: start-up

    try:
        return expect_name(value, "--version", LIMITS.name)
    except FormatError as e:
        raise InputError(e.message) from e


def _read_code(path: Path) -> bytes:
    """--code: the firmware image, refused by its size before it is read (a signed image is at
    most 4 MiB, section 1)."""
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - lazy: start-up

    size = path.stat().st_size
    if not 0 < size <= LIMITS.software:
        raise InputError(
            f"--code {path}: a firmware image is 1 to {LIMITS.software} bytes, not {size}"
        )
    return path.read_bytes()


icm.add_command(manufacture)
icm.add_command(report)
