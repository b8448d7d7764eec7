"""trustprov.crypto.kdf: input checks and separation of outputs."""

from __future__ import annotations

import pytest

from trustprov.crypto.kdf import KEY_LEN, MAX_OUTPUT, kdf

KEY = bytes(range(32))


@pytest.mark.parametrize("key_len", [0, 16, 24, 31, 33, 64])
def test_key_must_be_32_bytes(key_len: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        kdf(bytes(key_len), "label", b"ctx")


@pytest.mark.parametrize("length", [0, -1, MAX_OUTPUT + 1, 10**6])
def test_output_length_out_of_range(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        kdf(KEY, "label", b"ctx", length)


@pytest.mark.parametrize("length", [1, 15, 16, 17, 32, 100, MAX_OUTPUT])
def test_output_has_the_requested_length(length: int) -> None:
    assert len(kdf(KEY, "label", b"ctx", length)) == length


def test_default_length_is_a_key() -> None:
    assert len(kdf(KEY, "label", b"ctx")) == KEY_LEN == 32


def test_deterministic() -> None:
    assert kdf(KEY, "label", b"ctx") == kdf(KEY, "label", b"ctx")


def test_distinct_labels_give_distinct_outputs() -> None:
    labels = ["F/oem-share", "G/master-key", "H/seed", "K/enck", "K/encd", "K/auth", "K/domain"]
    outputs = {kdf(KEY, label, b"ctx") for label in labels}
    assert len(outputs) == len(labels)


def test_distinct_contexts_keys_give_distinct_outputs() -> None:
    assert kdf(KEY, "label", b"ctx-1") != kdf(KEY, "label", b"ctx-2")
    assert kdf(KEY, "label", b"") != kdf(KEY, "label", b"\x00")
    assert kdf(KEY, "label", b"ctx") != kdf(bytes(32), "label", b"ctx")


def test_label_and_context_are_separated_by_the_zero_byte() -> None:
    # "ab" || 0x00 || "c" differs from "a" || 0x00 || "bc"
    assert kdf(KEY, "ab", b"c") != kdf(KEY, "a", b"bc")


def test_length_is_bound_into_the_output() -> None:
    """[L]_32 is part of the fixed input: a shorter output is not a prefix of a longer one."""
    assert kdf(KEY, "label", b"ctx", 16) != kdf(KEY, "label", b"ctx", 32)[:16]


def test_label_must_be_ascii() -> None:
    with pytest.raises(ValueError, match="ascii"):
        kdf(KEY, "étiquette", b"ctx")
