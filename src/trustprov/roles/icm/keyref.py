"""Key references: where a private key of the ICM lives, a file or an RFC 7512 ``pkcs11:`` URI.

A reference is either a path (relative to the ICM directory unless absolute) of an unencrypted
PKCS#8 PEM file, or a URI such as::

    pkcs11:token=icm;object=prov-signing?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/icm.pin

Path attributes ``token`` (required), ``object`` and ``id``; query attributes ``module-path``
(required unless TRUSTPROV_PKCS11_MODULE names the module) and ``pin-source`` (``file:PATH``).
The PIN is never part of a reference: ``pin-value`` is refused, so that it never sits on a
command line, in a shell history or in icm.json. It comes from ``pin-source``, else from the
TRUSTPROV_PKCS11_PIN environment variable, else from a prompt on a terminal.
Invariants: a `Pkcs11Uri` holds no PIN and its str() is a URI that parses back to it.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote

from trustprov.errors import InputError

SCHEME = "pkcs11:"
PIN_ENV = "TRUSTPROV_PKCS11_PIN"
MODULE_ENV = "TRUSTPROV_PKCS11_MODULE"
MAX_PIN_FILE = 256
_PATH_ATTRS = {"token", "object", "id", "type"}
_QUERY_ATTRS = {"module-path", "pin-source"}
_SAFE = "-._~:/"  # RFC 7512 pchar minus the separators, kept readable


@dataclass(frozen=True)
class Pkcs11Uri:
    """An RFC 7512 reference to a token, and to an object in it when ``object`` is set."""

    token: str
    module_path: str
    object: str | None = None
    id: bytes | None = None
    pin_source: str | None = None

    def with_object(self, label: str) -> Pkcs11Uri:
        return replace(self, object=label, id=None)

    def __str__(self) -> str:
        path = [f"token={quote(self.token, safe=_SAFE)}"]
        if self.object is not None:
            path.append(f"object={quote(self.object, safe=_SAFE)}")
        if self.id is not None:
            path.append("id=" + "".join(f"%{b:02X}" for b in self.id))
        query = [f"module-path={quote(self.module_path, safe=_SAFE)}"]
        if self.pin_source is not None:
            query.append(f"pin-source={quote(self.pin_source, safe=_SAFE)}")
        return SCHEME + ";".join(path) + "?" + "&".join(query)


def is_pkcs11(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_pkcs11_uri(text: str, env: Mapping[str, str] = os.environ) -> Pkcs11Uri:
    """Parse a ``pkcs11:`` URI; anything malformed or carrying a PIN is an `InputError`."""
    if not is_pkcs11(text):
        raise InputError("a PKCS#11 key reference starts with 'pkcs11:'")
    body = text[len(SCHEME) :]
    path_part, _, query_part = body.partition("?")
    path = _attributes(path_part, ";", _PATH_ATTRS)
    query = _attributes(query_part, "&", _QUERY_ATTRS)
    if "token" not in path:
        raise InputError("PKCS#11 URI: 'token=' is required")
    module = query.get("module-path") or env.get(MODULE_ENV)
    if not module:
        raise InputError(f"PKCS#11 URI: 'module-path=' is required (or set {MODULE_ENV})")
    pin_source = query.get("pin-source")
    if pin_source is not None and not pin_source.startswith("file:"):
        raise InputError("PKCS#11 URI: pin-source must be file:PATH")
    id_ = path.get("id")
    return Pkcs11Uri(
        token=path["token"],
        module_path=module,
        object=path.get("object"),
        id=id_.encode("latin-1") if id_ is not None else None,
        pin_source=pin_source,
    )


def _attributes(part: str, sep: str, known: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, part.split(sep)):
        name, eq, value = item.partition("=")
        if name in ("pin-value", "pin"):
            raise InputError(
                "PKCS#11 URI: a PIN is never part of a key reference; use pin-source=file:PATH, "
                f"{PIN_ENV} or the prompt"
            )
        if not eq or name not in known:
            raise InputError(f"PKCS#11 URI: unsupported attribute {name!r}")
        if name in out:
            raise InputError(f"PKCS#11 URI: {name!r} given twice")
        # latin-1 keeps every percent-encoded byte of an id as one character
        out[name] = unquote(value, encoding="latin-1" if name == "id" else "utf-8")
    return out


def read_pin(
    uri: Pkcs11Uri,
    env: Mapping[str, str] = os.environ,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """The user PIN of the token: pin-source file, then TRUSTPROV_PKCS11_PIN, then a prompt."""
    if uri.pin_source is not None:
        path = Path(uri.pin_source[len("file:") :])
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PIN_FILE + 1)
        except OSError as e:
            raise InputError(f"cannot read the PIN file {path}: {e.strerror}") from e
        if len(data) > MAX_PIN_FILE:
            raise InputError(f"{path}: not a PIN file (over {MAX_PIN_FILE} bytes)")
        return data.decode("utf-8", "replace").rstrip("\r\n")
    if env.get(PIN_ENV):
        return env[PIN_ENV]
    if prompt is None and sys.stdin.isatty():
        prompt = getpass.getpass
    if prompt is None:
        raise InputError(
            f"PIN for token {uri.token!r}: give pin-source=file:PATH in the URI or set {PIN_ENV}"
        )
    return prompt(f"PIN for PKCS#11 token {uri.token}: ")
