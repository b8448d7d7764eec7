"""The last line of `make bench`: every benchmark's figures in one JSON object.

Each benchmark prints its own figures and ends with one JSON object; `make bench` keeps each
one's output in BENCH_OUT and this script joins their last lines: the provisioning benchmark's
object (the figures of the million-chip lot) extended, under each other benchmark's name, with
that benchmark's object. A benchmark whose output holds no JSON last line is an error, so a
figure cannot go missing unseen.

    python bench/summary.py OUTPUT_FILE...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def last_object(path: Path) -> dict[str, Any]:
    lines = path.read_text().strip().splitlines()
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise SystemExit(f"{path}: its last line is not one JSON object")
    return doc


def summary(paths: list[Path]) -> dict[str, Any]:
    """The provision benchmark's object, with each other one's under its script's name (an
    object of one key, as {"startup": {...}}, goes in as that key's value)."""
    docs = {p.stem: last_object(p) for p in paths}
    out = dict(docs.pop("provision", {}))
    for name, doc in docs.items():
        out[name] = doc[name] if list(doc) == [name] else doc
    return out


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: summary.py OUTPUT_FILE...")
    print(json.dumps(summary([Path(a) for a in sys.argv[1:]])))


if __name__ == "__main__":
    main()
