"""Footprint of trustprov's own C on a Cortex-M33 (make size): sections and worst-case stack.

Reads the objects, .su (-fstack-usage) and .ci (-fcallgraph-info=su) files that the Makefile's
`size` target cross-compiled into DIR, and prints a table, then one JSON object as the last line:
text, rodata, data, bss (bytes, summed over the objects) and stack, the deepest path through the
call graph from the link's entry point (tp_link_feed, the only one the platform calls per byte)
with the request runner behind its one indirect call (the platform's run callback, which calls
tp_chip_run). Functions outside trustprov's code (the crypto, TRNG and flash HAL backends, libc)
are left out and named in "excluded": their stack is the backend's to add.
Usage: size.py DIR
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ENTRY = "tp_link_feed"
# the link's indirect calls: the one on a source line calling io.run is the run callback, which
# calls tp_chip_run; the others are the platform's write and stage callbacks (the UART and flash
# drivers: excluded)
RUN_CALL = "io.run("
INDIRECT = "tp_chip_run"
CALLBACK_FRAME = 16  # a platform callback's own frame: a thin wrapper


def sections(objs: list[Path]) -> dict[str, int]:
    total = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    size_tool = shutil.which("arm-none-eabi-size")
    if size_tool is None:
        raise SystemExit("size: no arm-none-eabi-size (Debian: gcc-arm-none-eabi, binutils)")
    for obj in objs:
        out = subprocess.run(  # noqa: S603 - our own objects, a fixed tool
            [size_tool, "-A", str(obj)], check=True, capture_output=True, text=True
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            name, size = parts[0], int(parts[1])
            if name.startswith(".text"):
                total["text"] += size
            elif name.startswith(".rodata"):
                total["rodata"] += size
            elif name.startswith(".data"):
                total["data"] += size
            elif name.startswith(".bss") or name == "COMMON":
                total["bss"] += size
    return total


def graph(d: Path) -> tuple[dict[str, int], dict[str, set[str]], set[str]]:
    frame: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    dynamic: set[str] = set()
    node = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes \((\w+)')
    edge = re.compile(
        r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)" label: "([^":]+):(\d+)'
    )
    for ci in sorted(d.glob("*.ci")):
        for line in ci.read_text().splitlines():
            if m := node.search(line):
                frame[m.group(1)] = int(m.group(2))
                if m.group(3) != "static":
                    dynamic.add(m.group(1))
            elif m := edge.search(line):
                target = m.group(2)
                if target == "__indirect_call":
                    source = Path(m.group(3)).read_text().splitlines()[int(m.group(4)) - 1]
                    target = "__run_callback" if RUN_CALL in source else target
                calls.setdefault(m.group(1), set()).add(target)
    return frame, calls, dynamic


def deepest(frame: dict[str, int], calls: dict[str, set[str]], excluded: set[str]):
    memo: dict[str, tuple[int, list[str]]] = {}
    active: set[str] = set()

    def walk(f: str) -> tuple[int, list[str]]:
        if f in memo:
            return memo[f]
        if f in active:
            raise SystemExit(f"size: recursion through {f}: no bound on the stack")
        if f == "__indirect_call":
            excluded.add("platform callbacks (write, stage)")
            return CALLBACK_FRAME, ["(platform callback)"]
        if f == "__run_callback":
            depth, path = walk(INDIRECT)
            return CALLBACK_FRAME + depth, ["(run callback)", *path]
        if f not in frame:
            excluded.add(f)
            return 0, []
        active.add(f)
        best: tuple[int, list[str]] = (0, [])
        for g in sorted(calls.get(f, ())):
            got = walk(g)
            if got[0] > best[0]:
                best = got
        active.discard(f)
        memo[f] = (frame[f] + best[0], [f, *best[1]])
        return memo[f]

    return walk(ENTRY)


def main() -> None:
    d = Path(sys.argv[1])
    objs = sorted(d.glob("*.o"))
    sizes = sections(objs)
    frame, calls, dynamic = graph(d)
    excluded: set[str] = set()
    stack, path = deepest(frame, calls, excluded)
    for name, size in sizes.items():
        print(f"{name:8} {size:8}")
    print(f"stack    {stack:8}  {' > '.join(p.split(':')[-1] for p in path)}")
    if dynamic:
        print(f"dynamic stack frames (not bounded statically): {', '.join(sorted(dynamic))}")
    result = dict(sizes)
    result["stack"] = stack
    result["ram"] = sizes["data"] + sizes["bss"] + stack
    result["excluded"] = sorted(excluded)
    print(json.dumps(result, separators=(", ", ": ")))


if __name__ == "__main__":
    main()
