"""The runner of the conformance suite: named cases, each citing the section of
docs/protocol.md it checks, run in a fixed order against one chip behind one port.

Invariants:
- The suite reaches the chip only through the address's byte stream: `trustprov.link` for
  messages, `trustprov.formats.frame` for raw frames. Every answer it receives is recorded, so
  `secrets.scan` can look at all of them.
- A case passes only by reaching its end; any exception (a refusal, a transport failure, a
  failed expectation) fails it with the exception's text as evidence. One failed case never
  stops the others.
- Cases that write what cannot be undone come last: the counter rollback after the boots that
  need the lower version, provisioning after the refusals, `lock` at the very end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trustprov.conformance.family import TestFamily
from trustprov.crypto.keys import load_public_key
from trustprov.errors import ChipRefused, TrustprovError
from trustprov.formats.software import code_archive
from trustprov.link.address import open_link
from trustprov.link.client import BundleParams, ChipClient, PreparedBundle
from trustprov.link.framed import FramedLink

#: the lowest security version the suite boots: the vector bundle's min-svn
BASE_SVN = 2


class CaseFailed(Exception):
    """A case's expectation did not hold; the text is the evidence."""


class CaseSkipped(Exception):
    """The case cannot run behind this port (e.g. no control of the chip's power); the text
    says why. A skipped case neither passes nor fails, and is reported by name."""


def expect(condition: bool, evidence: str) -> None:
    if not condition:
        raise CaseFailed(evidence)


@dataclass(frozen=True)
class Case:
    name: str
    section: str  # of docs/protocol.md
    summary: str
    run: Callable[[Context], str] = field(repr=False)  # returns the evidence of a pass
    needs: str = ""  # e.g. "a blank chip or one of the test family"


@dataclass(frozen=True)
class Result:
    name: str
    section: str
    passed: bool
    evidence: str
    needs: str = ""
    seconds: float = 0.0
    skipped: bool = False  # then passed is True: a skip fails nothing, and says so

    @property
    def mark(self) -> str:
        return "skip" if self.skipped else ("pass" if self.passed else "fail")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "section": self.section,
            "result": self.mark,
            "evidence": self.evidence,
            "needs": self.needs or None,
            "seconds": round(self.seconds, 3),
        }


class RecordingLink:
    """A `Link` that keeps every answer the chip gave, for the secret scan."""

    def __init__(self, link: FramedLink, answers: list[bytes]) -> None:
        self._link = link
        self._answers = answers

    def exchange(self, request: bytes) -> bytes:
        response = self._link.exchange(request)
        self._answers.append(response)
        return response


class Context:
    """What the cases share: the port, the test family, the code to sign, every answer."""

    def __init__(
        self,
        address: str,
        *,
        family: TestFamily | None = None,
        code: bytes | None = None,
        idle_timeout: float = 10.0,
        reply_timeout: float = 1.0,
        power_cycle: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self.power_cycle = power_cycle  # cuts and restores the chip's power; None: no control
        self.family = family or TestFamily.load()
        self.code = code_archive() if code is None else code
        self.idle_timeout = idle_timeout
        self.reply_timeout = reply_timeout
        self.answers: list[bytes] = []
        self.svn = BASE_SVN
        self.counters: list[int] = []  # the provisioning counter of each receipt, in order
        self.secrets: dict[str, bytes] = {}  # secrets a case put into the chip, for the scan
        self._images: dict[tuple[int, bool, bytes], bytes] = {}

    # -- the chip --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def client(self) -> Iterator[ChipClient]:
        link = open_link(self.address, timeout=self.reply_timeout, max_retries=4)
        try:
            yield ChipClient(RecordingLink(link, self.answers))
        finally:
            link.close()

    def image(self, svn: int, *, wrong_key: bool = False, code: bytes | None = None) -> bytes:
        key = (svn, wrong_key, self.code if code is None else code)
        if key not in self._images:
            self._images[key] = self.family.sign(key[2], svn, wrong_key=wrong_key)
        return self._images[key]

    def ensure_family(self, chip: ChipClient) -> dict[str, Any]:
        """Burn a blank chip with the test family; refuse a chip of another family."""
        status = chip.status()
        if status.get("family") is None:
            chip.burn(self.family.immutable().to_bytes())
            public = chip.make_identity()
            chip.store_certificate(self.family.certificate(status["uid"], load_public_key(public)))
            status = chip.status()
        expect(
            status.get("family") == self.family.family_id,
            f"the chip is of family {_hex(status.get('family'))}, not the test family "
            f"{self.family.family_id.hex()}: it needs a blank chip or one burned with the test "
            "family",
        )
        self.svn = max(self.svn, int(status["security-counter"]))
        return status

    def boot(self, chip: ChipClient) -> None:
        status = self.ensure_family(chip)
        expect(
            status["lifecycle"] != "LOCKED",
            "the chip is LOCKED (an earlier run ends with lock): the suite needs a fresh chip",
        )
        chip.boot(self.image(self.svn))

    def prepared(self, *, enc_oem_share: bytes | None = None) -> PreparedBundle:
        share = enc_oem_share or self.family.seal("oem-share", self.family.oem_share)
        return PreparedBundle.prepare(self.family.vector.bundle, share)

    def params(self) -> BundleParams:
        m = self.family.vector.bundle.manifest
        return BundleParams(m.epoch, m.min_security_version, m.aead.cose_id, m.chunk_size)


def refused(fn: Callable[[], object], codes: set[str]) -> ChipRefused:
    """Run ``fn``, which the chip must refuse with one of ``codes``."""
    try:
        fn()
    except ChipRefused as e:
        expect(e.code in codes, f"refused with {e.code!r} ({e.message}), expected {sorted(codes)}")
        return e
    raise CaseFailed(f"accepted; expected a refusal {sorted(codes)}")


def _hex(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else repr(value)


def run_cases(ctx: Context, cases: list[Case], only: set[str] | None = None) -> list[Result]:
    results = []
    for case in cases:
        if only is not None and case.name not in only:
            continue
        start = time.monotonic()
        skipped = False
        try:
            evidence = case.run(ctx)
            passed = True
        except CaseSkipped as e:
            evidence, passed, skipped = f"skipped: {e}", True, True
        except CaseFailed as e:
            evidence, passed = str(e), False
        except TrustprovError as e:
            evidence, passed = f"{e.code}: {e.message}", False
        except Exception as e:  # noqa: BLE001 - a case's own fault is that case's failure
            evidence, passed = f"{type(e).__name__}: {e}", False
        results.append(
            Result(
                case.name,
                case.section,
                passed,
                evidence,
                case.needs,
                time.monotonic() - start,
                skipped,
            )
        )
    return results
