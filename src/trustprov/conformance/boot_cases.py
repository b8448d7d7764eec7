"""Manufacturing and boot cases (docs/protocol.md sections 5, 8 and 9).

The suite signs its own images with the test family's published key. A chip runs only the code
its ROM measures, so an image must carry that code's digest (`tp-code`): for the Python virtual
chip that is the code archive of the installed package (`formats.software.code_archive`); for a
port, the firmware image the chip maker gives with ``--code`` (docs/porting.md).
"""

from __future__ import annotations

import functools

from trustprov.conformance.rom_cases import manufacture_steps
from trustprov.conformance.suite import Case, Context, expect, refused
from trustprov.crypto.keys import SUITES


def burn(ctx: Context) -> str:
    with ctx.client() as chip:
        before = chip.status()
        steps = "not blank: the order of the manufacturing steps not checked"
        if before.get("family") is None:
            steps = manufacture_steps(ctx, chip, before["uid"])
        status = ctx.ensure_family(chip)
        expect(
            status["lifecycle"] in ("MANUFACTURED", "PROVISIONED", "LOCKED"),
            f"lifecycle {status['lifecycle']!r} after manufacturing",
        )
        suite = ctx.family.suite
        expect(status.get("prov-suite") == suite, f"prov-suite {status.get('prov-suite')!r}")
        expect(chip.certificate() is not None, "no certificate after manufacturing")
        was = "blank: burned" if before.get("family") is None else "already of the test family"
        return (
            f"{was}; lifecycle {status['lifecycle']}, counter {status['security-counter']}; {steps}"
        )


def bad_signature(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        image = bytearray(ctx.image(ctx.svn))
        image[-1] ^= 0x01  # the last byte of the signature
        chip.boot(ctx.image(ctx.svn))  # software runs, then a refused boot stops it (8.3)
        e = refused(lambda: chip.boot(bytes(image)), {"bad-signature"})
        after = refused(lambda: chip.call("cm.finish", {}), {"unknown-command"})
        return f"{e.code}: {e.message}; then no software runs ({after.code})"


def wrong_key(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        e = refused(lambda: chip.boot(ctx.image(ctx.svn, wrong_key=True)), {"bad-signature"})
        return f"{e.code}: {e.message}"


def code_mismatch(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        other = ctx.image(ctx.svn, code=ctx.code + b"\x00")
        e = refused(lambda: chip.boot(other), {"code-mismatch"})
        return f"{e.code}: {e.message}"


def other_suite(ctx: Context) -> str:
    """5.2: an image signed in any other suite of 5.1 with the test family's keys of that suite
    (for a hybrid chip, its own classical or ML-DSA key alone: a downgrade; for a classical
    chip, a hybrid holding its own key's signature) is `bad-signature`."""
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        others = [s for s in SUITES if s != ctx.family.suite]
        for suite in others:
            image = ctx.family.sign(ctx.code, ctx.svn, suite=suite)
            e = refused(functools.partial(chip.boot, image), {"bad-signature"})
            expect(e.code == "bad-signature", suite)
        return f"{ctx.family.suite} chip: images of {', '.join(others)}: bad-signature"


def good(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        answer = chip.call("rom.boot", {"image": ctx.image(ctx.svn)})
        expect(
            answer.get("security-counter") == ctx.svn,
            f"boot answered security-counter {answer.get('security-counter')!r}, not {ctx.svn}",
        )
        return f"booted at security version {ctx.svn}"


def rollback(ctx: Context) -> str:
    with ctx.client() as chip:
        ctx.ensure_family(chip)
        low = ctx.svn
        chip.boot(ctx.image(low + 1))
        ctx.svn = low + 1
        e = refused(lambda: chip.boot(ctx.image(low)), {"rollback"})
        counter = chip.status()["security-counter"]
        expect(counter == low + 1, f"security counter {counter} after the refusal, not {low + 1}")
        return f"svn {low + 1} booted, then svn {low}: {e.code}; counter stays {counter}"


CASES = [
    Case(
        "manufacture.burn",
        "8, 9",
        "burn the test family",
        burn,
        needs="a blank chip or one of the test family",
    ),
    Case("boot.bad-signature", "5, 5.2", "a damaged signature is refused", bad_signature),
    Case("boot.wrong-key", "5, 5.2", "another key's signature is refused", wrong_key),
    Case("boot.other-suite", "5.1, 5.2", "an image of any other suite is refused", other_suite),
    Case("boot.code-mismatch", "5 (3.)", "an image of other code is refused", code_mismatch),
    Case("boot.good", "5", "the test family's image boots", good),
    Case(
        "boot.rollback",
        "5 (4.)",
        "a lower security version is refused",
        rollback,
        needs="advances the chip's OTP security counter by one",
    ),
]
