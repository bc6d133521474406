"""``onward queues``: list queues with their jobs per state; ``pause NAME`` and ``resume NAME``.

A paused queue is not claimed from by any worker (running jobs go on, enqueueing still
works), through :mod:`onward.admin`.
"""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from onward.admin import STATES, QueueView
from onward.cli.base import database_url_option, main
from onward.cli.output import admin_for, console, print_json, user_errors


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of queues.")
@database_url_option
@click.pass_context
@user_errors
def queues(ctx: click.Context, as_json: bool, database_url: str | None) -> None:
    """List queues: their jobs per state, and whether they are paused.

    \b
    Also:
      onward queues pause NAME     no worker claims from NAME until resumed
      onward queues resume NAME    workers claim from NAME again
    """
    ctx.obj = database_url
    if ctx.invoked_subcommand is not None:
        return
    with admin_for(database_url) as admin:
        found = admin.queues()
    if as_json:
        print_json([{"name": q.name, "counts": q.counts, "paused": q.paused, "paused_at": q.paused_at} for q in found])
        return
    out = console()
    if not found:
        out.print("No queues: no job was enqueued yet.")
        return
    out.print(queues_table(found))


@queues.command()
@click.argument("name")
@database_url_option
@click.pass_obj
@user_errors
def pause(group_url: str | None, name: str, database_url: str | None) -> None:
    """Pause queue NAME: no worker claims its jobs until it is resumed (enqueueing goes on)."""
    with admin_for(database_url or group_url) as admin:
        queue = admin.pause_queue(name)
    waiting = queue.counts["enqueued"]
    click.echo(f"Queue {name!r} is paused; its {waiting} enqueued job(s) wait until it is resumed.")


@queues.command()
@click.argument("name")
@database_url_option
@click.pass_obj
@user_errors
def resume(group_url: str | None, name: str, database_url: str | None) -> None:
    """Resume queue NAME: workers claim its jobs again."""
    with admin_for(database_url or group_url) as admin:
        admin.resume_queue(name)
    click.echo(f"Queue {name!r} is resumed.")


def queues_table(found: list[QueueView]) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("QUEUE")
    for state in STATES:
        table.add_column(state.upper(), justify="right")
    table.add_column("STATUS")
    for q in found:
        status = Text("paused", style="yellow") if q.paused else Text("active", style="green")
        table.add_row(q.name, *(str(q.counts[state]) for state in STATES), status)
    return table
