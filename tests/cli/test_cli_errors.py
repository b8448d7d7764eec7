"""Errors a careless operator meets: one line, docs/cli.md's exit code, never a traceback.

Exit codes (docs/cli.md, cli/main.py): 2 for bad input, the operator's own files included (a farm, a
records store, an ICM directory, an asset list that is empty, garbage or unusable); 1 for an
artifact from a peer or a chip (software, ENC values, bundle, public key) that does not parse or
verify; 141 quietly when the reader of standard output goes away.

Read-only media are simulated with ``chattr +i`` (immutable: not even root may write), which is
what makes the test meaningful when the tests run as root, where chmod stops nothing.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from trustprov.roles import icm as icm_role

from .conftest import CliWorld
from .helpers import assert_error, copy_farm, ok, run

Argv = list[str | Path]


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``paths`` on read-only media for the block (chattr +i; skips where unsupported)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("no chattr")
    done: list[Path] = []
    try:
        for p in paths:
            if subprocess.run([chattr, "+i", str(p)], capture_output=True, check=False).returncode:
                pytest.skip("the file system does not support chattr +i")
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            subprocess.run([chattr, "-i", str(p)], check=True)


def _read_only_copy(src_farm: Path, dest: Path) -> list[Path]:
    """A copy of a farm and its records in ``dest``; every file, then the directory, to make
    immutable (in that order: the directory last)."""
    copy_farm(src_farm, dest, "cm.farm")
    copy_farm(src_farm.parent / "records.sqlite", dest, "records.sqlite")
    return [*sorted(p for p in dest.iterdir() if p.is_file()), dest]


# -- the farm: a directory, an unwritable directory, read-only media ---------------------------
def _manufacture(cw: CliWorld, farm: Path, manifest: Path, icm: Path | None = None) -> Argv:
    argv: Argv = ["icm", "manufacture", "--icm", icm or cw.a.icm, "--farm", farm, "--lot", "L"]
    return [*argv, "--count", "1", "--manifest", manifest]


def test_manufacture_farm_that_is_a_directory(cw: CliWorld, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = run(*_manufacture(cw, tmp_path / "d", tmp_path / "lot.json"))
    assert_error(result, exit_code=2, match="directory")
    assert not (tmp_path / "lot.json").exists()


def test_manufacture_farm_in_a_read_only_directory(cw: CliWorld, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    with immutable(ro):
        result = run(*_manufacture(cw, ro / "new.farm", tmp_path / "lot.json"))
    assert_error(result, exit_code=2, match="cannot")
    assert not (tmp_path / "lot.json").exists()


def test_chip_show_farm_that_is_a_directory(cw: CliWorld, tmp_path: Path) -> None:
    result = run("chip", "show", "--farm", tmp_path, "--chip", cw.a.cm_uids[0])
    assert_error(result, exit_code=2, match="directory")


def test_a_farm_on_read_only_media_is_not_called_not_a_farm(cw: CliWorld, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    paths = _read_only_copy(cw.provisioned_farm, ro)
    with immutable(*paths):
        line = assert_error(
            run(*_manufacture(cw, ro / "cm.farm", tmp_path / "lot.json")), exit_code=2
        )
        assert "not a chip farm" not in line, line
        assert "cm.farm" in line, line


def _leave_wal_files(farm: Path) -> list[Path]:
    """The -wal and -shm files a farm in WAL mode has while open, left beside it (as a copy
    taken from a running line would have them); returns them."""
    kept = {}
    db = sqlite3.connect(farm)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("SELECT count(*) FROM chips").fetchone()
        for suffix in ("-wal", "-shm"):
            live = farm.with_name(farm.name + suffix)
            kept[live] = live.read_bytes()
    finally:
        db.close()  # the last connection removes them: put them back
    for live, data in kept.items():
        live.write_bytes(data)
    return sorted(kept)


@pytest.mark.parametrize("wal", [False, True], ids=["farm", "farm-with-wal-files"])
def test_chip_show_and_inspect_read_a_farm_on_read_only_media(
    cw: CliWorld, tmp_path: Path, wal: bool
) -> None:
    """issue 24: both failed there; they only read, so the farm is opened read-only. A writer
    (manufacture) is refused in one line, even with the WAL's files beside the farm (it was an
    internal error at its first write)."""
    ro = tmp_path / "ro"
    paths = _read_only_copy(cw.provisioned_farm, ro)
    farm = ro / "cm.farm"
    if wal:
        paths = [*_leave_wal_files(farm), *paths]
    with immutable(*paths):
        line = assert_error(run(*_manufacture(cw, farm, tmp_path / "lot.json")), exit_code=2)
        assert "cannot be written" in line
        shown = json.loads(
            ok("chip", "show", "--farm", farm, "--chip", cw.a.cm_uids[0], "--json").stdout
        )
        lot = ok("chip", "show", "--farm", farm, "--lot", cw.a.cm_lot).stdout
        inspected = json.loads(ok("inspect", "--json", farm).stdout)
    assert shown["lifecycle"] == "PROVISIONED"
    assert all(u in lot for u in cw.a.cm_uids)
    assert inspected["kind"] == "farm"
    assert inspected["chips"] == len(cw.a.cm_uids)
    assert sorted(p.name for p in ro.iterdir()) == sorted(p.name for p in paths[:-1])


def test_report_reads_records_on_read_only_media(cw: CliWorld, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    paths = _read_only_copy(cw.provisioned_farm, ro)
    url = f"sqlite:///{ro / 'records.sqlite'}"
    with immutable(*paths):
        text = ok("cm", "report", "--records", url).stdout
        csv = ok("cm", "report", "--records", url, "--csv", "-").stdout
    assert f"{len(cw.a.cm_uids)} provisioned" in text
    assert len(csv.splitlines()) == 1 + len(cw.a.cm_uids)
    assert sorted(p.name for p in ro.iterdir()) == sorted(p.name for p in paths[:-1])


# -- standard output closed early ------------------------------------------------------------
def test_report_into_a_closed_pipe_exits_quietly(cw: CliWorld) -> None:
    """`trustprov cm report | head -1`: no "error: Broken pipe", no traceback, exit 141."""
    records = cw.provisioned_farm.parent / "records.sqlite"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write is EPIPE
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from trustprov.cli.main import main; main()",
                "cm",
                "report",
                "--records",
                f"sqlite:///{records}",
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert proc.stderr == b"", proc.stderr.decode()
    assert proc.returncode == 141


def test_a_broken_pipe_that_is_not_stdout_is_reported(
    cw: CliWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the end of standard output's reader is quiet; a pipe of the tool's own (a worker's,
    a link's) that breaks is a failure to report."""

    def broken(*_a: object, **_k: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(icm_role, "sign_software", broken)
    result = run("icm", "sign-software", "--icm", cw.a.icm, "--out", tmp_path / "sw")
    assert_error(result, exit_code=2, match="broken pipe")


# -- empty and garbage artifacts: docs/cli.md's exit codes --------------------------------------
GARBAGE = bytes(range(256)) * 4
CONTENTS = {"empty": b"", "garbage": GARBAGE}


def _put(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _icm_dir(cw: CliWorld, tmp: Path, data: bytes, name: str = "family-secrets.cbor") -> Path:
    icm = tmp / "icm"
    shutil.copytree(cw.a.icm, icm)
    (icm / name).write_bytes(data)
    return icm


def _oem_state(cw: CliWorld, tmp: Path, name: str, data: bytes) -> Path:
    state = tmp / "state"
    shutil.copytree(cw.a.oem_dir, state)
    (state / name).write_bytes(data)
    return state


def _keygen(cw: CliWorld, tmp: Path, **over: Path) -> Argv:
    args: dict[str, str | Path] = {
        "--farm": copy_farm(cw.a.oem_farm, tmp / "oem"),
        "--chip": cw.a.oem_uid,
        "--software": cw.a.software,
        "--assets": cw.assets_toml,
    }
    args.update({f"--{k}": v for k, v in over.items()})
    return ["oem", "keygen", *(x for kv in args.items() for x in kv), "--out", tmp / "out"]


def _regen(cw: CliWorld, tmp: Path, state: Path) -> Argv:
    argv = _keygen(cw, tmp)
    argv[1] = "regen"
    return [*argv[:-2], "--state", state, "--out", tmp / "out"]


def _provision(cw: CliWorld, tmp: Path, **over: Path) -> Argv:
    args: dict[str, str | Path] = {
        "--farm": cw.fresh_farm(tmp / "cm"),
        "--lot": cw.a.cm_lot,
        "--software": cw.a.software,
        "--share": cw.a.share,
        "--bundle": cw.a.bundle,
    }
    args.update({f"--{k}": v for k, v in over.items()})
    return ["cm", "provision", *(x for kv in args.items() for x in kv)]


Case = Callable[[CliWorld, Path, bytes], Argv]
READERS: dict[str, tuple[Case, int]] = {
    # the operator's own files: bad input
    "icm sign-software --icm": (
        lambda cw, t, d: ["icm", "sign-software", "--icm", _icm_dir(cw, t, d), "--out", t / "s"],
        2,
    ),
    "icm manufacture --icm signing key": (
        lambda cw, t, d: _manufacture(
            cw, t / "f.farm", t / "lot.json", _icm_dir(cw, t, d, "prov-signing.key.pem")
        ),
        2,
    ),
    "cm provision --records": (
        lambda cw, t, d: [
            *_provision(cw, t),
            "--records",
            f"sqlite:///{_put(t, 'r.sqlite', d)}",
        ],
        2,
    ),
    "icm manufacture --farm": (
        lambda cw, t, d: _manufacture(cw, _put(t, "f.farm", d), t / "lot.json"),
        2,
    ),
    "oem keygen --assets": (lambda cw, t, d: _keygen(cw, t, assets=_put(t, "a.toml", d)), 2),
    "oem keygen --farm": (lambda cw, t, d: _keygen(cw, t, farm=_put(t, "f.farm", d)), 2),
    "oem regen --state oem.json": (
        lambda cw, t, d: _regen(cw, t, _oem_state(cw, t, "oem.json", d)),
        2,
    ),
    "cm provision --farm": (lambda cw, t, d: _provision(cw, t, farm=_put(t, "f.farm", d)), 2),
    "cm report --records": (
        lambda _cw, t, d: ["cm", "report", "--records", f"sqlite:///{_put(t, 'r.sqlite', d)}"],
        2,
    ),
    "chip show --farm": (
        lambda cw, t, d: ["chip", "show", "--farm", _put(t, "f", d), "--chip", cw.a.cm_uids[0]],
        2,
    ),
    # artifacts from a peer or a chip: they fail to parse or verify
    "oem verify-software SOFTWARE": (
        lambda cw, t, d: ["oem", "verify-software", _put(t, "sw", d), "--key", cw.a.pubkey],
        1,
    ),
    "oem verify-software --key": (
        lambda cw, t, d: ["oem", "verify-software", cw.a.software, "--key", _put(t, "k", d)],
        1,
    ),
    "oem keygen --software": (lambda cw, t, d: _keygen(cw, t, software=_put(t, "sw", d)), 1),
    "oem regen --state ENC(RND_SHARE)": (
        lambda cw, t, d: _regen(cw, t, _oem_state(cw, t, "enc-rnd-share.cose", d)),
        1,
    ),
    "oem regen --state ENC(OEM_RND_INPUT)": (
        lambda cw, t, d: _regen(cw, t, _oem_state(cw, t, "enc-oem-rnd-input.cose", d)),
        1,
    ),
    "cm provision --software": (
        lambda cw, t, d: _provision(cw, t, software=_put(t, "sw", d)),
        1,
    ),
    "cm provision --share": (lambda cw, t, d: _provision(cw, t, share=_put(t, "sh", d)), 1),
    "cm provision --bundle": (lambda cw, t, d: _provision(cw, t, bundle=_put(t, "b", d)), 1),
}


EMPTY_IS_NEW = {"icm manufacture --farm", "cm provision --records"}


@pytest.mark.parametrize("content", sorted(CONTENTS))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_empty_and_garbage_inputs_exit_as_the_readme_says(
    cw: CliWorld, tmp_path: Path, reader: str, content: str
) -> None:
    make, code = READERS[reader]
    argv = make(cw, tmp_path, CONTENTS[content])
    if content == "empty" and reader in EMPTY_IS_NEW:
        ok(*argv)  # an empty file is a new store, as the one the command creates itself
        return
    assert_error(run(*argv), exit_code=code)


def test_running_out_of_memory_is_told_apart_from_a_bug() -> None:
    """Under a memory limit the failing allocation may sit inside an import or a library that
    raises its own error from it: still the machine's limit, not a bug to report."""
    from trustprov.cli.main import _out_of_memory  # noqa: PLC0415 - the one function tested

    wrapped = RuntimeError("a library's own wrapping")
    wrapped.__cause__ = MemoryError()
    assert _out_of_memory(wrapped)
    context = ValueError("raised while handling")
    context.__context__ = MemoryError()
    assert _out_of_memory(context)
    assert _out_of_memory(ImportError("libx.so: failed to map segment from shared object"))
    assert not _out_of_memory(ImportError("No module named 'x'"))
    # an import's directory scan under the limit fails with ENOMEM itself (no MemoryError)
    assert _out_of_memory(OSError(errno.ENOMEM, "Cannot allocate memory", "site-packages/rich"))
    assert not _out_of_memory(OSError(errno.ENOENT, "No such file or directory", "x"))
    assert not _out_of_memory(ValueError("a bug"))
    # a worker thread's stack under the limit: CPython says so in a RuntimeError of its own
    assert _out_of_memory(RuntimeError("can't start new thread"))
    assert not _out_of_memory(RuntimeError("dictionary changed size during iteration"))
