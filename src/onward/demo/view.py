"""How the demo shows a job's steps: live rich progress bars on a terminal, plain lines
(at most one a second per step, and one when a step completes) anywhere else."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from onward.admin import JobDetail
from onward.cli import render

PLAIN_EVERY = 1.0


class RateColumn(ProgressColumn):
    """Items per second, measured by rich over the last few updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="cyan")


class StepsView:
    """Progress of one job's steps; call :meth:`update` with each fresh detail, and
    :meth:`note` to print a line above the bars."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("  {task.description:<18}"),
            BarColumn(bar_width=36),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}", style="dim"),
            console=console,
            disable=not self.live,
        )
        self.tasks: dict[str, TaskID] = {}
        self.printed: dict[str, tuple[float, str, int]] = {}

    def __enter__(self) -> StepsView:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.live:
            self.progress.stop()

    def note(self, text: str, style: str = "") -> None:
        (self.progress.console if self.live else self.console).print(Text(text, style=style))

    def update(self, detail: JobDetail) -> None:
        for step in detail.steps:
            status = step.status if step.status != "completed" else ""
            if self.live:
                task = self.tasks.get(step.name)
                if task is None:
                    task = self.progress.add_task(step.name, total=step.total, status=status)
                    self.tasks[step.name] = task
                total = step.total if step.total is not None else (1 if step.status == "completed" else None)
                done = step.advanced if step.total is not None else (1 if step.status == "completed" else 0)
                self.progress.update(task, total=total, completed=done, status=status)
            else:
                self._plain(step.name, step.status, step.advanced, render.step_line(f"  {self.label}", step))

    def _plain(self, name: str, status: str, advanced: int, line: str) -> None:
        """Print when the status changes, or progress moved and a second has passed."""
        now = time.monotonic()
        last = self.printed.get(name)
        if last is not None:
            when, last_status, last_advanced = last
            if last_status == status and (advanced == last_advanced or now - when < PLAIN_EVERY):
                return
        self.printed[name] = (now, status, advanced)
        self.console.print(line, highlight=False)
