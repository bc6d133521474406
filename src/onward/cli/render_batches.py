"""Rendering a batch for ``onward show BATCH_ID``: counts, a progress bar, a page of members
and the callbacks."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from onward.admin import BatchView
from onward.admin_text import ago
from onward.cli.render import bar, jobs_table, percent

__all__ = ["batch_detail"]


def batch_detail(view: BatchView) -> RenderableType:
    """The batch, its counts and progress, one page of members and its callbacks."""
    b = view.record
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("batch", b.id)
    if b.description is not None:
        head.add_row("description", b.description)
    head.add_row("state", b.state)
    head.add_row(
        "members",
        f"{b.total} total: {b.pending} pending, {b.succeeded} succeeded, {b.failed} failed,"
        f" {b.discarded} discarded, {b.cancelled} cancelled",
    )
    head.add_row("progress", Group(bar(view.progress), Text(percent(view.progress))))
    head.add_row("created", f"{b.created_at.isoformat(timespec='seconds')} ({ago(b.created_at)})")
    if b.finished_at is not None:
        head.add_row("finished", f"{b.finished_at.isoformat(timespec='seconds')} ({ago(b.finished_at)})")
    parts: list[RenderableType] = [head]
    title = f"\nMembers (page {view.page} of {view.pages}, enqueue order)"
    parts += [Text(title, style="bold"), jobs_table(view.members) if view.members else Text("No members.")]
    if view.page < view.pages:
        parts.append(Text(f"More: onward show {b.id} --page {view.page + 1}", style="dim"))
    parts.append(Text("\nCallbacks", style="bold"))
    parts.append(jobs_table(view.callbacks) if view.callbacks else Text("None enqueued yet.", style="dim"))
    return Group(*parts)
