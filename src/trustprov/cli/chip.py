"""`trustprov chip`: look at one chip, through its link like any host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustprov.cli.options import emit_json, parse_uid, path_option
from trustprov.cli.serve import serve
from trustprov.link.farm import FarmLink


@click.group()
def chip() -> None:
    """Inspect chips; serve them on a board."""


chip.add_command(serve)


def _view(status: dict[str, Any], certificate: bytes | None) -> dict[str, Any]:
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
            "key_slots": {
                str(n): {"asset": s["asset"], "key_type": s["key-type"], "value": "<redacted>"}
                for n, s in sorted(inst["slots"].items())
            },
            "flash_regions": {
                n: {"asset": r["asset"], "length": r["length"], "content": "<redacted>"}
                for n, r in sorted(inst["regions"].items())
            },
        }
    return view


@chip.command()
@path_option("--farm", help="The chip farm.")
@click.option("--chip", "uid", required=True, help="Chip UID (hex).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(farm: Path, uid: str, as_json: bool) -> None:
    """Show a chip's lifecycle, identity and what it holds (secrets redacted)."""
    with FarmLink(farm) as f, f.connect(parse_uid(uid)) as c:
        view = _view(c.status(), c.certificate())
    if as_json:
        emit_json(view)
        return
    click.echo(f"chip {view['uid']}  lot {view['lot']}  family {view['family']}")
    click.echo(f"lifecycle {view['lifecycle']}  security counter {view['security_counter']}")
    inst = view["installed"]
    if inst:
        click.echo(
            f"OEM domain {inst['domain_id']}  bundle {inst['bundle_id']}  epoch {inst['epoch']}"
        )
        for n, s in inst["key_slots"].items():
            click.echo(f"  slot {n}: {s['asset']} ({s['key_type']})")
        for n, r in inst["flash_regions"].items():
            click.echo(f"  region {n}: {r['asset']} ({r['length']} bytes)")
    if view["certificate"]:
        click.echo(view["certificate"].rstrip())
