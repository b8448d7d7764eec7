"""Every output of the CLI: never a silent replace, never through a symlink or onto a device.

An existing regular file is replaced only with --force; a symlink, a FIFO, a device or a directory
is never replaced, --force or not; ``-`` is standard output where docs/cli.md says so; files that
hold secrets are 0600.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliWorld
from .helpers import assert_error, ok, run, snapshot

Argv = list[str | Path]


def _sign_software(cw: CliWorld, _tmp: Path, out: Path) -> Argv:
    return ["icm", "sign-software", "--icm", cw.a.icm, "--out", out]


def _manufacture(cw: CliWorld, tmp: Path, out: Path, farm: Path | None = None) -> Argv:
    farm = farm or tmp / "made.farm"
    argv: Argv = ["icm", "manufacture", "--icm", cw.a.icm, "--farm", farm, "--lot", "L"]
    return [*argv, "--count", "1", "--manifest", out]


def _report_csv(cw: CliWorld, tmp: Path, out: Path) -> Argv:
    records = cw.provisioned_farm.parent / "records.sqlite"
    return ["cm", "report", "--records", f"sqlite:///{records}", "--csv", out]


OUTPUTS: dict[str, Callable[[CliWorld, Path, Path], Argv]] = {
    "sign-software --out": _sign_software,
    "manufacture --manifest": _manufacture,
    "report --csv": _report_csv,
}


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_an_output_never_replaces_a_file_without_force(
    cw: CliWorld, tmp_path: Path, output: str
) -> None:
    out = tmp_path / "existing"
    out.write_bytes(b"precious")
    assert_error(run(*OUTPUTS[output](cw, tmp_path, out)), exit_code=2, match="--force")
    assert out.read_bytes() == b"precious"
    assert not (tmp_path / "made.farm").exists()  # refused before any chip is made
    ok(*OUTPUTS[output](cw, tmp_path, out), "--force")
    assert out.read_bytes() != b"precious"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # public: software, lot manifest, CSV


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("force", [False, True])
def test_an_output_never_replaces_a_symlink_or_a_fifo(
    cw: CliWorld, tmp_path: Path, output: str, force: bool
) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    link, fifo = tmp_path / "link", tmp_path / "fifo"
    link.symlink_to(target)
    os.mkfifo(fifo)
    flags = ["--force"] if force else []
    for out, kind in ((link, "symbolic link"), (fifo, "FIFO")):
        assert_error(run(*OUTPUTS[output](cw, tmp_path, out), *flags), exit_code=2, match=kind)
    assert link.is_symlink()
    assert target.read_bytes() == b"precious"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_sign_software_pointed_at_the_family_secrets_keeps_them(cw: CliWorld) -> None:
    """The typo of issue 11: --out at the ICM's own secrets."""
    for name in ("family-secrets.cbor", "prov-signing.key.pem"):
        before = snapshot(cw.a.icm)
        result = run("icm", "sign-software", "--icm", cw.a.icm, "--out", cw.a.icm / name)
        assert_error(result, exit_code=2, match="refusing to replace")
        assert snapshot(cw.a.icm) == before


def test_report_csv_never_turns_a_device_into_a_file(cw: CliWorld, tmp_path: Path) -> None:
    """As root, --csv /dev/stdout once replaced the device node with a regular file."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        pytest.skip("cannot make a device node here")
    for flags in ([], ["--force"]):
        result = run(*_report_csv(cw, tmp_path, device), *flags)
        assert_error(result, exit_code=2, match="character device")
        assert stat.S_ISCHR(device.lstat().st_mode)


def test_report_csv_dash_writes_the_csv_to_stdout(cw: CliWorld) -> None:
    records = cw.provisioned_farm.parent / "records.sqlite"
    result = ok("cm", "report", "--records", f"sqlite:///{records}", "--csv", "-")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("uid,")
    assert len(lines) == 1 + len(cw.a.cm_uids)  # the CSV alone, one row per chip
    assert not Path("-").exists()


def test_report_csv_dash_and_json_are_refused_together(cw: CliWorld) -> None:
    records = cw.provisioned_farm.parent / "records.sqlite"
    result = run("cm", "report", "--records", f"sqlite:///{records}", "--csv", "-", "--json")
    assert_error(result, exit_code=2, match="standard output")
    assert result.stdout == ""


def test_a_new_farm_is_private(cw: CliWorld, tmp_path: Path) -> None:
    """The farm holds every chip's immutable memory: 0600 from its first byte."""
    farm = tmp_path / "new.farm"
    ok(*_manufacture(cw, tmp_path, tmp_path / "lot.json", farm))
    assert stat.S_IMODE(farm.stat().st_mode) == 0o600


def test_manufacture_never_writes_a_farm_through_a_symlink(cw: CliWorld, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.farm"
    link = tmp_path / "link.farm_link"
    link.symlink_to(target)
    result = run(*_manufacture(cw, tmp_path, tmp_path / "lot.json", link))
    assert_error(result, exit_code=2, match="symbolic link")
    assert not target.exists()
    assert not (tmp_path / "lot.json").exists()


@pytest.mark.parametrize("command", ["icm init", "oem keygen"])
def test_a_directory_output_never_goes_through_a_symlink(
    cw: CliWorld, tmp_path: Path, command: str
) -> None:
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    if command == "icm init":
        argv: Argv = ["icm", "init", link]
    else:
        argv = ["oem", "keygen", "--farm", cw.a.oem_farm, "--chip", cw.a.oem_uid]
        argv += ["--software", cw.a.software, "--assets", cw.assets_toml, "--out", link]
    assert_error(run(*argv), exit_code=2, match="symbolic link")
    assert link.is_symlink()
    assert list(target.iterdir()) == []


def _private_copy(src: Path, dest: Path) -> Path:
    """A copy of ``src`` keeping each file's mode (the world is read-only)."""
    shutil.copytree(src, dest)
    return dest


@pytest.mark.parametrize(
    "argv",
    [
        # issue 24: each turned a secret into a world-readable artifact with --force
        ["icm", "sign-software", "--icm", "{icm}", "--out", "{icm}/family-secrets.cbor"],
        [
            *["icm", "manufacture", "--icm", "{icm}", "--farm", "{tmp}/made.farm", "--lot", "L"],
            *["--count", "1", "--manifest", "{icm}/prov-signing.key.pem"],
        ],
        ["cm", "report", "--records", "{records}", "--csv", "{oem}/enc-rnd-share.cose"],
    ],
    ids=["sign-software-over-family-secrets", "manufacture-over-a-key", "report-over-a-share"],
)
def test_force_never_replaces_a_secret(cw: CliWorld, tmp_path: Path, argv: list[str]) -> None:
    icm = _private_copy(cw.a.icm, tmp_path / "icm")
    oem = _private_copy(cw.a.oem_dir, tmp_path / "oem")
    records = cw.provisioned_farm.parent / "records.sqlite"
    values = {"icm": icm, "oem": oem, "tmp": tmp_path, "records": f"sqlite:///{records}"}
    filled = [a.format(**values) for a in argv]
    before = snapshot(icm), snapshot(oem)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for d in (icm, oem) for p in d.rglob("*")}
    result = run(*filled, "--force")
    assert_error(result, exit_code=2, match="a secret; refusing to replace it, even with --force")
    assert (snapshot(icm), snapshot(oem)) == before
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in modes} == modes
    assert not (tmp_path / "made.farm").exists()  # refused before any chip is made


def test_force_never_replaces_another_artifact(cw: CliWorld, tmp_path: Path) -> None:
    """Signed software over a lot manifest, a lot manifest over signed software, receipts over
    a certificate: each is another artifact, kept whatever --force says."""
    lot_json = tmp_path / "lot.json"
    shutil.copy(cw.a.lot_json, lot_json)
    software = tmp_path / "software.cose"
    shutil.copy(cw.a.software, software)
    ca = tmp_path / "device-ca.pem"
    shutil.copy(cw.a.icm / "device-ca.pem", ca)
    records = f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"
    cases: list[tuple[Argv, Path, str]] = [
        (_sign_software(cw, tmp_path, lot_json), lot_json, "is a lot manifest, not"),
        (_manufacture(cw, tmp_path, software), software, "is a signed provisioning software"),
        (["cm", "receipts", "--records", records, "--out", ca], ca, "is a certificate, not"),
        (_report_csv(cw, tmp_path, software), software, "not a CSV report"),
    ]
    for argv, victim, match in cases:
        before = victim.read_bytes()
        assert_error(run(*argv, "--force"), exit_code=2, match=match)
        assert victim.read_bytes() == before
    assert not (tmp_path / "made.farm").exists()


def test_force_never_replaces_a_private_file_it_cannot_recognise(
    cw: CliWorld, tmp_path: Path
) -> None:
    """A PKCS#11 PIN file or a raw key is no artifact trustprov knows: its mode says secret."""
    pin = tmp_path / "icm.pin"
    pin.write_bytes(b"123456\n")
    pin.chmod(0o600)
    assert_error(run(*_sign_software(cw, tmp_path, pin), "--force"), exit_code=2, match="private")
    assert pin.read_bytes() == b"123456\n"
    assert stat.S_IMODE(pin.stat().st_mode) == 0o600


def test_force_replaces_a_file_of_its_own_kind_with_its_kinds_mode(
    cw: CliWorld, tmp_path: Path
) -> None:
    """What --force is for: a new software image over the old one, a new lot manifest over the
    old one; the file written has its kind's mode (public), whatever the old one had."""
    software = tmp_path / "software.cose"
    shutil.copy(cw.a.software, software)
    software.chmod(0o640)
    ok(*_sign_software(cw, tmp_path, software), "--force")
    assert stat.S_IMODE(software.stat().st_mode) == 0o644
    lot_json = tmp_path / "lot.json"
    ok(*_manufacture(cw, tmp_path, lot_json))
    first = lot_json.read_bytes()
    ok(*_manufacture(cw, tmp_path, lot_json, tmp_path / "second.farm"), "--force")
    assert lot_json.read_bytes() != first
    receipts = tmp_path / "receipts.cbor"
    records = f"sqlite:///{cw.provisioned_farm.parent / 'records.sqlite'}"
    for fmt in ("cbor-seq", "jsonl", "cbor-seq"):  # a receipt stream replaces a receipt stream
        ok("cm", "receipts", "--records", records, "--out", receipts, "--format", fmt, "--force")
