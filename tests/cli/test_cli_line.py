"""`trustprov line dashboard`'s bad input, and `cm report --html` (the audit report file)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from html import unescape
from pathlib import Path

import pytest

import trustprov
from trustprov.link.farm_link import FarmLink

from .conftest import CM_CHIPS, CliWorld
from .helpers import assert_error, ok, run


def _provisioned_with_a_failure(cw: CliWorld, tmp_path: Path) -> str:
    farm = cw.fresh_farm(tmp_path)
    with FarmLink(farm) as f:
        f.add_blank(bytes(range(16)), cw.a.cm_lot)  # a chip of no family: it fails
    argv = ["cm", "provision", "--farm", farm, "--lot", cw.a.cm_lot, "--software", cw.a.software]
    argv += ["--share", cw.a.share, "--bundle", cw.a.bundle, "--station", "line-1"]
    assert run(*argv).exit_code == 1
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


def test_dashboard_bad_input_is_one_line(cw: CliWorld, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'none.sqlite'}"
    assert_error(run("line", "dashboard", "--records", missing), exit_code=2, match="no records")
    assert not (tmp_path / "none.sqlite").exists()  # read-only: nothing created
    url = _provisioned_with_a_failure(cw, tmp_path)
    assert_error(run("line", "dashboard", "--records", url, "--listen", "8080"), exit_code=2)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUSTPROV_DASHBOARD_TOKEN", "short")
        assert_error(
            run("line", "dashboard", "--records", url), exit_code=2, match="at least 16 characters"
        )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_error(
            run("line", "dashboard", "--records", url, "--listen", f"127.0.0.1:{port}"),
            exit_code=2,
            match="cannot listen",
        )


def test_report_html(cw: CliWorld, tmp_path: Path) -> None:
    url = _provisioned_with_a_failure(cw, tmp_path)
    doc = json.loads(ok("cm", "report", "--records", url, "--json").stdout)
    out = tmp_path / "audit.html"
    text = ok("cm", "report", "--records", url, "--html", out).stdout
    assert "audit report written to" in text
    html = out.read_text(encoding="utf-8")
    counts = dict(re.findall(r'<td data-count="([a-z_]+)">([^<]*)</td>', html))
    for key in ("chips", "provisioned", "already_provisioned", "failed", "pending", "in_progress"):
        assert counts[key] == str(doc[key]), key
    assert counts["yield_percent"] == f"{doc['yield_percent']} %"
    (code,) = doc["failures"]
    assert code in html  # the cause, in the chart and the table of latest failures
    assert bytes(range(16)).hex() in html  # the failed chip
    # the existing output rules: no silent replacement, nothing but a regular file
    assert_error(run("cm", "report", "--records", url, "--html", out), exit_code=2, match="exists")
    ok("cm", "report", "--records", url, "--html", out, "--force")
    assert_error(run("cm", "report", "--records", url, "--html", tmp_path), exit_code=2)
    missing_dir = tmp_path / "no" / "audit.html"
    assert_error(run("cm", "report", "--records", url, "--html", missing_dir), exit_code=2)


def _provenance(html: str) -> dict[str, str]:
    return {
        k: unescape(v) for k, v in re.findall(r'<dd data-provenance="(\w+)">([^<]*)</dd>', html)
    }


def test_report_html_says_what_was_provisioned_with_what(cw: CliWorld, tmp_path: Path) -> None:
    """Provenance from the records, the stored receipts and the bundle file; the receipts
    reconciled under the device CA; the file's SHA-256 printed beside it, as sha256sum does."""
    url = f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"
    doc = json.loads(ok("cm", "report", "--records", url, "--json").stdout)
    out = tmp_path / "audit.html"
    ca = cw.a.icm / "device-ca.pem"
    argv = ["cm", "report", "--records", url, "--html", out, "--bundle", cw.a.bundle, "--ca", ca]
    text = ok(*argv).stdout
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"{digest}  {out}" in text.splitlines()
    p = _provenance(out.read_text(encoding="utf-8"))
    assert p["software"].startswith("trustprov-provisioning ")
    assert p["security_version"] == "1"
    assert p["bundle_id"] == doc["bundle_id"]
    assert p["epoch"] == "1"
    assert p["authorized"] == "any chip of the family (no authorized set)"
    assert p["trustprov_version"] == trustprov.__version__
    assert p["stations"] == ", ".join(doc["stations"])
    assert p["first_chip"] != "-"
    assert p["last_chip"] >= p["first_chip"]
    assert p["reconciliation"].startswith(f"{CM_CHIPS} valid, 0 duplicate")
    # --json names the file and its digest too
    again = ok(*argv, "--force", "--json").stdout
    html = json.loads(again)["html"]
    assert html == {"path": str(out), "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def test_report_html_without_a_bundle_file_or_a_ca(cw: CliWorld, tmp_path: Path) -> None:
    url = f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"
    out = tmp_path / "audit.html"
    ok("cm", "report", "--records", url, "--html", out)
    p = _provenance(out.read_text(encoding="utf-8"))
    assert p["epoch"] == "1"  # as the receipts state it
    assert p["authorized"] == "not given (cm report --bundle FILE)"
    assert p["reconciliation"] == "not reconciled (cm report --ca)"
    ca = cw.a.icm / "device-ca.pem"
    auth = tmp_path / "auth.cbor"
    lot_key = cw.a.icm / "lot-signing.pub.pem"
    ok("oem", "authorize", "--lot", cw.a.lot_json, "--out", auth, "--icm-key", lot_key)
    for argv, match in (
        (["--html", tmp_path / "b.html", "--ca", ca], "--bundle FILE"),
        (["--ca", ca, "--bundle", cw.a.bundle], "--html FILE"),
        (["--html", tmp_path / "c.html", "--auth", auth], "--ca DEVICE_CA"),
    ):
        assert_error(run("cm", "report", "--records", url, *argv), exit_code=2, match=match)
    assert not (tmp_path / "b.html").exists()
    # with the authorized set: the chips ordered and missing are counted too
    argv = ["--html", out, "--force", "--bundle", cw.a.bundle, "--ca", ca, "--auth", auth]
    ok("cm", "report", "--records", url, *argv)
    counts = _provenance(out.read_text(encoding="utf-8"))["reconciliation"]
    assert counts.startswith(f"{CM_CHIPS} valid, ")
    assert counts.endswith(
        "0 unauthorized, 0 wrong-lot, 0 forged, 0 wrong-bundle, 0 wrong-state, 0 missing"
    )
