"""A progress bar with rate and ETA on a terminal; silent otherwise."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from trustprov.roles.cm import Outcome


class LineProgress:
    def __init__(self, *, enabled: bool) -> None:
        self._progress = (
            Progress(
                TextColumn("provisioning"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} chips/s, {task.fields[failed]} failed"),
                TimeRemainingColumn(),
                transient=False,
            )
            if enabled
            else None
        )
        self._task: TaskID | None = None
        self._failed = 0

    def __enter__(self) -> LineProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def start(self, total: int) -> None:
        if self._progress:
            self._task = self._progress.add_task("lot", total=total, rate="-", failed=0)

    def advance(self, outcome: Outcome) -> None:
        if self._progress is None or self._task is None:
            return
        self._failed += not outcome.ok
        task = self._progress.tasks[0]
        rate = f"{task.speed:.0f}" if task.speed else "-"
        self._progress.update(self._task, advance=1, rate=rate, failed=self._failed)
