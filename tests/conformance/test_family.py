"""The published test family: the checked-in file is what its script makes from fixed seeds,
its values are printed in docs/protocol.md, and it is consistent with the vectors."""

from __future__ import annotations

import json
from pathlib import Path

from trustprov.conformance.family import TestFamily
from trustprov.crypto.keys import public_key_der
from trustprov.formats.immutable import ImmutableMemory

from . import generate_family

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_the_checked_in_family_is_what_the_script_makes() -> None:
    assert generate_family.OUT.read_text(encoding="utf-8") == generate_family.render(
        generate_family.compute()
    ), "run: python tests/conformance/generate_family.py"


def test_the_spec_publishes_every_value() -> None:
    doc = json.loads(generate_family.OUT.read_text(encoding="utf-8"))
    text = PROTOCOL.read_text(encoding="utf-8").replace("\n", " ")
    for name in (
        "family_id",
        "hw_share",
        "rom_share",
        "k_oem_share",
        "k_oem_master_share",
        "signing_key_ed25519",
        "wrong_key_ed25519",
        "device_ca_material",
        "other_oem_rnd_input",
        "other_rnd_share",
    ):
        assert doc[name] in text, f"{name} is not in docs/protocol.md"
    for name in ("suite_keys", "wrong_suite_keys"):
        for alg, material in doc[name].items():
            assert material in text, f"{name} {alg} is not in docs/protocol.md"


def test_the_family_derives_the_vector_domain_and_burns() -> None:
    family = TestFamily.load()
    assert family.oem_keys(family.oem_share).domain_id == family.vector.domain_id
    image = ImmutableMemory.from_bytes(family.immutable().to_bytes())
    assert image.software_keys == (public_key_der(family.signing_key),)
    assert image.software_suite == "EdDSA"
    assert "hw_share" not in repr(family)
    assert family.hw_share.hex() not in repr(family)
    # EdDSA: the same image every time, so a port's maker can reproduce it byte for byte
    assert family.sign(b"code", 3) == family.sign(b"code", 3)
