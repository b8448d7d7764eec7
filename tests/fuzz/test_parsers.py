"""Every parser of untrusted bytes that takes bytes alone, on random bytes and on each mutation
strategy of valid artifacts. The asset list and the chip's port have modules of their own (they
need files and chips around them)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import properties
from .engine import Fuzzer, fuzz_settings

NAMES = [
    "cbor.decode",  # the strict, size-limited decoder under every other parser
    "cose.decode[16]",  # COSE_Encrypt0
    "cose.decode[17]",  # COSE_Mac0
    "cose.decode[18]",  # COSE_Sign1
    "SignedSoftware.from_bytes",  # the signed provisioning software
    "SealedValue.from_bytes",  # ENC(OEM_SHARE), ENC(OEM_RND_INPUT), ENC(RND_SHARE)
    "SignedManifest.from_bytes",  # the manifest in its COSE_Mac0
    "Manifest.from_payload",
    "Bundle.from_bytes",
    "BundleIndex.read",  # the bundle file indexed from its heads (cm provision)
    "ImmutableMemory.from_bytes",  # the image the boot ROM accepts once (rom.burn)
    "LotManifest.from_json",  # JSON from the ICM, with PEM certificates inside
    "decode_request",  # the chip's side of the link
    "decode_response",  # the host's side of the link
    "Receipt.from_bytes",  # a chip's receipt, as the CM hands it to the OEM
    "Attestation.from_bytes",  # a chip's attestation token, as a board hands it to the station
]


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings()
@given(data=st.binary(max_size=properties.MAX_RANDOM))
def test_random_bytes(fuzzers: dict[str, Fuzzer], name: str, data: bytes) -> None:
    properties.random_bytes(fuzzers[name], data)


@pytest.mark.parametrize("strategy", properties.STRATEGIES)
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings()
@given(rng=st.randoms(use_true_random=False))
def test_generated(
    fuzzers: dict[str, Fuzzer], name: str, strategy: str, rng: random.Random
) -> None:
    properties.generated(fuzzers[name], rng, strategy)
