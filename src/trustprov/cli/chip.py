"""`trustprov chip`: look at one chip, through its link like any host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trustprov.cli import artifacts as expect
from trustprov.cli.artifacts import inputs
from trustprov.cli.conformance import conformance
from trustprov.cli.options import parse_uid, path_option, plural
from trustprov.cli.output import emit_json, say
from trustprov.cli.serve import blank, export, run, serve


@click.group()
def chip() -> None:
    """Inspect, make, serve and run chips.

    Show a chip or a lot; make blank chips (the fab); serve chips on a board, or run one virtual
    chip as a program on its standard input and output."""


chip.add_command(serve)
chip.add_command(run)
chip.add_command(blank)
chip.add_command(export)
chip.add_command(conformance)


def _view(status: dict[str, Any], certificate: bytes | None) -> dict[str, Any]:
    from cryptography import x509  # noqa: PLC0415 - lazy: start-up
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - lazy: start-up

    view: dict[str, Any] = {
        "uid": status["uid"].hex(),
        "lot": status["lot"],
        "family": status["family"].hex() if status.get("family") else None,
        "lifecycle": status["lifecycle"],
        "security_counter": status["security-counter"],
        "certificate": x509.load_der_x509_certificate(certificate)
        .public_bytes(serialization.Encoding.PEM)
        .decode()
        if certificate
        else None,
        "installed": None,
    }
    inst = status.get("installed")
    if inst:
        view["installed"] = {
            "domain_id": inst["domain-id"].hex(),
            "bundle_id": inst["bundle-id"].hex(),
            "epoch": inst["epoch"],
            "digest": status["installed-digest"].hex(),  # public: tells two holdings apart
            "key_slots": {
                str(n): {
                    "asset": s["asset"],
                    "key_type": s["key-type"],
                    "value": "<redacted>",
                    "public_key": _pem(s.get("public-key")),
                }
                for n, s in sorted(inst["slots"].items())
            },
            "flash_regions": {
                n: {
                    "asset": r["asset"],
                    "length": r["length"],
                    "content": "<redacted>",
                    "sha256": r["sha256"].hex() if r.get("sha256") else None,
                }
                for n, r in sorted(inst["regions"].items())
            },
        }
    return view


def _pem(spki_der: bytes | None) -> str | None:
    if spki_der is None:
        return None
    from trustprov.crypto.keys import load_public_key, public_key_pem  # noqa: PLC0415 - lazy

    return public_key_pem(load_public_key(spki_der)).decode("ascii")


@chip.command(short_help="Show a chip, or the chips of a lot (secrets redacted).")
@inputs(farm=expect.FARM)
@path_option("--farm", help="The chip farm.")
@click.option("--chip", "uid", default=None, help="Chip UID (hex).")
@click.option("--lot", default=None, help="List the chips of this lot instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(farm: Path, uid: str | None, lot: str | None, as_json: bool) -> None:
    """Show a chip's lifecycle, identity and what it holds (secrets redacted), or with --lot
    the chips of a lot and their lifecycles.

    For a chip: each flash region's SHA-256 (compare it with `sha256sum` of your image) and the
    public key of each asymmetric key slot, as the chip reports them; never a key or content.
    """
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up
    from trustprov.link.farm_link import FarmLink  # noqa: PLC0415 - lazy: start-up

    if (uid is None) == (lot is None):
        raise InputError("give exactly one of --chip UID and --lot LOT")
    if lot is not None:
        _show_lot(FarmLink, farm, lot, as_json)
        return
    with FarmLink(farm, read_only=True) as f, f.connect(parse_uid(uid)) as c:  # type: ignore[arg-type]  # checked above
        view = _view(c.status(digests=True), c.certificate())
    if as_json:
        emit_json(view)
        return
    say(f"chip {view['uid']}  lot {view['lot']}  family {view['family']}")
    say(f"lifecycle {view['lifecycle']}  security counter {view['security_counter']}")
    inst = view["installed"]
    if inst:
        say(f"OEM domain {inst['domain_id']}  bundle {inst['bundle_id']}  epoch {inst['epoch']}")
        say(f"installed digest {inst['digest']}")
        for n, s in inst["key_slots"].items():
            say(f"  slot {n}: {s['asset']} ({s['key_type']})")
            if s["public_key"]:
                for line in s["public_key"].rstrip().splitlines():
                    say(f"    {line}")
        for n, r in inst["flash_regions"].items():
            digest = f", sha256 {r['sha256']}" if r["sha256"] else ""
            say(f"  region {n}: {r['asset']} ({r['length']} bytes{digest})")
    if view["certificate"]:
        for line in view["certificate"].rstrip().splitlines():
            say(line)


def _show_lot(farm_link: Any, farm: Path, lot: str, as_json: bool) -> None:
    from trustprov.errors import InputError  # noqa: PLC0415 - lazy: start-up

    with farm_link(farm, read_only=True) as f:
        if lot not in f.lots():
            raise InputError(f"no lot {lot!r} in {farm}")
        chips = []
        for uid in f.uids(lot):
            with f.connect(uid) as c:
                chips.append({"uid": uid.hex(), "lifecycle": c.status()["lifecycle"]})
    if as_json:
        emit_json({"lot": lot, "chips": chips})
        return
    say(f"lot {lot}: {plural(len(chips), 'chip')}")
    for c in chips:
        say(f"  {c['uid']}  {c['lifecycle']}")
