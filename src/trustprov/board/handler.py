"""The board's handler protocol: JSON lines that place chips in sockets (docs/protocol.md,
"Chip board: handler protocol").

Each request and each response is one UTF-8 JSON object on one line ending in LF. A request
line is at most `MAX_REQUEST` bytes with its LF; a longer one is answered ``too-long`` and the
connection closed. Requests::

    {"op": "status"}
    {"op": "insert", "socket": K, "chip": "<32 hex>", "replace": true}   replace: optional
    {"op": "remove", "socket": K}
    {"op": "power-cycle", "socket": K, "after": N}      N >= 0 bytes of input, default 0 (now)
    {"op": "kill", "socket": K}                          the socket stops answering (a fault)

Responses: ``{"ok": true, ...}`` or ``{"ok": false, "error": CODE, "message": TEXT}``.

Invariant: `parse_request` accepts exactly the five forms above and raises `HandlerError` for
anything else; nothing here touches a chip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from trustprov.errors import TrustprovError

MAX_REQUEST = 256
UID_HEX = 32
MAX_AFTER = 1 << 32
OPS = ("status", "insert", "remove", "power-cycle", "kill")


class HandlerError(TrustprovError):
    """A handler request the board refuses; ``code`` goes back on the wire."""

    code = "bad-request"


@dataclass(frozen=True)
class Request:
    op: str
    socket: int = -1
    chip: bytes = b""
    after: int = 0
    replace: bool = False  # insert: take out the chip in the socket first


def parse_request(line: bytes) -> Request:
    if len(line) > MAX_REQUEST:
        raise HandlerError(f"request longer than {MAX_REQUEST} bytes", code="too-long")
    try:
        doc = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HandlerError("request is not one JSON object") from e
    if not isinstance(doc, dict) or doc.get("op") not in OPS:
        raise HandlerError(f"request needs an op, one of {', '.join(OPS)}")
    op = doc["op"]
    allowed = {
        "status": {"op"},
        "insert": {"op", "socket", "chip", "replace"},
        "remove": {"op", "socket"},
        "power-cycle": {"op", "socket", "after"},
        "kill": {"op", "socket"},
    }[op]
    required = allowed - {"after", "replace"}
    if not required <= doc.keys() <= allowed:
        raise HandlerError(f"{op}: fields are {sorted(allowed)}")
    if op == "status":
        return Request(op)
    socket = _int(doc["socket"], "socket", 1 << 16)
    if op == "insert":
        text = doc["chip"]
        if not isinstance(text, str) or len(text) != UID_HEX:
            raise HandlerError(f"insert: chip must be {UID_HEX} hex digits")
        try:
            uid = bytes.fromhex(text)
        except ValueError as e:
            raise HandlerError(f"insert: chip must be {UID_HEX} hex digits") from e
        replace = doc.get("replace", False)
        if not isinstance(replace, bool):
            raise HandlerError("insert: replace must be true or false")
        return Request(op, socket, chip=uid, replace=replace)
    return Request(op, socket, after=_int(doc.get("after", 0), "after", MAX_AFTER))


def _int(value: Any, what: str, bound: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
        raise HandlerError(f"{what} must be an integer in [0, {bound})")
    return value


def ok(**fields: Any) -> bytes:
    return encode({"ok": True, **fields})


def error(code: str, message: str) -> bytes:
    return encode({"ok": False, "error": code, "message": message})


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode() + b"\n"
