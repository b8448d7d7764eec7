"""An error about a file a command was given names that file, and says what it is if it is
another trustprov artifact: "sw.cose: this is signed provisioning software, not a sealed bundle".

`inputs` declares a command's input files (by parameter name) and what each must be. Before the
command runs, each is sniffed (its first 32 bytes, with the recogniser of `trustprov inspect`,
`roles.inspect`): a file that is plainly another trustprov artifact is refused at once. If the
command then fails on an artifact (`FormatError`, `InputError`) with a message that names none
of its files, each input is recognised in full, and the one at fault is named: another kind
of artifact, another sealed value, or a damaged or unknown file where that kind was expected.

Invariants: the recogniser shows nothing secret (roles/inspect/__init__.py), so neither do these
messages; a message that already names one of the files is left as it is; an error of the
combination (two files of different families) that no single file explains passes unchanged.
The recognising runs only on the error path and for files of bounded size, so a command's
normal run pays for 32 bytes read per input.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from trustprov.errors import ArtifactError, FormatError, InputError, TrustprovError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
_DESCRIBE_MAX = 4 * 1024 * 1024  # larger files are named by their first bytes only


@dataclass(frozen=True)
class Expect:
    """What an input file must be."""

    what: str  # as in "not <what>"
    sniffs: frozenset[str]  # the coarse kinds of roles.sniff.sniff_file it may start as
    kinds: frozenset[str]  # the kinds of roles.inspect.describe it may be
    peer: bool = True  # from a peer (wrong: exit 1), or the operator's own (wrong: exit 2)
    sealed: str | None = None  # a sealed value: which one
    #: whether a file that the recogniser cannot read is at fault: not for inputs that may
    #: be in a format of the world (a DER certificate, JSON-lines receipts, a farm)
    describable: bool = True
    #: for such a format, a check that raises on a file that is not one
    check: Callable[[bytes], object] | None = None


def _public_key(data: bytes) -> object:
    from trustprov.crypto.keys import load_public_key  # noqa: PLC0415 - the error path only

    return load_public_key(data)


def _certificate(data: bytes) -> object:
    from cryptography import x509  # noqa: PLC0415 - the error path only

    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as e:
        raise FormatError("not an X.509 certificate (PEM or DER)") from e


def _e(what: str, sniffs: Iterable[str], kinds: Iterable[str], **kw: Any) -> Expect:
    return Expect(what, frozenset(sniffs), frozenset(kinds), **kw)


SOFTWARE = _e("signed provisioning software", ["software"], ["software"])
BUNDLE = _e("a sealed bundle", ["bundle"], ["bundle"])
OEM_SHARE = _e("ENC(OEM_SHARE)", ["sealed-value"], ["sealed-value"], sealed="oem-share")
OEM_RND_INPUT = _e("ENC(OEM_RND_INPUT)", ["sealed-value"], ["sealed-value"], sealed="oem-rnd-input")
RND_SHARE = _e("ENC(RND_SHARE)", ["sealed-value"], ["sealed-value"], sealed="rnd-share")
AUTH = _e("an authorized set (AUTH)", ["authorized-set"], ["authorized-set"])
PUBLIC_KEY = _e(
    "a public key", ["pem", "unknown"], ["public-key"], describable=False, check=_public_key
)
CERTIFICATE = _e(
    "a certificate", ["pem", "unknown"], ["certificate"], describable=False, check=_certificate
)
LOT_MANIFEST = _e("a lot manifest", ["json"], ["lot-manifest"])
RECEIPTS = _e("chip receipts", ["software", "json"], ["receipts"], describable=False)
FARM = _e("a chip farm", ["sqlite", "unknown"], ["farm"], peer=False, describable=False)
ASSET_LIST = _e("an asset list", ["toml", "unknown"], ["asset-list"], peer=False)
OEM_JSON = _e("the OEM's oem.json", ["json"], ["oem-metadata"], peer=False)

#: the files of an OEM_DIR that `oem regen --state` reads
OEM_STATE: tuple[tuple[str, Expect], ...] = (
    ("enc-oem-rnd-input.cose", OEM_RND_INPUT),
    ("enc-rnd-share.cose", RND_SHARE),
    ("oem.json", OEM_JSON),
)

#: a parameter's declared input: what its file (or each of its files) must be, or for a
#: directory, the files in it
Spec = Expect | tuple[tuple[str, Expect], ...]


def inputs(**spec: Spec) -> Callable[[F], F]:
    """Declare a command's input files by parameter name (see the module docstring)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            files = list(_files(spec, kwargs))
            for path, expect in files:
                precheck(path, expect)
            try:
                return command(*args, **kwargs)
            except (FormatError, InputError) as e:
                named = _diagnose(files, e)
                if named is None:
                    raise
                raise named from e

        run.trustprov_inputs = spec  # type: ignore[attr-defined]  # read by tests/cli
        return run  # type: ignore[return-value]  # the same signature, wrapped

    return decorate


def _files(spec: dict[str, Spec], kwargs: dict[str, Any]) -> Iterable[tuple[Path, Expect]]:
    for name, expect in spec.items():
        value = kwargs.get(name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if v is None:
                continue
            if isinstance(expect, Expect):
                yield Path(v), expect
            else:
                for inside, what in expect:
                    yield Path(v) / inside, what


def _error(expect: Expect, message: str, like: TrustprovError | None = None) -> TrustprovError:
    if like is not None:
        return type(like)(message, code=like.code)
    return FormatError(message) if expect.peer else InputError(message)


def precheck(path: Path, expect: Expect) -> None:
    """Refuse a file that plainly is another trustprov artifact, before any work."""
    from trustprov.roles.sniff import sniff_file  # noqa: PLC0415 - lazy: start-up

    if not path.is_file():
        return  # the command's reader says what is wrong with it
    sniffed = sniff_file(path)
    log.debug(
        "input %s (%s): %d bytes, starts as %s", path, expect.what, path.stat().st_size, sniffed
    )
    if sniffed == "unknown" or sniffed in expect.sniffs:
        return
    raise _error(expect, f"{path}: this is {_it_is(path, sniffed)}, not {expect.what}")


def _it_is(path: Path, sniffed: str) -> str:
    from trustprov.roles.inspect import describe  # noqa: PLC0415
    from trustprov.roles.inspect.description import what_it_is  # noqa: PLC0415 - the error path
    from trustprov.roles.sniff import sniffed_what  # noqa: PLC0415

    if sniffed == "sqlite":
        return "an SQLite database (a chip farm or a records store)"
    try:
        if path.stat().st_size <= _DESCRIBE_MAX:
            return what_it_is(describe(path))
    except (TrustprovError, OSError):
        pass
    return f"a {sniffed_what(sniffed)}"


def _diagnose(files: list[tuple[Path, Expect]], error: TrustprovError) -> TrustprovError | None:
    """The error restated about the file at fault; None to let ``error`` pass as it is."""
    from trustprov.roles.inspect import describe  # noqa: PLC0415 - the error path
    from trustprov.roles.inspect.description import what_it_is  # noqa: PLC0415 - the error path
    from trustprov.roles.sniff import sniff_file  # noqa: PLC0415 - the error path

    if any(str(p) in error.message for p, _ in files):
        return None  # it names its file already
    for path, expect in files:
        if not path.is_file() or path.stat().st_size > _DESCRIBE_MAX:
            continue
        try:
            found = describe(path)
        except (InputError, ArtifactError):
            if not expect.describable:
                if expect.check is not None and (why := _fails(expect.check, path)) is not None:
                    said = why if why.startswith("not ") else f"not {expect.what} ({why})"
                    return _error(expect, f"{path}: {said}", error)
                continue
            sniffed = sniff_file(path)
            noun = expect.what.removeprefix("a ").removeprefix("an ")
            lead = f"a damaged {noun}" if sniffed in expect.sniffs else f"not {expect.what}"
            return _error(expect, f"{path}: {lead} ({error.message})", error)
        if found.kind not in expect.kinds:
            return _error(expect, f"{path}: this is {what_it_is(found)}, not {expect.what}", error)
        if expect.sealed is not None and found.fields.get("value") != expect.sealed:
            return _error(expect, f"{path}: this is {what_it_is(found)}, not {expect.what}", error)
    return None


def _fails(check: Callable[[bytes], object], path: Path) -> str | None:
    """Why ``check`` refuses the file at ``path``; None if it takes it."""
    try:
        check(path.read_bytes())
    except TrustprovError as e:
        return e.message
    return None
