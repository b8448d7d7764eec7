r"""Bounds on JSON and TOML text (lot manifests, asset lists), as `cbor._scan` is for CBOR; and
`printable`, the one way text from outside (a file, a records store, a chip, a board) is shown.

Invariants: `printable` returns text in which no character can drive a terminal or disguise the
text around it: every character that `str.isprintable` rejects (C0 and C1 controls, DEL, the
Unicode format characters such as the bidi overrides, line and paragraph separators, spaces
other than U+0020, surrogates, private-use and unassigned code points) is written as its Python
escape (``\x1b``, ``\u202e``, ``\U000e0001``); every other character is kept, so normal text is
unchanged and escaping twice changes nothing.

`check_items` runs on the raw bytes before any parser and costs a few passes of ``bytes.count``
(C speed, no allocation); it is an upper bound, never an undercount, so a text it lets through
builds at most ``max_items`` values. `check_depth` runs on the parsed
value, whose size the item bound already limits, and refuses nesting beyond ``max_depth``.
"""

from __future__ import annotations

from typing import Any

from trustprov.errors import FormatError

# In JSON every value and key but the first of the text follows "[", "{", "," or ":". In TOML
# each "=" makes a key and a value, each "." of a dotted key or table header a key and a
# table, each "[" or "{" a table or the first element of an array, each "," one more element.
# A byte inside a string or comment only adds to the count.
_JSON_STARTS = (b"[", b"{", b",", b":")
_TOML_STARTS = (b"[", b"{", b",", b"=", b".")


def printable(text: str) -> str:
    r"""``text`` with every character a terminal would act on, or that would disguise the text
    around it, escaped as Python writes it (``\x1b`` as the four characters ``\``, ``x``, ``1``,
    ``b``); anything else unchanged. Newlines are escaped too: one value is one line."""
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def check_items(data: bytes, max_items: int, what: str, *, toml: bool = False) -> None:
    starts = _TOML_STARTS if toml else _JSON_STARTS
    # "=" and "." start a key and a value (two items) in TOML
    weight = {b"=": 2, b".": 2}
    bound = 1 + sum(data.count(c) * weight.get(c, 1) for c in starts)
    if bound > max_items:
        raise FormatError(f"{what}: more than {max_items} items")


def check_depth(value: Any, max_depth: int, what: str) -> None:
    """Refuse lists and maps nested more than ``max_depth`` deep (a scalar has depth 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth >= max_depth:
                raise FormatError(f"{what}: nested deeper than {max_depth}")
            children = v.values() if isinstance(v, dict) else v
            stack.extend((c, depth + 1) for c in children)
