"""`trustprov icm`: the chip maker's commands."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from trustprov import __version__
from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.options import (
    emit_json,
    force_option,
    json_option,
    path_option,
    plural,
    records_option,
    records_password_option,
    say,
)
from trustprov.errors import InputError

# the roles and the crypto are imported when a command runs (or, for the algorithm names, when
# --alg is parsed or its help shown), so that `trustprov icm --help` starts fast


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


@icm.command(short_help="Make a lot's chips: in a farm, or blank chips on boards or a port.")
@inputs(farm=expect.FARM)
@path_option("--icm", "icm_dir", help="The ICM directory.")
@click.option(
    "--farm",
    type=click.Path(path_type=Path),
    default=None,
    help="Chip farm file (created if missing): COUNT new chips made in it (a rehearsal).",
)
@click.option(
    "--board",
    "boards",
    multiple=True,
    help="A chip board's handler, tcp://HOST:PORT (repeatable): the blank chips it holds are made.",
)
@click.option(
    "--board-token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file whose first line is the boards' handler token (also from "
    "TRUSTPROV_BOARD_TOKEN): a board listening beyond loopback requires it.",
)
@click.option(
    "--port", default=None, help="The one blank chip behind a port (serial:///dev/X, tcp://...)."
)
@click.option("--lot", required=True, help="Lot name.")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Chips to make (required with --farm) [default with --board: every blank chip].",
)
@path_option("--manifest", help="Where to write the lot manifest (JSON).")
@records_option(
    "The ICM line's records store, sqlite:///PATH or postgresql://USER@HOST/DB "
    "[default with --board/--port: sqlite:///MANIFEST_DIR/icm-records.sqlite]."
)
@records_password_option
@click.option(
    "--station",
    default=None,
    help="This line's name in the records [default: icm-LOT].",
)
@force_option("--manifest file")
@json_option("the lot made")
def manufacture(
    icm_dir: Path,
    farm: Path | None,
    boards: tuple[str, ...],
    board_token_file: Path | None,
    port: str | None,
    lot: str,
    count: int | None,
    manifest: Path,
    records: str | None,
    records_password_file: Path | None,
    station: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Make a lot's chips: burn immutable memory, make identities, issue certificates.

    With --farm, COUNT new chips are made in the farm file. With --board (or --port), the
    blank chips the boards hold (or COUNT of them) are reached over the wire, one at a time:
    burned, their identity made on chip, certified by the device CA (file or token) and given
    their certificate. A chip of another family, or already burned, is recorded and skipped,
    never burned twice. Interrupted (Ctrl-C, a crash, a dead board), the same command resumes:
    a chip's certificate is issued once, and a chip that lost it gets the same one again. The
    lot manifest and its signature are written once the lot is complete.
    """
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up

    if farm is not None and (boards or port):
        raise InputError("--farm and --board/--port exclude each other")
    if farm is None and not boards and port is None:
        raise InputError("give --farm FARM, --board tcp://HOST:PORT or --port ADDRESS")
    if boards and port is not None:
        raise InputError("give --board (one or more) or --port, not both")
    if farm is None:
        _manufacture_wire(
            role.Icm.load(icm_dir),
            boards,
            board_token_file,
            port,
            lot,
            count,
            manifest,
            records,
            records_password_file,
            station,
            force=force,
            as_json=as_json,
        )
        return
    if records is not None or records_password_file is not None or station is not None:
        raise InputError("--records, --records-password-file and --station go with --board/--port")
    if count is None:
        raise InputError("--farm needs --count: how many chips to make")
    _manufacture_farm(role.Icm.load(icm_dir), farm, lot, count, manifest, force, as_json)


def _manufacture_farm(
    icm: Any, farm: Path, lot: str, count: int, manifest: Path, force: bool, as_json: bool
) -> None:
    from trustprov.cli.options import progress_enabled  # noqa: PLC0415 - lazy: start-up
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles import icm as role  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.lots import signature_path  # noqa: PLC0415 - lazy: start-up

    # the role bounds COUNT (MAX_LOT, in roles.icm.manufacturing) and says why
    with LineProgress(enabled=progress_enabled(as_json), label="manufacturing") as progress:
        made = role.manufacture(
            icm, farm, lot, count, manifest, force=force, on_chip=lambda u: progress.made(u, count)
        )
    if as_json:
        emit_json(
            {
                "lot": made.lot,
                "chips": made.count,
                "family": made.family_id.hex(),
                "farm": str(farm),
                "manifest": str(manifest),
                "signature": str(signature_path(manifest)),
            }
        )
        return
    chips = plural(made.count, "chip")
    say(f"lot {made.lot}: {chips} of family {made.family_id.hex()} in {farm}")


def _manufacture_wire(
    icm: Any,
    boards: tuple[str, ...],
    board_token_file: Path | None,
    port: str | None,
    lot: str,
    count: int | None,
    manifest: Path,
    records: str | None,
    records_password_file: Path | None,
    station: str | None,
    *,
    force: bool,
    as_json: bool,
) -> None:
    from trustprov.cli.options import (  # noqa: PLC0415 - lazy: start-up
        EXIT_FAILED,
        progress_enabled,
        read_board_token,
        records_password,
    )
    from trustprov.cli.progress import LineProgress  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.icm_line import manufacture_wire  # noqa: PLC0415 - lazy: start-up

    if board_token_file is not None and not boards:
        raise InputError("--board-token-file goes with --board")
    token = read_board_token(board_token_file, "--board-token-file") if boards else None
    url = records or f"sqlite:///{manifest.resolve().parent / 'icm-records.sqlite'}"
    password = records_password(url, records_password_file)
    with LineProgress(enabled=progress_enabled(as_json), label="manufacturing") as progress:
        total = [count or 0]

        def started(n: int) -> None:
            total[0] = n
            progress.start(n)

        summary = manufacture_wire(
            icm,
            lot,
            manifest,
            records_url=url,
            boards=boards,
            port=port,
            count=count,
            records_password=password,
            board_token=token,
            station=station,
            force=force,
            on_start=started,
            on_chip=lambda uid, _seq: progress.made(uid, total[0]),
        )
    if as_json:
        emit_json(summary.to_json())
    else:
        skipped = sum(summary.skipped.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(summary.skipped.items()))
        extra = f", {skipped} skipped ({reasons})" if skipped else ""
        where = f"manifest {summary.manifest}" if summary.manifest else "no manifest yet"
        say(
            f"lot {summary.lot}: {plural(summary.made, 'chip')} of family {summary.family} made "
            f"({summary.made_now} in this run){extra}; {where}; records: {summary.records}"
        )
    if summary.stopped:
        causes = ", ".join(f"{code}: {n}" for code, n in sorted(summary.failed.items()))
        why = f" ({causes})" if causes else ""
        say(f"error: {summary.stopped}{why}; rerun the same command to resume", err=True)
        sys.exit(EXIT_FAILED)


@icm.command(short_help="Report a lot of the ICM's line from its records.")
@records_option(
    "The ICM line's records store, sqlite:///PATH or postgresql://USER@HOST/DB.", required=True
)
@records_password_option
@click.option("--lot", default=None, help="Lot to report [default: the only lot].")
@json_option("the report")
def report(
    records: str, records_password_file: Path | None, lot: str | None, as_json: bool
) -> None:
    """A lot of `icm manufacture --board/--port`: chips made, in progress, skipped and failed
    (by reason)."""
    from trustprov.cli.options import records_password  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records import RecordStore  # noqa: PLC0415 - lazy: start-up
    from trustprov.line.records.icm_chips import IcmRecords  # noqa: PLC0415 - lazy: start-up

    password = records_password(records, records_password_file)
    with RecordStore(records, create=False, read_only=True, password=password) as store:
        rows = IcmRecords(store, "report")
        lots = rows.lots()
        if lot is None:
            if len(lots) != 1:
                known = ", ".join(lots[:10]) or "none"
                raise InputError(f"give --lot: the records hold {len(lots)} lots ({known})")
            lot = lots[0]
        elif lot not in lots:
            raise InputError(f"no lot {lot!r} of the ICM's line in the records at {store.url}")
        counts = rows.counts(lot)
        reasons = rows.reasons(lot)
        url = store.url
    made = counts.get("made", 0)
    doc = {
        "lot": lot,
        "records": url,
        "made": made,
        "in_progress": counts.get("started", 0),
        "skipped": reasons["skipped"],
        "failed": reasons["failed"],
    }
    if as_json:
        emit_json(doc)
        return
    say(
        f"lot {lot}: {plural(made, 'chip')} made, {doc['in_progress']} in progress, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('failed', 0)} failed; records: {url}"
    )
    for state in ("skipped", "failed"):
        for reason, n in sorted(reasons[state].items()):
            say(f"  {state} {reason}: {n}")


def _version(value: str) -> str:
    """--version as the signed header takes it: a bad one is bad input, before any work."""
    from trustprov.errors import FormatError, InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.cbor import expect_name  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - lazy: start-up

    try:
        return expect_name(value, "--version", LIMITS.name)
    except FormatError as e:
        raise InputError(e.message) from e


def _read_code(path: Path) -> bytes:
    """--code: the firmware image, refused by its size before it is read (a signed image is at
    most 4 MiB, section 1)."""
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.limits import LIMITS  # noqa: PLC0415 - lazy: start-up

    size = path.stat().st_size
    if not 0 < size <= LIMITS.software:
        raise InputError(
            f"--code {path}: a firmware image is 1 to {LIMITS.software} bytes, not {size}"
        )
    return path.read_bytes()
