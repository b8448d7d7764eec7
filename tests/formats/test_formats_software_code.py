"""The virtual chip's firmware image (the code archive) holds what the firmware runs, and only it:
the software imports and runs from the archive alone, nothing missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cbor2

from trustprov.formats.software import CODE_PARTS, CODE_ROOT, code_archive, code_modules

# Runs in a fresh interpreter: modules of CODE_PARTS come from the archive and from nowhere else
# (one missing fails the import); the chip's own modules (the hardware) come from the package.
_FROM_THE_ARCHIVE_ONLY = """
import importlib, importlib.abc, importlib.util, sys
import cbor2
archive = cbor2.loads(open(sys.argv[1], "rb").read())
parts = {p.removesuffix(".py") for p in sys.argv[2].split(",")}

class ArchiveOnly(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        names = name.split(".")
        if names[0] != "trustprov" or len(names) < 2 or names[1] not in parts:
            return None
        rel = "/".join(names[1:])
        for file, package in ((rel + "/__init__.py", True), (rel + ".py", False)):
            if file in archive:
                return importlib.util.spec_from_loader(
                    name, self, origin=file, is_package=package
                )
        raise ModuleNotFoundError(f"{name} is not in the code archive", name=name)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        origin = module.__spec__.origin
        module.__file__ = sys.argv[3] + "/" + origin  # where the chip's loader put it
        exec(compile(archive[origin], origin, "exec"), module.__dict__)

sys.meta_path.insert(0, ArchiveOnly())
for file in sorted(archive):
    if file.startswith("firmware/"):
        importlib.import_module("trustprov." + file.removesuffix(".py").replace("/", ".")
                                .removesuffix(".__init__"))
for file in sorted(archive):  # what the firmware imports inside its functions too
    importlib.import_module("trustprov." + file.removesuffix(".py").replace("/", ".")
                            .removesuffix(".__init__"))
import trustprov.chip.device
print(sorted(m for m in sys.modules if m.startswith("trustprov.") and
             m.split(".")[1] in parts))
"""


def _run(tmp_path: Path, archive: bytes) -> subprocess.CompletedProcess[str]:
    image = tmp_path / "code.cbor"
    image.write_bytes(archive)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            _FROM_THE_ARCHIVE_ONLY,
            str(image),
            ",".join(CODE_PARTS),
            str(CODE_ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_software_imports_from_its_archive_alone(tmp_path: Path) -> None:
    result = _run(tmp_path, code_archive())
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = eval(result.stdout)  # noqa: S307 - a list literal our own script printed
    # every module of the libraries it loaded came from the archive (the finder allows no other)
    assert "trustprov.firmware.commands" in loaded
    assert "trustprov.formats.cbor" in loaded
    assert len(loaded) == len(cbor2.loads(code_archive()))


def test_a_module_left_out_of_the_archive_is_missed(tmp_path: Path) -> None:
    """The check above fails when the archive lacks a module the firmware runs with."""
    files = cbor2.loads(code_archive())
    del files["formats/cbor.py"]
    result = _run(tmp_path, cbor2.dumps(files, canonical=True))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "Error" in last, last
    assert "cbor" in last, last


def test_the_archive_leaves_out_what_the_firmware_never_imports() -> None:
    """The host's modules of the libraries (link framing, lot files, text, tokens) stay out."""
    names = code_modules()
    assert "firmware/commands.py" in names
    assert "errors.py" in names
    for host_only in ("frame", "bundle_file", "lot", "lotsig", "expected", "text", "token"):
        assert f"formats/{host_only}.py" not in names, host_only
    assert all((CODE_ROOT / n).is_file() for n in names)
