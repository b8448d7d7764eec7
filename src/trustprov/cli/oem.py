"""`trustprov oem`: the product owner's commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.options import (
    ASSETS_OPTION,
    SEAL_AUTH_OPTION,
    SOFTWARE_OPTION,
    auth_option,
    desk_chip_options,
    force_option,
    icm_key_option,
    json_option,
    parse_uid,
    path_option,
    plural,
)
from trustprov.cli.output import emit_json, say
from trustprov.cli.template import template

if TYPE_CHECKING:
    from trustprov.roles import oem as role

# the roles (and the chip model behind their link) are imported by each command when it runs,
# so that `trustprov oem --help` starts fast (issue 12)

MiB = 1024 * 1024
RECONCILE_PROGRESS_MIN = 64 * MiB  # a receipts file this large shows its progress on stderr


@click.group()
def oem() -> None:
    """The OEM: verify the software, seal assets on the provisioning chip."""


@oem.command("verify-software", short_help="Verify the ICM's signature on the software.")
@inputs(software=expect.SOFTWARE, key=expect.PUBLIC_KEY)
@click.argument("software", type=click.Path(path_type=Path))
@click.option(
    "--key",
    type=click.Path(path_type=Path),
    required=True,
    multiple=True,
    help="K_PUK_ICM_PROV (prov-signing.pub.pem from the ICM); a hybrid takes each of its keys.",
)
@json_option("the verified software's header")
def verify_software(software: Path, key: tuple[Path, ...], as_json: bool) -> None:
    """Verify the ICM's signature on SOFTWARE; exit non-zero unless it verifies."""
    from trustprov.roles import oem as role  # noqa: PLC0415 - lazy: start-up

    sw = role.verify_software(software, key)
    if as_json:
        emit_json(
            {
                "verified": True,
                "software": str(software),
                "name": sw.name,
                "version": sw.version,
                "security_version": sw.security_version,
                "alg": sw.alg,
                "code_sha256": sw.code_digest.hex(),
                "keys": [str(k) for k in key],
            }
        )
        return
    say(
        f"OK: {sw.name} {sw.version}, security version {sw.security_version}, {sw.alg}, "
        f"code sha256 {sw.code_digest.hex()}"
    )


@oem.command(short_help="Make the OEM's keys on its chip, seal a bundle (FIG. 2).")
@inputs(
    farm=expect.FARM,
    ca=expect.CERTIFICATE,
    software=expect.SOFTWARE,
    assets=expect.ASSET_LIST,
    auth=expect.AUTH,
)
@desk_chip_options
@SOFTWARE_OPTION
@ASSETS_OPTION
@path_option("--out", help="OEM_DIR to create (new or empty).")
@SEAL_AUTH_OPTION
@json_option("the bundle made")
def keygen(
    port: str | None,
    ca: Path | None,
    farm: Path | None,
    uid: str | None,
    software: Path,
    assets: Path,
    out: Path,
    auth: Path | None,
    as_json: bool,
) -> None:
    """FIG. 2: make the OEM's keys on its chip and seal the assets into a bundle. The chip is
    the one behind --port (checked against the device CA --ca before it is sent anything), or
    --chip of --farm."""
    from trustprov.roles import oem as role  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.oem import assets as asset_list  # noqa: PLC0415 - lazy: start-up

    result = role.keygen(
        farm,
        parse_uid(uid) if uid is not None else None,
        port=port,
        ca=ca,
        software_path=software,
        assets=asset_list.load(assets),
        out=out,
        auth=auth,
    )
    _report(result, out, as_json=as_json)


@oem.command(short_help="Rebuild the OEM's keys, seal new assets (FIG. 4).")
@inputs(
    farm=expect.FARM,
    ca=expect.CERTIFICATE,
    software=expect.SOFTWARE,
    state=expect.OEM_STATE,
    assets=expect.ASSET_LIST,
    auth=expect.AUTH,
)
@desk_chip_options
@SOFTWARE_OPTION
@path_option("--state", help="OEM_DIR of keygen (ENC(OEM_RND_INPUT), ENC(RND_SHARE)).")
@ASSETS_OPTION
@path_option("--out", help="Directory to create (new or empty).")
@SEAL_AUTH_OPTION
@json_option("the bundle made")
def regen(
    port: str | None,
    ca: Path | None,
    farm: Path | None,
    uid: str | None,
    software: Path,
    state: Path,
    assets: Path,
    out: Path,
    auth: Path | None,
    as_json: bool,
) -> None:
    """FIG. 4: rebuild the same keys and seal new or regenerated assets, on the chip behind
    --port (checked against --ca first) or --chip of --farm."""
    from trustprov.roles import oem as role  # noqa: PLC0415 - lazy: start-up
    from trustprov.roles.oem import assets as asset_list  # noqa: PLC0415 - lazy: start-up

    result = role.regen(
        farm,
        parse_uid(uid) if uid is not None else None,
        port=port,
        ca=ca,
        software_path=software,
        state=state,
        assets=asset_list.load(assets),
        out=out,
        auth=auth,
    )
    _report(result, out, as_json=as_json)


@oem.command(short_help="Authorize the chips of ICM-signed lots (AUTH for keygen and the CM).")
@inputs(lots=expect.LOT_MANIFEST, icm_key=expect.PUBLIC_KEY)
@click.option(
    "--lot",
    "lots",
    type=click.Path(path_type=Path),
    required=True,
    multiple=True,
    help="An ICM lot manifest (LOT_JSON, its signature LOT_JSON.cose beside it); repeatable.",
)
@path_option("--out", help="The AUTH file to write.")
@icm_key_option(
    "The ICM's lot-signing.pub.pem: every lot must be signed by it (recommended; without "
    "it each lot is checked whole under the key its signature names, not that the ICM signed it)."
)
@force_option("AUTH file")
@json_option("the authorized set")
def authorize(
    lots: tuple[Path, ...], out: Path, icm_key: Path | None, force: bool, as_json: bool
) -> None:
    """Verify each lot manifest's ICM signature and write the set of their chips' UIDs (a
    Merkle tree): give it to keygen or regen (--auth) and send it to the CM."""
    from trustprov.roles.oem import authorize as role  # noqa: PLC0415 - lazy: start-up

    s = role.authorize(lots, out, icm_key, force=force)
    if icm_key is None:
        say(
            "warning: no --icm-key: the lots were checked whole and of one signer, not that the "
            "ICM signed them",
            err=True,
        )
    if as_json:
        emit_json(
            {
                "chips": len(s),
                "lots": [str(p) for p in lots],
                "root": s.root.hex(),
                "out": str(out),
                "icm_key_checked": icm_key is not None,
            }
        )
        return
    chips, of = plural(len(s), "chip"), plural(len(lots), "lot")
    say(f"authorized {chips} of {of}, root {s.root.hex()}: {out}")


# `oem template` lives in its own module: it needs no role and no chip
oem.add_command(template)


def _report(result: role.SealResult, out: Path, *, as_json: bool) -> None:
    m = result.manifest
    if as_json:
        emit_json(
            {
                "bundle_id": m.bundle_id.hex(),
                "family": m.family_id.hex(),
                "epoch": m.epoch,
                "assets": [a.name for a in m.assets],
                "authorized": None if m.authorized is None else m.authorized.count,
                "generated_public_keys": sorted(result.public_keys),
                "out": str(out),
            }
        )
        return
    who = "any chip of the family" if m.authorized is None else plural(m.authorized.count, "chip")
    say(f"bundle {m.bundle_id.hex()} (epoch {m.epoch}, {len(m.assets)} assets, for {who}): {out}")


@oem.command(short_help="Reconcile the chips' receipts against the bundle and the order.")
@inputs(
    auth=expect.AUTH,
    ca=expect.CERTIFICATE,
    bundle=expect.BUNDLE,
    receipts=expect.RECEIPTS,
    lots=expect.LOT_MANIFEST,
    icm_key=expect.PUBLIC_KEY,
)
@auth_option(
    "The AUTH file of `oem authorize`: the chips ordered. Without it no receipt is "
    "unauthorized and no chip missing: the count alone is the check."
)
@path_option("--ca", help="The ICM's device CA certificate (PEM or DER).")
@path_option("--bundle", help="The OEM's sealed bundle.")
@path_option("--receipts", help="The receipts of `cm receipts` (CBOR sequence or JSON lines).")
@click.option(
    "--lot",
    "lots",
    type=click.Path(path_type=Path),
    multiple=True,
    help="An ICM lot manifest (LOT_JSON, its signature beside it); repeatable: a receipt whose "
    "signed lot is not its chip's lot there is wrong-lot. Without it no receipt is wrong-lot.",
)
@icm_key_option(
    "The ICM's lot-signing.pub.pem: every --lot must be signed by it [default: each is "
    "checked under the key its signature names]."
)
@json_option("the counts and UIDs")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="Write the valid chips with their per-device public keys to this CSV file.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes [default: the number of cores].",
)
@force_option("--csv file")
def reconcile(
    auth: Path | None,
    ca: Path,
    bundle: Path,
    receipts: Path,
    lots: tuple[Path, ...],
    icm_key: Path | None,
    as_json: bool,
    csv_path: Path | None,
    jobs: int | None,
    force: bool,
) -> None:
    """Verify every receipt (signature, chip certificate to the device CA) and count them:
    valid, duplicate, replayed, unauthorized, wrong lot, forged, wrong bundle, wrong state, and
    the authorized chips missing. Exits 1 on anything but valid receipts and missing chips."""
    import sys  # noqa: PLC0415 - lazy: start-up

    from trustprov.cli.options import EXIT_FAILED  # noqa: PLC0415 - lazy
    from trustprov.cli.output import emit_json, status  # noqa: PLC0415 - lazy
    from trustprov.roles.oem import reconcile as role  # noqa: PLC0415 - lazy: start-up

    shown = [-1]  # the last tenth of the file reported

    def progress(done: int, size: int) -> None:
        tenth = done * 10 // max(size, 1)
        if size >= RECONCILE_PROGRESS_MIN and tenth > shown[0]:
            shown[0] = tenth
            status(f"receipts: {done / MiB:,.0f} of {size / MiB:,.0f} MiB read ({tenth * 10} %)")

    result = role.run(
        auth=auth,
        ca=ca,
        bundle=bundle,
        receipts=receipts,
        jobs=jobs,
        lots=lots,
        icm_key=icm_key,
        on_progress=progress,
    )
    if csv_path is not None:
        from trustprov.roles.files import output_file  # noqa: PLC0415 - lazy: start-up

        with output_file(csv_path, force=force, stdout=True, kind="csv") as f:
            result.write_csv(f)
    if as_json:
        emit_json(result.to_json())
    elif csv_path is None or str(csv_path) != "-":
        c = result.counts
        missing = len(result.missing) if result.authorized is not None else "-"
        ordered = result.authorized if result.authorized is not None else "-"
        say(
            f"{result.receipts} receipts: {c['valid']} valid, {c['duplicate']} duplicate, "
            f"{c['replayed']} replayed, {c['unauthorized']} unauthorized, "
            f"{c['wrong-lot']} wrong lot, {c['forged']} forged, "
            f"{c['wrong-bundle']} wrong bundle, {c['wrong-state']} wrong state; "
            f"{missing} missing of {ordered} authorized"
        )
        for uid in result.missing[:20]:
            say(f"  missing {uid.hex()}")
    if not result.ok:
        sys.exit(EXIT_FAILED)
