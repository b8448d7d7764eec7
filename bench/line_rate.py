"""Benchmark: a lot over a board whose sockets are UARTs (`chip serve --baud N --turnaround MS`).

On a real line the host's CPU is not what limits throughput; the bytes of one chip crossing the
wire are. Per line rate this provisions a small lot over one board (a process of its own) and
compares the seconds per chip with the **line-rate floor**: the bytes that must cross (the
signed software image and the bundle) at baud / 10 bytes per second, with no framing, no
acknowledgement, no gap. Goal: ratio <= 1.10 at every rate.

Beside it, the same lot over a stop-and-wait link with an ACK per frame (as NXP's mboot does),
**computed** from what was measured: (1) the same frames, each followed by its ACK and a
turnaround before the next; (2) mboot's UART framing, 512-byte packets (its largest) with a
6-byte header and a 2-byte ACK each, and a turnaround per packet.

    python bench/line_rate.py [--rates 115200,1000000,3000000] [--chips 6] [--slow-chips 2]
                              [--turnaround-ms 1] [--sockets 1]
                              [--firmware FILE] [--compress none,deflate]

``--firmware`` seals FILE as the bundle's firmware instead of the demo's 256 KiB of random bytes
(which no compressor shrinks): a real image, e.g. the C chip's cross-compiled one
(`make bench-line-rate-compressed` builds it). ``--compress`` runs every rate once per variant
of the firmware asset's `compress` (docs/assets.md), so a deflated bundle's bytes and seconds per
chip stand beside the uncompressed one's.

``--slow-chips`` is the count at rates under 500,000 baud (a chip takes 40 s at 115,200).
Progress goes to stderr; the last line is one JSON object: per rate, seconds per chip, the floor
and their ratio, bytes and frames sent and received per chip, host CPU per chip, where the time
above the floor goes (framing bytes, idle line), and the stop-and-wait figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trustprov.demo import CM_LOT, make_family, write_sample_assets
from trustprov.formats.frame import FrameType, encode_frame
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import provision_lot_wire
from trustprov.link.address import open_stream
from trustprov.link.framed import FramedLink
from trustprov.link.stream import ByteStream
from trustprov.roles import assets as asset_list
from trustprov.roles import icm, oem
from trustprov.roles.cm import Job

GOAL = 1.10
SLOW = 500_000  # below this rate, --slow-chips chips
MBOOT_PACKET = 512  # mboot's largest UART data packet (MaxPacketSize)
MBOOT_HEADER = 6  # 0x5A, type, length [2], CRC-16 [2]
MBOOT_ACK = 2  # 0x5A 0xA1
ACK_FRAME = len(encode_frame(FrameType.ACK))  # this link's ACK frame on the wire


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CountingStream:
    """A stream to a socket at a known line rate, counting the bytes each way."""

    def __init__(self, inner: ByteStream, bytes_per_second: float) -> None:
        self._inner = inner
        self.bytes_per_second = bytes_per_second
        self.sent = 0
        self.received = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self._inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self._inner.read(max_bytes, timeout)
        self.received += len(data)
        return data

    def close(self) -> None:
        self._inner.close()


class Board:
    """`trustprov chip serve` at a line rate, stopped on exit whatever happens."""

    def __init__(self, farm: Path, sockets: int, baud: int, turnaround_ms: float) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [
                sys.executable,
                "-c",
                "from trustprov.cli.main import main; main()",
                *("chip", "serve", "--farm", str(farm), "--listen", "tcp://127.0.0.1:0"),
                *("--sockets", str(sockets), "--baud", str(baud)),
                *("--turnaround", str(turnaround_ms)),
            ],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise SystemExit("the board did not start")
        self.handler = json.loads(line)["handler"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_rate(
    root: Path,
    family: Any,
    job: Job,
    baud: int,
    *,
    chips: int,
    sockets: int,
    turnaround_ms: float,
    bundle_bytes: int,
    tag: str = "",
) -> dict[str, Any]:
    made = root / f"{baud}{tag}.farm"
    lot_json = root / f"lot-{baud}{tag}.json"
    icm.manufacture(family.icm, made, CM_LOT, chips, lot_json)
    manifest = LotManifest.from_json(lot_json.read_bytes())
    bps = baud / 10
    streams: list[CountingStream] = []
    links: list[FramedLink] = []

    def opener(address: str) -> FramedLink:
        inner = open_stream(address)  # the board's status gave the station its line rate
        assert inner.bytes_per_second == bps, f"{address}: the station does not know the rate"
        stream = CountingStream(inner, bps)
        streams.append(stream)
        link = FramedLink(stream)
        links.append(link)
        try:
            link.hello()
        except BaseException:
            link.close()
            raise
        return link

    board = Board(made, sockets, baud, turnaround_ms)
    try:
        cpu0, wall0 = _cpu(), time.perf_counter()
        summary = provision_lot_wire(
            manifest=manifest,
            lot=CM_LOT,
            job=job,
            records_url=f"sqlite:///{root / f'{baud}{tag}.sqlite'}",
            boards=[board.handler],
            station=f"bench-line-{baud}",
            open_link=opener,
        )
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    finally:
        board.close()
    if summary.failed or summary.provisioned != chips:
        raise SystemExit(f"FAILED at {baud} baud: {summary.to_json()}")
    sent = sum(s.sent for s in streams) / chips
    received = sum(s.received for s in streams) / chips
    frames_sent = sum(k.stats.frames_sent for k in links) / chips
    frames_received = sum(k.stats.frames_received for k in links) / chips
    payload = len(job.image) + bundle_bytes
    floor = payload / bps
    per_chip = wall / chips * sockets  # one socket's time per chip
    turn = turnaround_ms / 1000
    # stop-and-wait keeps every gap measured here (round trips, the chip's work) and adds, per
    # frame the host sends, the wait for its ACK before the next: a turnaround and the ACK's
    # bytes. A lower bound: the host's own turnaround before the next frame is not counted.
    sw_same = per_chip + frames_sent * (turn + ACK_FRAME / bps)
    # mboot over a UART: the same gaps, but the payload in 512-byte packets, each with a 6-byte
    # header, a 2-byte ACK and the chip's turnaround, in place of this link's bytes on the wire
    packets = -(-payload // MBOOT_PACKET)
    mboot_wire = (payload + packets * (MBOOT_HEADER + MBOOT_ACK)) / bps + packets * turn
    sw_mboot = per_chip - sent / bps + mboot_wire
    return {
        "baud": baud,
        "chips": chips,
        "sockets": sockets,
        "turnaround_ms": turnaround_ms,
        "seconds_per_chip": round(per_chip, 3),
        "floor_seconds": round(floor, 3),
        "ratio": round(per_chip / floor, 3),
        "met": per_chip / floor <= GOAL,
        "floor_bytes": payload,
        "bundle_bytes": bundle_bytes,
        "bytes_sent_per_chip": round(sent),
        "bytes_received_per_chip": round(received),
        "frames_sent_per_chip": round(frames_sent, 1),
        "frames_received_per_chip": round(frames_received, 1),
        "framing_overhead": round(sent / payload - 1, 4),
        "line_busy_seconds_per_chip": round(sent / bps, 3),
        "line_idle_seconds_per_chip": round(per_chip - sent / bps, 3),
        "host_cpu_ms_per_chip": round(cpu / chips * 1000, 2),
        "resent_frames": sum(k.stats.resent for k in links),
        "timeouts": sum(k.stats.timeouts for k in links),
        "stop_and_wait": {
            "how": "computed from the measured time, frames and bytes (lower bounds)",
            "same_frames_seconds_per_chip": round(sw_same, 3),
            "same_frames_ratio": round(sw_same / floor, 3),
            "mboot_512B_packets_seconds_per_chip": round(sw_mboot, 3),
            "mboot_512B_packets_ratio": round(sw_mboot / floor, 3),
        },
    }


def seal_variant(
    root: Path, family: Any, toml: Path, compress: str, firmware: Path | None
) -> tuple[Job, int, int]:
    """The demo's asset list with the firmware ``firmware`` (else the demo's) sealed with
    ``compress``: its job, the bundle's bytes and the firmware's."""
    d = toml.parent
    if firmware is not None:
        (d / "firmware.bin").write_bytes(firmware.read_bytes())
    text = toml.read_text()
    line = 'file = "firmware.bin"\n'
    variant = d / f"assets-{compress}.toml"
    variant.write_text(text.replace(line, line + f'compress = "{compress}"\n', 1))
    out = root / f"oem-{compress}"
    oem.keygen(
        family.oem_farm,
        family.oem_uid,
        software_path=family.software,
        assets=asset_list.load(variant),
        out=out,
    )
    job = Job.load(family.software, out / "enc-oem-share.cose", out / "bundle.cbor")
    return job, (out / "bundle.cbor").stat().st_size, (d / "firmware.bin").stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rates", default="115200,1000000,3000000", help="baud rates, comma-separated")
    ap.add_argument("--chips", type=int, default=6, help="chips per rate")
    ap.add_argument("--slow-chips", type=int, default=2, help=f"chips per rate under {SLOW}")
    ap.add_argument("--turnaround-ms", type=float, default=1.0)
    ap.add_argument("--sockets", type=int, default=1, help="sockets of the board")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--firmware", type=Path, default=None, help="firmware image to seal")
    ap.add_argument("--compress", default="none", help="variants: none, deflate or both")
    args = ap.parse_args()
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        ap.error("--rates: integers, comma-separated")
    variants = args.compress.split(",")
    if not variants or not set(variants) <= {"none", "deflate"}:
        ap.error("--compress: none, deflate or none,deflate")
    if args.firmware is not None and not args.firmware.is_file():
        ap.error(f"--firmware: no such file {args.firmware}")
    if args.chips < 1 or args.slow_chips < 1 or not 1 <= args.sockets <= 256:
        ap.error("--chips, --slow-chips >= 1; --sockets 1..256")
    results = []
    with tempfile.TemporaryDirectory(prefix="trustprov-bench-line-", dir=args.dir) as tmp:
        root = Path(tmp)
        toml = write_sample_assets(root / "assets")
        family = make_family(root)
        for compress in variants:
            job, bundle_bytes, firmware_bytes = seal_variant(
                root, family, toml, compress, args.firmware
            )
            _say(
                f"compress {compress}: firmware {firmware_bytes} bytes, software image "
                f"{len(job.image)} bytes, bundle {bundle_bytes} bytes (rom.boot request "
                f"{len(job.boot_request)} bytes)"
            )
            for baud in rates:
                chips = args.slow_chips if baud < SLOW else args.chips
                r = run_rate(
                    root,
                    family,
                    job,
                    baud,
                    chips=chips,
                    sockets=args.sockets,
                    turnaround_ms=args.turnaround_ms,
                    bundle_bytes=bundle_bytes,
                    tag=f"-{compress}",
                )
                r = {"compress": compress, "firmware_bytes": firmware_bytes, **r}
                results.append(r)
                _report(r, chips)
    print(json.dumps({"goal_ratio": GOAL, "rates": results, "met": all(r["met"] for r in results)}))
    return 0


def _report(r: dict[str, Any], chips: int) -> None:
    sw = r["stop_and_wait"]
    _say(
        f"{r['compress']}, {r['baud']} baud, {chips} chips: {r['seconds_per_chip']} s/chip, "
        f"floor {r['floor_seconds']} s, ratio {r['ratio']} ({'met' if r['met'] else 'MISSED'}); "
        f"idle {r['line_idle_seconds_per_chip']} s/chip, framing "
        f"{r['framing_overhead']:.2%}; stop-and-wait {sw['same_frames_ratio']} "
        f"(same frames), {sw['mboot_512B_packets_ratio']} (mboot 512 B)"
    )


if __name__ == "__main__":
    sys.exit(main())
