"""`make demo-c`: the whole flow on C chips only (chip-c/build/trustprov-chip), over a chip board.

    python chip-c/tools/demo_c.py --chips N --out DIR [--sockets S] [--replace]

Every chip is the C program, seated by `trustprov chip serve --exec ... --tray DIR/tray` (one
process per seated chip, its state in DIR/tray/LOT/UID.nvm); every party reaches its chips
over the wire (protocol.md 13):

1. ICM: `trustprov icm init`; `trustprov icm sign-software --code
   chip-c/build/provisioning-software.bin`, the image the C ROM measures (tp-code its SHA-256).
2. ICM: blank C chips (`chip blank --tray`), one for the OEM's desk (lot OEM-PROV) and N for the
   CM (lot LOT-C001), manufactured on the board by the ICM's line, `trustprov icm manufacture
   --board` (protocol.md 13.6): burned, identity made on the chip, certified, checked by a
   signed challenge, and the lot manifest signed. Each lot has its own ICM records store beside
   its manifest; the line skips the other lot's chips (`fab-lot`) without touching them.
3. OEM: `oem verify-software`, `oem authorize` (the CM's lot, its ICM signature checked),
   `oem keygen --port SOCKET --ca device-ca.pem` on the desk chip (a C chip); the firmware
   asset is deflated (`compress = "deflate"`), so every C chip inflates it on install.
4. CM: `cm provision --manifest LOT_JSON --board HANDLER`, `cm receipts`.
5. OEM: `oem reconcile --auth --lot`, then the line `make demo` ends with.

Exit 0 only if every chip was provisioned and every ordered chip returned a valid receipt.
DIR must be new or empty; --replace empties a DIR only if it holds a previous demo-c's marker
(DIR/.trustprov-demo-c), so it never deletes what it did not make.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trustprov.link.handler import BoardClient
from trustprov.roles.files import PRIVATE, write_file

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "chip-c" / "build" / "trustprov-chip"
CODE = ROOT / "chip-c" / "build" / "provisioning-software.bin"
OEM_LOT = "OEM-PROV"
CM_LOT = "LOT-C001"
FIRMWARE_SIZE = 32 * 1024
MARKER = ".trustprov-demo-c"

# within what the C chip takes (docs/porting.md, "What is not done yet"): chunks whose sealed
# answer fits its 6 KiB response buffer, regions within its 256 KiB of region flash
ASSETS_TOML = """\
[bundle]
epoch = 1
aead = "AES-GCM"
chunk-size = 4096

[[asset]]
name = "app-aes-key"
kind = "key"
key-type = "aes-256"
slot = 1
file = "app-aes-key.bin"

[[asset]]
name = "application"
kind = "firmware"
region = "app"
file = "firmware.bin"
compress = "deflate"

[[asset]]
name = "settings"
kind = "config"
region = "config"
file = "config.bin"

[[asset]]
name = "oem-signing-key"
kind = "generate"
key-type = "ec-p256"
slot = 8

[[asset]]
name = "cloud-identity-key"
kind = "device-key"
key-type = "ec-p256"
slot = 9
"""


def trustprov(*args: str | Path | int, capture: bool = False) -> str:
    """One CLI command, as an operator types it; its failure ends the demo."""
    exe = Path(sys.executable).parent / "trustprov"
    words = [str(exe), "-q", *map(str, args)]
    print("$ trustprov " + " ".join(words[2:]), flush=True)
    done = subprocess.run(words, check=False, text=True, capture_output=capture)  # noqa: S603
    if done.returncode != 0:
        if capture:
            sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"demo-c: 'trustprov {args[0]} {args[1]}' failed ({done.returncode})")
    return done.stdout if capture else ""


def write_assets(d: Path) -> Path:
    d.mkdir()
    write_file(d / "app-aes-key.bin", os.urandom(32), mode=PRIVATE)
    # a real image, not random bytes: the C chip's own provisioning software (machine code and
    # its data), padded with erased flash (0xff) to its slot; deflated, every C chip inflates it
    image = CODE.read_bytes()[:FIRMWARE_SIZE]
    write_file(d / "firmware.bin", image + b"\xff" * (FIRMWARE_SIZE - len(image)))
    write_file(d / "config.bin", b'{"product": "example-sensor", "region": "eu"}')
    write_file(d / "assets.toml", ASSETS_TOML.encode())
    return d / "assets.toml"


def tray_uids(tray: Path, lot: str) -> list[bytes]:
    return sorted(bytes.fromhex(p.stem) for p in (tray / lot).glob("*.nvm"))


def start_board(tray: Path, sockets: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    exe = Path(sys.executable).parent / "trustprov"
    command = f"{PROGRAM} --nvm {{nvm}} --uid {{uid}} --lot {{lot}} --stdio"
    words = [str(exe), "-q", "chip", "serve", "--exec", command, "--tray", str(tray)]
    words += ["--listen", "tcp://127.0.0.1:0", "--sockets", str(sockets)]
    print(f"$ trustprov chip serve --exec '{command}' --tray {tray} ...", flush=True)
    board = subprocess.Popen(words, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert board.stdout is not None  # noqa: S101 - piped
    line = board.stdout.readline()
    if not line:
        board.wait()
        raise SystemExit("demo-c: the chip board did not start")
    return board, json.loads(line)


def stop_board(board: subprocess.Popen[str]) -> None:
    board.send_signal(signal.SIGTERM)
    try:
        board.wait(timeout=30)
    except subprocess.TimeoutExpired:
        board.kill()
        board.wait()


def run(out: Path, chips: int, sockets: int, *, replace: bool = False) -> int:
    if not PROGRAM.is_file() or not CODE.is_file():
        raise SystemExit("demo-c: build the C chip first: make chip-c")
    if out.is_symlink():
        raise SystemExit(f"demo-c: {out} is a symbolic link; give a directory")
    if replace and out.is_dir() and (out / MARKER).is_file():
        shutil.rmtree(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(
            f"demo-c: {out} exists and is not empty (nor a previous demo-c's); give a new directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by chip-c/tools/demo_c.py; --replace may delete it\n")
    icm_dir, oem_dir, cm_dir, tray = out / "icm", out / "oem", out / "cm", out / "tray"
    toml = write_assets(out / "assets")
    cm_dir.mkdir()
    software = icm_dir / "provisioning-software.cose"

    trustprov("icm", "init", icm_dir)
    trustprov(
        "icm", "sign-software", "--icm", icm_dir, "--code", CODE, "--out", software,
        "--version", "0.1.0", "--security-version", 1,
    )  # fmt: skip
    trustprov("chip", "blank", "--tray", tray, "--count", 1, "--lot", OEM_LOT)
    trustprov("chip", "blank", "--tray", tray, "--count", chips, "--lot", CM_LOT)
    started = time.monotonic()
    board, ports = start_board(tray, sockets)
    try:
        handler, socket0 = ports["handler"], ports["sockets"][0]
        desk = out / "oem-chip.lot.json"
        lot = cm_dir / "lot.json"
        for name, manifest, count in ((OEM_LOT, desk, 1), (CM_LOT, lot, chips)):
            trustprov(
                "icm", "manufacture", "--icm", icm_dir, "--lot", name, "--manifest", manifest,
                "--board", handler, "--count", count,
                "--records", f"sqlite:///{manifest.parent / (name + '.icm-records.sqlite')}",
            )  # fmt: skip

        auth = cm_dir / "authorized.cbor"
        icm_key = icm_dir / "lot-signing.pub.pem"
        trustprov("oem", "verify-software", software, "--key", icm_dir / "prov-signing.pub.pem")
        trustprov("oem", "authorize", "--lot", lot, "--out", auth, "--icm-key", icm_key)
        with BoardClient(handler) as b:
            b.insert(0, tray_uids(tray, OEM_LOT)[0], replace=True)
        trustprov(
            "oem", "keygen", "--port", socket0, "--ca", icm_dir / "device-ca.pem",
            "--software", software, "--assets", toml, "--out", oem_dir, "--auth", auth,
        )  # fmt: skip
        with BoardClient(handler) as b:
            b.remove(0)

        records = f"sqlite:///{cm_dir / 'records.sqlite'}"
        trustprov(
            "cm", "provision", "--manifest", lot, "--board", handler, "--lot", CM_LOT,
            "--software", software, "--share", oem_dir / "enc-oem-share.cose",
            "--bundle", oem_dir / "bundle.cbor", "--auth", auth, "--icm-key", icm_key,
            "--records", records, "--station", "demo-c",
        )  # fmt: skip
    finally:
        stop_board(board)
    receipts = cm_dir / "receipts.cbor"
    trustprov("cm", "receipts", "--records", records, "--lot", CM_LOT, "--out", receipts)
    reconcile: list[str | Path | int] = [
        "oem", "reconcile", "--auth", auth, "--ca", icm_dir / "device-ca.pem",
        "--bundle", oem_dir / "bundle.cbor", "--receipts", receipts, "--lot", lot,
        "--icm-key", icm_key, "--json",
    ]  # fmt: skip
    result = json.loads(trustprov(*reconcile, capture=True))
    valid = result["counts"]["valid"]
    missing = len(result["missing"])
    print(f"{chips} C chips in {time.monotonic() - started:.1f} s; artifacts in {out}")
    print(
        f"reconciled by the OEM: {valid} valid receipts of {result['authorized']} chips "
        f"ordered, {missing} missing, {result['receipts'] - valid} not valid"
    )
    ok = valid == chips == result["authorized"] == result["receipts"] and missing == 0
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chips", type=int, default=16)
    p.add_argument("--sockets", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--replace", action="store_true", help="replace a previous demo-c's --out")
    a = p.parse_args()
    if not 1 <= a.chips <= 100_000 or not 1 <= a.sockets <= 64:
        p.error("--chips 1..100000, --sockets 1..64")
    return run(a.out, a.chips, a.sockets, replace=a.replace)


if __name__ == "__main__":
    sys.exit(main())
