"""Wire format of the link: canonical CBOR maps, size-limited.

request  = {"op": tstr, "args": {* tstr => any}}
response = {"ok": {* tstr => any}} / {"error": tstr, "message": tstr}

Every chip of a lot receives the same "rom.boot" request (the whole software image) and, for a
lot without inclusion proofs, the same "cm.begin": `decode_request` keeps the last one of those
it decoded, whose arguments are all immutable scalars, and finds it again by its bytes (equal
bytes decode to equal values: decoding is a pure function). The chip's checks of the values
run on every request all the same; the boot ROM then finds its parse of the image by identity.
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


_ALIKE = frozenset({"rom.boot", "cm.begin"})  # requests every chip of a lot may receive alike
_SCALARS = frozenset({bytes, str, int, bool, type(None)})
_last_alike: tuple[bytes, str, dict[str, Any]] | None = None


def decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    global _last_alike  # noqa: PLW0603 - one entry per process, replaced whole
    last = _last_alike
    if last is not None and type(data) is bytes and (data is last[0] or data == last[0]):
        return last[1], dict(last[2])  # a map of its own: no handler sees another's
    op, args = _decode_request(data)
    if op in _ALIKE and all(type(v) in _SCALARS for v in args.values()):
        _last_alike = (bytes(data), op, dict(args))
    return op, args


def _decode_request(data: bytes) -> tuple[str, dict[str, Any]]:
    m = cbor.expect_map(
        cbor.decode(
            data, limit=LIMITS.link_message, what="request", shape=LIMITS.link_message_shape
        ),
        "request",
        _REQUEST,
    )
    op = cbor.expect_name(m["op"], "request op", MAX_OP)
    args = cbor.expect(m["args"], dict, "request args")
    for k in args:
        if type(k) is not str:
            raise FormatError("request args: keys must be text")
    return op, args


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
