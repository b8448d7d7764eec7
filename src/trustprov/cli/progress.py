"""A progress bar with rate and ETA on a terminal's stderr; silent otherwise.

Also where each chip's outcome is logged at debug level (-vv): the bar sees every chip, in the
station's process, whatever the number of workers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from trustprov.roles.cm import Outcome

log = logging.getLogger("trustprov.cli.progress")


class LineProgress:
    def __init__(self, *, enabled: bool, label: str = "provisioning") -> None:
        self._progress = (
            Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} chips/s, {task.fields[failed]} failed"),
                TimeRemainingColumn(),
                transient=False,
                console=Console(stderr=True),
            )
            if enabled
            else None
        )
        self._task: TaskID | None = None
        self._failed = 0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress and self._task is not None:
            self._progress.stop()

    def start(self, total: int) -> None:
        """The work begins: the bar shows from here, not while the inputs are being checked
        (a refusal is then one line, with no empty bar above it)."""
        log.debug("%d chips to do", total)
        if self._progress:
            self._progress.start()
            self._task = self._progress.add_task("lot", total=total, rate="-", failed=0)

    def advance(self, outcome: Outcome) -> None:
        if log.isEnabledFor(logging.DEBUG):
            why = f": {outcome.error_code}: {outcome.error}" if not outcome.ok else ""
            log.debug(
                "chip %s: %s in %d us%s",
                outcome.uid.hex(),
                outcome.result,
                outcome.duration_us,
                why,
            )
        self._failed += not outcome.ok
        self._step()

    def made(self, uid: bytes, total: int) -> None:
        """One chip of ``total`` made (icm manufacture)."""
        if self._task is None:
            self.start(total)
        log.debug("chip %s: made", uid.hex())
        self._step()

    def _step(self) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        rate = f"{task.speed:.0f}" if task.speed else "-"
        self._progress.update(self._task, advance=1, rate=rate, failed=self._failed)
