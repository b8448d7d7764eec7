"""Wire format of the link: canonical CBOR maps, size-limited.

request  = {"op": tstr, "args": {* tstr => any}}
response = {"ok": {* tstr => any}} / {"error": tstr, "message": tstr}

Every chip of a lot receives the same "rom.boot" request (the whole software image), the same
"cm.finish" and, for a lot without inclusion proofs, the same "cm.begin": `decode_request` keeps
the last few of those it decoded whose arguments are all immutable scalars (never a request
that carries a secret: no such op is among them), one per length, and finds one again by its
bytes (equal bytes decode to equal values: decoding is a pure function). The chip's checks of
the values run on every request all the same; the boot ROM then finds its parse of the image by
identity.
"""

from __future__ import annotations

from typing import Any

from trustprov.errors import ChipRefused, FormatError, TransportError
from trustprov.formats import cbor
from trustprov.formats.limits import LIMITS

MAX_OP = 32
MAX_MESSAGE_TEXT = 300
_REQUEST = frozenset({"op", "args"})


def encode_request(op: str, args: dict[str, Any]) -> bytes:
    return cbor.encode({"op": op, "args": args})


#: requests every chip of a lot may receive alike: a lot sends the same bytes to each chip
_ALIKE = frozenset({"rom.boot", "cm.begin", "cm.finish", "rom.make-identity", "rom.status"})
_SCALARS = frozenset({bytes, str, int, bool, type(None)})
#: requests kept, each by its length (a lot's flow sends a few alike), and their bytes in all:
#: a software image as large as a link message is kept alone
_KEPT, _KEPT_BYTES = 6, LIMITS.link_message
_kept: dict[int, tuple[bytes, str, dict[str, Any]]] = {}


def decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    kept = _kept.get(len(data)) if type(data) is bytes else None
    if kept is not None and (data is kept[0] or data == kept[0]):
        return kept[1], dict(kept[2])  # a map of its own: no handler sees another's
    op, args = _decode_request(data)
    if op in _ALIKE and all(type(v) in _SCALARS for v in args.values()):
        if len(_kept) >= _KEPT or sum(_kept) + len(data) > _KEPT_BYTES:
            _kept.clear()  # one step, whatever another thread does meanwhile
        _kept[len(data)] = (bytes(data), op, dict(args))
    return op, args


def _decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    value = cbor.decode(
        data, limit=LIMITS.link_message, what="request", shape=LIMITS.link_message_shape
    )
    check_canonical(value, data)
    m = cbor.expect_map(value, "request", _REQUEST)
    op = cbor.expect_name(m["op"], "request op", MAX_OP)
    args = cbor.expect(m["args"], dict, "request args")
    for k in args:
        if type(k) is not str:
            raise FormatError("request args: keys must be text")
    return op, args


def check_canonical(value: Any, data: bytes) -> None:
    """A request is canonical CBOR (protocol.md 1, 8.1): well-formed bytes in any other form
    (a longer head than needed, map keys out of order) are refused ``malformed``, so one
    request has one encoding. Its decoded value encodes back to exactly its bytes."""
    if cbor.encode(value) != data:
        raise FormatError("request: not canonical CBOR (shortest heads, keys in order)")


_EMPTY_OK = cbor.encode({"ok": {}})


def encode_ok(result: dict[str, Any]) -> bytes:
    return cbor.encode({"ok": result}) if result else _EMPTY_OK


def encode_error(code: str, message: str) -> bytes:
    return cbor.encode({"error": code, "message": message[:MAX_MESSAGE_TEXT]})


def decode_response(data: bytes) -> dict[str, Any]:
    """The result map, or raise `ChipRefused` with the chip's code and message."""
    if data == _EMPTY_OK:  # most answers of a provisioning run
        return {}
    try:
        m = cbor.expect(
            cbor.decode(
                data,
                limit=LIMITS.link_message,
                what="response",
                shape=LIMITS.link_message_shape,
            ),
            dict,
            "response",
        )
        if m.keys() == {"ok"}:
            result: dict[str, Any] = cbor.expect(m["ok"], dict, "response result")
            return result
        m = cbor.expect_map(m, "response", {"error", "message"})
        code = cbor.expect_name(m["error"], "response error", MAX_OP)
        message = cbor.expect(m["message"], str, "response message")[:MAX_MESSAGE_TEXT]
    except FormatError as e:
        raise TransportError(f"malformed response from chip: {e.message}") from e
    raise ChipRefused(message, code=code)
