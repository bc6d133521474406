"""Rich renderings of admin values: job tables, job details, step progress, chain trees,
stats. Pure functions from :mod:`onward.admin` values to renderables or plain lines, used by
the commands and the demo."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Group, RenderableType
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
    "purged": "dim",
}
STEP_MARKS = {"completed": "✓", "running": "▶", "interrupted": "‖"}
_SPARKS = " ▁▂▃▄▅▆▇█"


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


def running_table(running: list[RunningJob]) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("CLASS", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("STEP", no_wrap=True, overflow="ellipsis", min_width=6)
    table.add_column("", no_wrap=True, min_width=20)
    table.add_column("DONE", justify="right", no_wrap=True, min_width=9)
    table.add_column("RATE", justify="right", no_wrap=True, min_width=7)
    table.add_column("ETA", justify="right", no_wrap=True, min_width=5)
    table.add_column("FOR", justify="right", no_wrap=True, min_width=5)
    for item in running:
        step = item.step
        table.add_row(
            item.job.id,
            class_name(item.job.job_class),
            step.name if step else "-",
            bar(step.fraction if step else None, 20),
            counts(step) if step else "-",
            rate(step) if step else "-",
            format_duration(step.eta) if step and step.eta is not None else "-",
            took(item.job),
        )
    return table


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


def steps_table(steps: list[StepProgress]) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    for name in ("", "STEP", "PROGRESS", "DONE", "%", "CURSOR", "RATE", "ETA / TOOK"):
        table.add_column(name, no_wrap=name != "CURSOR")
    for step in steps:
        timing = step.eta if step.status != "completed" else step.elapsed
        table.add_row(
            STEP_MARKS.get(step.status, "?"),
            step.name,
            bar(step.fraction),
            counts(step),
            percent(step.fraction),
            compact(step.cursor, 30),
            rate(step),
            format_duration(timing) if timing is not None else "-",
        )
    return table


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
    if job.unique_key is not None:
        rows.append(("unique key", job.unique_key))
    rows += [
        ("enqueued", f"{job.enqueued_at.isoformat(timespec='seconds')} ({ago(job.enqueued_at)})"),
        ("scheduled", f"{job.scheduled_at.isoformat(timespec='seconds')} ({ago(job.scheduled_at)})"),
    ]
    if job.started_at is not None:
        rows.append(("started", f"{job.started_at.isoformat(timespec='seconds')} ({ago(job.started_at)})"))
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
    if s.continuation_failed:
        lines.append(
            Text(
                f"Succeeded with failed continuations: {s.continuation_failed}"
                " (onward jobs --continuation-failed; onward retry --continuations ID)",
                style="bold red",
            )
        )
    return Group(*lines)
