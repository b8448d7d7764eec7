"""Benchmark: a lot over TCP loopback to chip boards in processes of their own.

The station (this process) drives every socket of every board at once; the boards do the chips'
crypto. What matters for a factory is the host's own cost per chip: the CPU time of the station
process alone (user + system, all its threads; the boards are other processes), which is what
remains when the chips are real silicon. The same lot is also provisioned in-process (one
worker, chips in this process) in the same run, for comparison.

    python bench/wire.py [--chips 2000] [--boards 2] [--sockets 16] [--profile FILE]

Progress goes to stderr; the last line is one JSON object: chips, sockets, seconds, chips_per_s,
host_cpu_us_per_chip (with its user and system parts), wall_us_per_chip, the frames the
station sent and received per chip (hellos and resends included), inproc_per_chip_us, and the
target (150 us of station CPU per chip). ``--profile`` writes a cProfile of the station's
threads' work to FILE.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from trustprov.demo import CM_LOT, make_family, seal_bundle, write_sample_assets
from trustprov.formats.lot import LotManifest
from trustprov.line.boards import provision_lot_wire
from trustprov.line.station import provision_lot
from trustprov.link.address import open_link
from trustprov.link.framed import FramedLink
from trustprov.roles import icm
from trustprov.roles.cm import Job
from trustprov.roles.oem import assets as asset_list

TARGET_US = 150.0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process (every thread; not the boards)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


class Boards:
    """Chip boards as processes (`trustprov chip serve`), stopped on exit whatever happens."""

    def __init__(self, farm: Path, boards: int, sockets: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.handlers: list[str] = []
        try:
            for _ in range(boards):
                proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
                    [
                        sys.executable,
                        "-c",
                        "from trustprov.cli.main import main; main()",
                        "chip",
                        "serve",
                        "--farm",
                        str(farm),
                        "--listen",
                        "tcp://127.0.0.1:0",
                        "--sockets",
                        str(sockets),
                    ],
                    stdout=subprocess.PIPE,
                )
                self.procs.append(proc)
                assert proc.stdout is not None
                self.handlers.append(json.loads(proc.stdout.readline())["handler"])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _profiled_threads(profiles: list[cProfile.Profile]) -> None:
    """Profile every thread the station starts (its socket threads), each on its own CPU clock."""
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]


def main() -> int:  # noqa: PLR0915 - one linear script: set up, run twice, report
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--chips", type=int, default=2000)
    ap.add_argument("--boards", type=int, default=2)
    ap.add_argument("--sockets", type=int, default=16, help="sockets per board")
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile here")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    if args.chips < 1 or args.boards < 1 or not 1 <= args.sockets <= 256:
        ap.error("--chips, --boards >= 1; --sockets 1..256")
    with tempfile.TemporaryDirectory(prefix="trustprov-bench-wire-", dir=args.dir) as tmp:
        root = Path(tmp)
        toml = write_sample_assets(root / "assets")
        family = make_family(root)
        made = root / "made.farm"
        icm.manufacture(family.icm, made, CM_LOT, args.chips, root / "lot.json")
        seal_bundle(root, family, asset_list.load(toml))
        oem = root / "oem"
        job = Job.load(family.software, oem / "enc-oem-share.cose", oem / "bundle.cbor")
        manifest = LotManifest.from_json((root / "lot.json").read_bytes())
        _say(f"manufactured {args.chips} chips; demo assets sealed")

        farm = root / "inproc.farm"
        shutil.copyfile(made, farm)
        inproc = provision_lot(
            farm_path=farm,
            lot=CM_LOT,
            job=job,
            records_url=f"sqlite:///{root / 'inproc.sqlite'}",
            jobs=1,
            station="bench-inproc",
        )
        inproc_us = inproc.seconds / args.chips * 1e6
        _say(
            f"in-process, 1 worker: {args.chips / inproc.seconds:.0f} chips/s, "
            f"{inproc_us:.0f} us/chip"
        )

        farm = root / "wire.farm"
        shutil.copyfile(made, farm)
        sockets = args.boards * args.sockets
        profiles: list[cProfile.Profile] = []
        boards = Boards(farm, args.boards, args.sockets)
        try:
            if args.profile:
                _profiled_threads(profiles)
                profiles.append(cProfile.Profile(time.thread_time))  # CPU time, not waits
                profiles[-1].enable()
            links: list[FramedLink] = []  # every link the station opens, for frames per chip

            def opener(address: str) -> FramedLink:
                link = open_link(address)
                links.append(link)
                return link

            cpu0, wall0 = _cpu(), time.perf_counter()
            summary = provision_lot_wire(
                manifest=manifest,
                lot=CM_LOT,
                job=job,
                records_url=f"sqlite:///{root / 'wire.sqlite'}",
                boards=boards.handlers,
                station="bench-wire",
                open_link=opener,
            )
            cpu1, wall = _cpu(), time.perf_counter() - wall0
            user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            cpu = user + system
            if profiles:
                profiles[-1].disable()
                pstats.Stats(*profiles).dump_stats(args.profile)
        finally:
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            boards.close()
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the boards' CPU (the virtual chips' work), counted once they have exited
        board_cpu = sum(
            getattr(children1, f) - getattr(children0, f) for f in ("ru_utime", "ru_stime")
        )
        if summary.failed or summary.provisioned != args.chips:
            _say(f"FAILED: {summary.to_json()}")
            return 1
    host_us = cpu / args.chips * 1e6
    result: dict[str, Any] = {
        "chips": args.chips,
        "boards": args.boards,
        "sockets": sockets,
        "seconds": round(wall, 3),
        "chips_per_s": round(args.chips / wall, 1),
        "host_cpu_us_per_chip": round(host_us, 1),
        "host_user_us_per_chip": round(user / args.chips * 1e6, 1),
        "host_system_us_per_chip": round(system / args.chips * 1e6, 1),
        "wall_us_per_chip": round(wall / args.chips * 1e6, 1),
        "frames_sent_per_chip": round(sum(k.stats.frames_sent for k in links) / args.chips, 1),
        "frames_received_per_chip": round(
            sum(k.stats.frames_received for k in links) / args.chips, 1
        ),
        "link_timeouts": sum(k.stats.timeouts for k in links),
        "boards_cpu_us_per_chip": round(board_cpu / args.chips * 1e6, 1),
        "inproc_per_chip_us": round(inproc_us, 1),
        "target_host_cpu_us_per_chip": TARGET_US,
        "met": host_us <= TARGET_US,
    }
    _say(
        f"over TCP, {args.boards} board(s) x {args.sockets} sockets: {result['chips_per_s']:.0f} "
        f"chips/s, station CPU {host_us:.0f} us/chip (target {TARGET_US:.0f}), wall "
        f"{result['wall_us_per_chip']:.0f} us/chip; in-process {inproc_us:.0f} us/chip"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
