"""Shared option types (UIDs, lot names, output paths, secrets read from files, the records
store) and the options several commands take.

An option that several commands take (--auth, --icm-key, --records and its password file,
--idle-timeout, the desk chip's and the other options oem keygen and regen share) is defined here
once: its name, type, bounds and default; each command says in its help what it does with it
(tests/cli/test_cli_options.py walks the tree). How a command writes its output and takes
-v/-q/--debug is `cli/output.py`.

Invariants:
- A secret (a password, a token) is read from a file only its owner can reach, or a pipe: one
  line, at most `SECRET_FILE_MAX` bytes, and no error shows a byte of it.
- A missing SQLite records store is refused before SQLAlchemy is imported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trustprov.errors import InputError

UID_HEX_LEN = 32
F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED = 1  # a chip refused, an artifact failed to verify, or chips failed
EXIT_USAGE = 2  # bad input or usage
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of standard output went away


def parse_uid(text: str) -> bytes:
    if len(text) != UID_HEX_LEN:  # bytes.fromhex would also take spaces
        raise InputError(f"chip UID must be {UID_HEX_LEN} hex digits")
    try:
        uid = bytes.fromhex(text)
    except ValueError as e:
        raise InputError(f"chip UID {text!r} is not hex") from e
    if len(uid) * 2 != UID_HEX_LEN:
        raise InputError(f"chip UID must be {UID_HEX_LEN} hex digits")
    return uid


def lot_name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--lot`` callback: a name no lot can have (bytes that are not UTF-8 included, which
    reach Python as lone surrogates) is a usage error, not a query the records cannot run."""
    if value is None:
        return None
    from trustprov.errors import FormatError  # noqa: PLC0415 - lazy: start-up
    from trustprov.formats.lot_name import check_lot_name  # noqa: PLC0415 - lazy: start-up

    try:
        check_lot_name(value)
    except FormatError as e:
        shown = ascii(value) if len(value) <= 80 else ascii(value[:80]) + "..."
        raise click.BadParameter(
            f"{shown} is no lot name: 1-64 of letters, digits, '.', '_', '-', starting alnum",
            param=param,
        ) from e
    return value


def path_option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """A required path option; existence is checked by the tools, with their own one-line error."""
    option: Callable[[F], F] = click.option(
        *names, type=click.Path(path_type=Path), required=True, **kwargs
    )
    return option


def read_board_token(path: Path | None, option: str = "--token-file") -> str | None:
    """A chip board's token (docs/protocol.md 13.1): the secret of ``path`` (as every secret
    file: `read_secret_file`), or else the environment's TRUSTPROV_BOARD_TOKEN; None if
    neither. Never a command-line value: any local user reads those in ``ps``. The error never
    quotes what the file holds."""
    from trustprov.formats.token import BOARD_TOKEN_ENV, check_token  # noqa: PLC0415 - lazy

    if path is not None:
        return check_token(read_secret_file(path, option), f"the token in {path}")
    given = os.environ.get(BOARD_TOKEN_ENV)
    return check_token(given, BOARD_TOKEN_ENV) if given else None


def force_option(what: str) -> Callable[[F], F]:
    """``--force``: replace an existing regular file at an output path (never anything else)."""
    option: Callable[[F], F] = click.option(
        "--force", is_flag=True, help=f"Replace an existing {what} (a regular file only)."
    )
    return option


def plural(n: int, noun: str) -> str:
    """``n`` of ``noun``, as a person writes it: "1 chip", "4 chips"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- secrets from files, never from the command line ------------------------------------------
SECRET_FILE_MAX = 4096  # bytes: a password or a token, not a document


def read_secret_file(path: Path, option: str) -> str:
    """The one secret in ``path`` (a password, a token), for ``option``: a file only its owner
    can read or write (as libpq wants of ~/.pgpass), or a pipe (``<(pass show db)``); one line,
    its line break dropped. No error shows a byte of it."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{option} {path}: {e.strerror or 'cannot read it'}") from e
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{option} {path}: a directory, not a file")
    if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"{option} {path}: other users can reach it (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"make it private: chmod 600 {path}"
        )
    try:
        with open(path, "rb") as f:
            data = f.read(SECRET_FILE_MAX + 1)
    except OSError as e:
        raise InputError(f"{option} {path}: {e.strerror or 'cannot read it'}") from e
    if len(data) > SECRET_FILE_MAX:
        raise InputError(f"{option} {path}: larger than {SECRET_FILE_MAX} bytes; not one secret")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{option} {path}: not UTF-8 text") from e
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise InputError(f"{option} {path}: empty")
    if any(c in secret for c in "\r\n\x00"):
        raise InputError(f"{option} {path}: more than one line; the file holds the secret alone")
    return secret


# -- the records store, found as `cm provision` finds it ------------------------------------
RECORDS_HELP = (
    "Records store: sqlite:///PATH or postgresql://USER@HOST/DB, with no password in it "
    "(PostgreSQL's password: --records-password-file, or where libpq looks: PGPASSWORD, "
    "~/.pgpass or PGPASSFILE, a service file)"
)


def records_option(help: str, *, required: bool = False) -> Callable[[F], F]:
    """--records URL: a records store (a station's, or the ICM line's); ``help`` says whose and
    its default. Its password never in it: `records_password_option`, `records_password`."""
    option: Callable[[F], F] = click.option("--records", required=required, default=None, help=help)
    return option


_RECORDS = records_option(
    f"{RECORDS_HELP} [default, as cm provision: sqlite:///FARM_DIR/records.sqlite with "
    "--farm or --manifest, else ./records.sqlite]."
)
_WHERE: Callable[[Any], Any] = click.option(
    "--farm",
    "where",
    type=click.Path(path_type=Path),
    default=None,
    help="The farm (or lot manifest) cm provision was given: the records beside it.",
)
records_password_option: Callable[[F], F] = click.option(
    "--records-password-file",
    "records_password_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A file holding the PostgreSQL password of --records, alone (only its owner may read "
    "it: mode 0600; or a pipe) [default: PGPASSWORD, ~/.pgpass or PGPASSFILE, a service file].",
)


def records_url(records: str | None, where: Path | None) -> str:
    """--records, or where `cm provision` puts the records by default: beside its farm or
    manifest, which for a farm in the current directory is ./records.sqlite."""
    if records is not None:
        if where is not None:
            raise InputError("--records and --farm exclude each other: give one")
        _check_sqlite_file(records)
        return records
    base = where.resolve().parent if where is not None else Path.cwd()
    path = base / "records.sqlite"
    if not path.exists():
        raise InputError(
            f"no records at {path}; give --records URL (or --farm FARM, as to cm provision)"
        )
    return f"sqlite:///{path}"


def _check_sqlite_file(url: str) -> None:
    """A plain ``sqlite:///PATH`` whose file is not there is refused as the store itself refuses
    it (`line.records.RecordStore`), before the store's engine (SQLAlchemy) is imported: a
    mistyped path costs no start-up. Any other URL is left to the store to parse."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or any(c in url for c in "%?#"):
        return
    path = Path(url[len(prefix) :])
    if path.name and path.parent.is_dir() and not path.exists():
        raise InputError(f"no records store at {path}")


def records_password(url: str, password_file: Path | None) -> str | None:
    """The password of the records store ``url``, from --records-password-file, or None (libpq
    then looks where PostgreSQL always does). A URL that carries a password is refused: on a
    command line every user of the machine reads it (docs/protocol.md section 9)."""
    from trustprov.line.records import check_no_password  # noqa: PLC0415 - lazy: start-up

    check_no_password(url)
    if password_file is None:
        return None
    return read_secret_file(password_file, "--records-password-file")


def records_options(command: F) -> F:
    """--records URL, or --farm FARM for the records `cm provision` keeps beside it; and
    --records-password-file."""
    return _RECORDS(_WHERE(records_password_option(command)))  # type: ignore[no-any-return]  # click's decorators


# -- options several commands share: each defined here once, its help said by the command -----
def auth_option(help: str) -> Callable[[F], F]:
    """--auth AUTH: an authorized set of `oem authorize`; ``help`` says what the command does
    with it (seals it into a bundle, gives each chip its proof, counts missing chips)."""
    option: Callable[[F], F] = click.option(
        "--auth", type=click.Path(path_type=Path), default=None, help=help
    )
    return option


def board_token_file_option(
    help: str = "A file whose first line is the boards' handler token (also from "
    "TRUSTPROV_BOARD_TOKEN): a board listening beyond loopback requires it.",
) -> Callable[[F], F]:
    """--board-token-file FILE: the boards' handler token, read with `read_board_token`."""
    option: Callable[[F], F] = click.option(
        "--board-token-file", type=click.Path(path_type=Path), default=None, help=help
    )
    return option


def icm_key_option(help: str) -> Callable[[F], F]:
    """--icm-key PEM: the ICM's lot-signing public key, that every lot manifest given must be
    signed by; ``help`` names the lots of the command."""
    option: Callable[[F], F] = click.option(
        "--icm-key", type=click.Path(path_type=Path), default=None, help=help
    )
    return option


#: the longest idle timeout a chip takes (docs/protocol.md 12.5; 10 s by default): an hour
IDLE_TIMEOUT_MAX = 3600


def idle_timeout_option(help: str) -> Callable[[F], F]:
    """--idle-timeout S: seconds of silence after which a chip ends an open session, one bound
    for every command that runs a chip (chip serve, chip run, chip conformance)."""
    option: Callable[[F], F] = click.option(
        "--idle-timeout",
        type=click.FloatRange(0.05, IDLE_TIMEOUT_MAX),
        default=10.0,
        show_default=True,
        help=help,
    )
    return option


def desk_chip_options(command: F) -> F:
    """Where the OEM's provisioning chip is (oem keygen, oem regen): behind a port, or in a
    farm (a rehearsal)."""
    for option in reversed(
        (
            click.option(
                "--port",
                default=None,
                help="The provisioning chip behind a port: serial:///dev/ttyUSB0?baud=N, "
                "tcp://HOST:PORT, or a board's socket (instead of --farm and --chip).",
            ),
            click.option(
                "--ca",
                type=click.Path(path_type=Path),
                default=None,
                help="The ICM's device CA (PEM or DER): the chip's certificate must chain to it "
                "before the chip is sent anything (required with --port).",
            ),
            click.option(
                "--farm",
                type=click.Path(path_type=Path),
                default=None,
                help="Farm holding the OEM's provisioning chip (a rehearsal).",
            ),
            click.option("--chip", "uid", default=None, help="UID of the chip in --farm (hex)."),
        )
    ):
        command = option(command)
    return command


#: the other options oem keygen and oem regen share, besides `desk_chip_options`
SOFTWARE_OPTION = path_option("--software", help="The signed provisioning software.")
ASSETS_OPTION = path_option("--assets", help="The asset list (TOML).")
SEAL_AUTH_OPTION = auth_option(
    "An authorized set (oem authorize): only its chips install the bundle "
    "[default: any chip of the family]."
)


def json_option(what: str = "the result") -> Callable[[F], F]:
    """``--json``: the command's result as one JSON object on stdout (status stays on stderr)."""
    option: Callable[[F], F] = click.option(
        "--json", "as_json", is_flag=True, help=f"Print {what} as one JSON object."
    )
    return option
