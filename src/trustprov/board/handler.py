"""The board's handler protocol: JSON lines that place chips in sockets (docs/protocol.md,
"Chip board: handler protocol").

Each request and each response is one UTF-8 JSON object on one line ending in LF. A request
line is at most `MAX_REQUEST` bytes with its LF; a longer one is answered ``too-long`` and the
connection closed. Requests::

    {"op": "status"}
    {"op": "chips"}                                      the UIDs of the chips the board holds
    {"op": "insert", "socket": K, "chip": "<32 hex>", "replace": true}   replace: optional
    {"op": "remove", "socket": K}
    {"op": "power-cycle", "socket": K, "after": N}      N >= 0 bytes of input, default 0 (now)
    {"op": "kill", "socket": K}                          the socket stops answering (a fault)
    {"op": "auth", "token": "<token>"}                   first, on a board that has a token

Responses: ``{"ok": true, ...}`` or ``{"ok": false, "error": CODE, "message": TEXT}``.
Edge cases (13.1): the chip already in socket K inserted into K again is ``occupied``, or with
``replace`` seated afresh (a power cycle); a dead socket refuses ``insert`` and ``power-cycle``
(``dead``) but takes ``remove`` and ``kill``; ``power-cycle`` of an empty socket does nothing.

Invariants: `parse_request` accepts exactly the seven forms above (each field once, of its type,
no other field) and raises `HandlerError` for anything else; nothing here touches a chip. A
board bound beyond loopback has a token (`formats.token`), and a connection that has not
presented it is answered nothing but ``unauthorized``; the token never reaches a log, an
answer or a repr.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trustprov.errors import TrustprovError
from trustprov.formats.token import TOKEN_MAX

MAX_REQUEST = 256
UID_HEX = 32
MAX_CHIPS_LISTED = 20_000  # ~36 bytes each: the answer stays under the host's 1 MiB bound
MAX_AFTER = 1 << 32
OPS = ("status", "chips", "insert", "remove", "power-cycle", "kill", "auth")


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
    token: str = field(default="", repr=False)  # auth


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose every key is given once: ``{"op":"status","op":"kill"}`` is not
    taken as its last "op" (what json.loads does by default)."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise HandlerError("request repeats a field")
    return doc


def parse_request(line: bytes) -> Request:
    if len(line) > MAX_REQUEST:
        raise HandlerError(f"request longer than {MAX_REQUEST} bytes", code="too-long")
    try:
        doc = json.loads(line.decode("utf-8"), object_pairs_hook=_pairs)
    except (UnicodeDecodeError, ValueError) as e:
        raise HandlerError("request is not one JSON object") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("op"), str) or doc["op"] not in OPS:
        raise HandlerError(f"request needs an op, one of {', '.join(OPS)}")
    op = doc["op"]
    allowed = {
        "status": {"op"},
        "chips": {"op"},
        "insert": {"op", "socket", "chip", "replace"},
        "remove": {"op", "socket"},
        "power-cycle": {"op", "socket", "after"},
        "kill": {"op", "socket"},
        "auth": {"op", "token"},
    }[op]
    required = allowed - {"after", "replace"}
    if not required <= doc.keys() <= allowed:
        raise HandlerError(f"{op}: fields are {sorted(allowed)}")
    if op in ("status", "chips"):
        return Request(op)
    if op == "auth":
        token = doc["token"]
        if not isinstance(token, str) or not 0 < len(token) <= TOKEN_MAX:
            raise HandlerError(f"auth: token must be a string of 1 to {TOKEN_MAX} characters")
        return Request(op, token=token)
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
