"""Rich renderings of admin values: job tables, job details, step progress, chain trees,
stats. Pure functions from :mod:`onward.admin` values to renderables or plain lines, used by
the commands and the demo."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderableType, RenderResult
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from onward.admin import (
    STATES,
    JobDetail,
    RunningJob,
    Stats,
    StepProgress,
    TreeNode,
    format_duration,
    to_plain,
)
from onward.admin_text import ago, class_name
from onward.records import JobRecord

STATE_STYLES = {
    "enqueued": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "discarded": "magenta",
    "cancelled": "bright_black",
    "purged": "dim",
}
STEP_MARKS = {"completed": "✓", "running": "▶", "interrupted": "‖"}
_SPARKS = " ▁▂▃▄▅▆▇█"
#: How the running-jobs table narrows on a small terminal, in order: each ``(column, width)``
#: narrows that column down to ``width`` characters (``0``: leaves it out) while the table
#: is still too wide. The figures never narrow.
RUNNING_GIVES_WAY = [
    ("bar", 10),
    ("id", 0),
    ("class", 12),
    ("step", 8),
    ("class", 8),
    ("step", 6),
    ("bar", 4),
    ("bar", 0),
    ("step", 0),
]
#: The same for a job's steps.
STEPS_GIVE_WAY = [("bar", 10), ("cursor", 8), ("cursor", 0), ("step", 8), ("bar", 8), ("step", 4), ("bar", 0)]


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def job_state_text(job: JobRecord, now: float | None = None) -> Text:
    """The state, with when an enqueued job is due if that is later (a retry, a delay)."""
    text = state_text(str(job.state))
    due = job.scheduled_at.timestamp() - (time.time() if now is None else now)
    if job.state == "enqueued" and due > 0.5:
        text.append(f" (in {format_duration(due)})", style="dim")
    if job.state == "succeeded" and job.continuation_error is not None:
        text.append(" continuations failed", style="bold red")
    return text


def took(job: JobRecord) -> str:
    """How long its last execution ran (so far, while running); ``-`` while it waits."""
    if job.started_at is None or job.state == "enqueued":
        return "-"
    end = job.finished_at.timestamp() if job.finished_at is not None else time.time()
    return format_duration(end - job.started_at.timestamp())


def plural(count: int, noun: str) -> str:
    """``1 attempt``, ``2 attempts``, ``0 attempts``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}%"


def compact(value: Any, limit: int = 60) -> str:
    """A value as short one-line JSON."""
    text = json.dumps(to_plain(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- job lists ------------------------------------------------------------------------------


def jobs_table(jobs: list[JobRecord], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False, box=None)
    # Only the class and queue columns give way (with an ellipsis) on a narrow terminal.
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("CLASS", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("QUEUE", no_wrap=True, overflow="ellipsis", min_width=5)
    table.add_column("STATE", no_wrap=True, min_width=9)
    table.add_column("TRIES", justify="right", no_wrap=True, min_width=5)  # attempts
    table.add_column("RES", justify="right", no_wrap=True, min_width=3)  # resumptions
    table.add_column("DONE", justify="right", no_wrap=True, min_width=4)  # progress
    table.add_column("ENQUEUED", justify="right", no_wrap=True, min_width=10)
    table.add_column("TOOK", justify="right", no_wrap=True, min_width=5)
    now = time.time()
    for job in jobs:
        table.add_row(
            job.id,
            class_name(job.job_class),
            job.queue,
            job_state_text(job, now),
            str(job.attempts),
            str(job.resumptions),
            percent(job.progress),
            ago(job.enqueued_at, now),
            took(job),
        )
    return table


def running_table(running: list[RunningJob]) -> Fitted:
    """Running jobs with the step each is in, its bar and figures, fitted to the width it is
    printed at: the bar shrinks first, then the ID column goes, then class and step names
    are shortened; DONE, RATE, ETA and FOR are never cut."""
    steps = [item.step for item in running]
    columns = [
        _Column("id", "ID", [item.job.id for item in running]),
        _Column("class", "CLASS", [class_name(item.job.job_class) for item in running]),
        _Column("step", "STEP", [step.name if step else "-" for step in steps]),
        _Column("bar", "", bars=[step.fraction if step else None for step in steps], natural=20),
        _Column("done", "DONE", [counts(step) if step else "-" for step in steps], figure=True),
        _Column("rate", "RATE", [rate(step) if step else "-" for step in steps], figure=True),
        _Column("eta", "ETA", [format_duration(step.eta) if step else "-" for step in steps], figure=True),
        _Column("for", "FOR", [took(item.job) for item in running], figure=True),
    ]
    return Fitted(columns, RUNNING_GIVES_WAY)


# -- steps ----------------------------------------------------------------------------------


def bar(fraction: float | None, width: int = 30) -> RenderableType:
    if fraction is None:
        return Text("")
    return ProgressBar(total=1.0, completed=fraction, width=width)


def counts(step: StepProgress) -> str:
    if step.total is not None:
        return f"{step.advanced}/{step.total}"
    return str(step.advanced) if step.advanced else "-"


def rate(step: StepProgress) -> str:
    return "-" if step.rate is None else f"{step.rate:,.0f}/s" if step.rate >= 10 else f"{step.rate:.1f}/s"


def steps_table(steps: list[StepProgress]) -> Fitted:
    """A job's steps with their bars and figures, fitted to the width it is printed at: the
    bar shrinks first, then the cursor, then step names; DONE, %, RATE and ETA / TOOK are
    never cut."""
    timings = [step.eta if step.status != "completed" else step.elapsed for step in steps]
    columns = [
        _Column("mark", "", [STEP_MARKS.get(step.status, "?") for step in steps]),
        _Column("step", "STEP", [step.name for step in steps]),
        _Column("bar", "PROGRESS", bars=[step.fraction for step in steps], natural=30),
        _Column("done", "DONE", [counts(step) for step in steps], figure=True),
        _Column("pct", "%", [percent(step.fraction) for step in steps], figure=True),
        _Column("cursor", "CURSOR", ["-" if step.cursor is None else compact(step.cursor, 30) for step in steps]),
        _Column("rate", "RATE", [rate(step) for step in steps], figure=True),
        _Column("timing", "ETA / TOOK", [format_duration(t) for t in timings], figure=True),
    ]
    return Fitted(columns, STEPS_GIVE_WAY)


# -- fitting a table to the terminal ------------------------------------------------------------

#: Columns are two characters apart (no box; one space of padding on each side).
GAP = 2


@dataclass(frozen=True, slots=True)
class _Column:
    """A column of text cells (``bars``: a progress bar per row instead). A figure column is
    always as wide as its widest cell; the others may be narrowed to fit."""

    key: str
    header: str
    texts: list[str] = field(default_factory=list)
    bars: list[float | None] | None = None
    natural: int = 0
    figure: bool = False

    @property
    def width(self) -> int:
        if self.bars is not None:
            return max(self.natural, cell_len(self.header))
        return max([cell_len(self.header), *(cell_len(t) for t in self.texts)])

    def cell(self, row: int, width: int) -> RenderableType:
        if self.bars is not None:
            return bar(self.bars[row], width)
        return self.texts[row]


class Fitted:
    """A table laid out for the width it is printed at. Each stage ``(key, floor)`` narrows
    one column down to ``floor`` characters (``0``: leaves it out) while the table is still
    too wide; figure columns are in no stage, so they never narrow."""

    def __init__(self, columns: list[_Column], stages: list[tuple[str, int]]) -> None:
        self.columns = columns
        self.stages = stages
        self.rows = max((len(c.bars) if c.bars is not None else len(c.texts) for c in columns), default=0)

    def widths(self, limit: int) -> dict[str, int]:
        widths = {c.key: c.width for c in self.columns}

        def total() -> int:
            shown = [w for w in widths.values() if w]
            return sum(shown) + GAP * (len(shown) - 1)

        natural = dict(widths)
        for key, floor in self.stages:
            excess = total() - limit
            if excess <= 0:
                break
            widths[key] = 0 if floor == 0 else min(widths[key], max(floor, widths[key] - excess))
        # A later stage may have freed more room than it needed: give it back to the
        # columns still shown, the last narrowed first.
        for key, _ in reversed(self.stages):
            if widths[key]:
                widths[key] += max(0, min(limit - total(), natural[key] - widths[key]))
        return widths

    def table(self, limit: int) -> Table:
        widths = self.widths(limit)
        shown = [c for c in self.columns if widths[c.key]]
        table = Table(header_style="bold", pad_edge=False, box=None)
        for c in shown:
            justify: JustifyMethod = "right" if c.figure else "left"
            table.add_column(c.header, justify=justify, no_wrap=True, overflow="ellipsis", width=widths[c.key])
        for row in range(self.rows):
            table.add_row(*(c.cell(row, widths[c.key]) for c in shown))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


def step_line(label: str, step: StepProgress) -> str:
    """A plain progress line, for output that is not a terminal."""
    parts = [f"{label} {step.name}:"]
    if step.total is not None or step.advanced:
        parts.append(counts(step))
        if step.fraction is not None:
            parts.append(f"({percent(step.fraction)})")
        parts.append(f"cursor={compact(step.cursor, 30)}")
    if step.rate is not None:
        parts.append(rate(step))
    if step.eta is not None:
        parts.append(f"ETA {format_duration(step.eta)}")
    parts.append(step.status)
    return " ".join(parts)


# -- one job ----------------------------------------------------------------------------------


def chain_tree(node: TreeNode, highlight: str | None = None) -> Tree:
    tree = Tree(_node_label(node, highlight))
    _grow(tree, node, highlight)
    return tree


def _node_label(node: TreeNode, highlight: str | None) -> Text:
    label = Text()
    label.append(class_name(node.job_class) if not node.missing else "(purged)", style="bold")
    label.append(f" {node.id} ")
    label.append_text(state_text(node.state))
    if node.id == highlight:
        label.append("  ◀ this job", style="bold")
    if node.truncated:
        label.append("  (more children not shown)", style="dim")
    return label


def _grow(tree: Tree, node: TreeNode, highlight: str | None) -> None:
    for child in node.children:
        _grow(tree.add(_node_label(child, highlight)), child, highlight)


def detail(d: JobDetail) -> RenderableType:
    job = d.job
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    rows: list[tuple[str, Any]] = [
        ("job", f"{job.id}"),
        ("class", job.job_class),
        ("state", job_state_text(job)),
        ("queue", f"{job.queue} (priority {job.priority})"),
        ("attempts", str(job.attempts)),
        ("resumptions", str(job.resumptions)),
        ("args", compact(job.args, 200)),
        ("kwargs", compact(job.kwargs, 200)),
    ]
    if d.waiting is not None:
        rows.append(("waiting", Text(d.waiting, style="yellow")))
    if job.unique_key is not None:
        rows.append(("unique key", job.unique_key))
    if job.limit_key is not None:
        rows.append(("limit key", job.limit_key))
    if job.schedule_key is not None and job.scheduled_for is not None:
        rows.append(("schedule", f"{job.schedule_key}, tick {job.scheduled_for.isoformat(timespec='seconds')}"))
    rows += [
        ("enqueued", f"{job.enqueued_at.isoformat(timespec='seconds')} ({ago(job.enqueued_at)})"),
        ("scheduled", f"{job.scheduled_at.isoformat(timespec='seconds')} ({ago(job.scheduled_at)})"),
    ]
    if job.started_at is not None:
        rows.append(("started", f"{job.started_at.isoformat(timespec='seconds')} ({ago(job.started_at)})"))
    if job.cancel_requested_at is not None:
        rows.append(("cancel asked", f"{job.cancel_requested_at.isoformat(timespec='seconds')}"))
    if job.finished_at is not None:
        rows.append(("finished", f"{job.finished_at.isoformat(timespec='seconds')} (took {took(job)})"))
    if job.worker_id is not None:
        rows.append(("worker", f"{job.worker_id} (lease expires {ago(job.lease_expires_at)})"))
    if job.progress is not None:
        rows.append(("progress", percent(job.progress)))
    if job.result is not None:
        rows.append(("result", compact(job.result, 200)))
    if job.job_state:
        rows.append(("job state", compact(job.job_state, 200)))
    for key, value in rows:
        head.add_row(key, value)
    parts: list[RenderableType] = [head]
    if d.steps:
        parts += [Text("\nSteps", style="bold"), steps_table(d.steps)]
    if job.error:
        title = "\nError (kept for the record)" if job.state == "succeeded" else "\nError"
        parts += [Text(title, style="bold red"), Text(job.error.rstrip())]
    if job.continuation_error:
        parts += [Text("\nContinuation error", style="bold red"), Text(job.continuation_error.rstrip())]
    parts += [Text("\nChain", style="bold"), chain_tree(d.tree, job.id)]
    return Group(*parts)


# -- stats ------------------------------------------------------------------------------------


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return _SPARKS[1] * len(values)
    return "".join(_SPARKS[max(1, round(v / top * (len(_SPARKS) - 1)))] if v else _SPARKS[0] for v in values)


def stats(s: Stats) -> RenderableType:
    table = Table(header_style="bold", pad_edge=False, box=None, show_footer=bool(s.queues))
    table.add_column("QUEUE", footer="total")
    for state in STATES:
        table.add_column(state.upper(), justify="right", footer=str(s.totals[state]))
    table.add_column("TOTAL", justify="right", footer=str(sum(s.totals.values())))
    for q in s.queues:
        table.add_row(q.queue, *(str(q.counts[state]) for state in STATES), str(q.total))
    per_minute = [m.total for m in s.per_minute]
    lines = [
        table if s.queues else Text("No jobs."),
        Text(f"\nFinished in the last minute: {s.finished_last_minute}"),
        Text(f"Per minute, last {len(per_minute)} min: {sparkline(per_minute)}  (max {max(per_minute, default=0)})"),
    ]
    if s.held:
        held = Table(header_style="bold", pad_edge=False, box=None)
        held.add_column("HELD BY THE LIMITS OF KEY")
        held.add_column("HELD", justify="right")
        held.add_column("RUNNING", justify="right")
        for h in s.held:
            held.add_row(h.key, str(h.held), str(h.running))
        lines += [Text(""), held]
    if s.continuation_failed:
        lines.append(
            Text(
                f"Succeeded with failed continuations: {s.continuation_failed}"
                " (onward jobs --continuation-failed; onward retry --continuations ID)",
                style="bold red",
            )
        )
    return Group(*lines)
