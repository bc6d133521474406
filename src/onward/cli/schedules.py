"""``onward schedules``: list the schedules in the store; ``pause KEY`` and ``resume KEY``.

Schedules are declared in code (``onward.schedule``) and stored when a worker runs them;
these commands read and steer what is stored, through :mod:`onward.admin`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click
from rich.table import Table
from rich.text import Text

from onward.admin import ScheduleView
from onward.admin_text import ago, class_name
from onward.cli.base import database_url_option, main
from onward.cli.output import admin_for, console, print_json, user_errors
from onward.cli.render import state_text


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of schedules.")
@database_url_option
@click.pass_context
@user_errors
def schedules(ctx: click.Context, as_json: bool, database_url: str | None) -> None:
    """List schedules: job, ticks, next tick, last tick and its job's state, paused or not,
    and whether a running worker still declares it.

    \b
    Also:
      onward schedules pause KEY     enqueue nothing until resumed
      onward schedules resume KEY    tick again from now (the paused time is not caught up)
    """
    ctx.obj = database_url
    if ctx.invoked_subcommand is not None:
        return
    with admin_for(database_url) as admin:
        found = admin.schedules()
    if as_json:
        print_json([_plain(s) for s in found])
        return
    out = console()
    if not found:
        out.print("No schedules. A worker stores the schedules its modules declare (onward.schedule) when it starts.")
        return
    out.print(schedules_table(found, time.time()))


@schedules.command()
@click.argument("key")
@database_url_option
@click.pass_obj
@user_errors
def pause(group_url: str | None, key: str, database_url: str | None) -> None:
    """Pause the schedule KEY: it enqueues nothing until resumed."""
    with admin_for(database_url or group_url) as admin:
        admin.pause_schedule(key)
    click.echo(f"Schedule {key!r} is paused.")


@schedules.command()
@click.argument("key")
@database_url_option
@click.pass_obj
@user_errors
def resume(group_url: str | None, key: str, database_url: str | None) -> None:
    """Resume the schedule KEY from now on: ticks of the paused time are not enqueued."""
    with admin_for(database_url or group_url) as admin:
        view = admin.resume_schedule(key)
    when = f"; next tick {_when(view.next_tick)}" if view.next_tick is not None else ""
    click.echo(f"Schedule {key!r} is resumed{when}.")


def schedules_table(found: list[ScheduleView], now: float) -> Table:
    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("KEY", no_wrap=True)
    table.add_column("JOB", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("TICKS", no_wrap=True)
    table.add_column("NEXT TICK", no_wrap=True)
    table.add_column("LAST TICK", no_wrap=True)
    table.add_column("LAST JOB", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("WORKER", no_wrap=True)
    for s in found:
        table.add_row(
            s.key,
            class_name(s.job_class),
            s.expression,
            _next(s, now),
            _when(s.last_tick),
            _last_job(s),
            Text("paused", style="yellow") if s.paused else Text("active", style="green"),
            Text("live") if s.live else Text("none", style="dim"),
        )
    return table


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _next(s: ScheduleView, now: float) -> Text:
    if s.next_tick is None:
        return Text("-")
    text = Text(_when(s.next_tick))
    text.append(f" ({ago(s.next_tick, now)})", style="dim")
    return text


def _last_job(s: ScheduleView) -> Text:
    if s.last_tick is not None and s.record.last_tick_skipped:
        return Text("skipped (previous job still live)", style="dim")
    if s.last_job_id is None:
        return Text("-")
    text = Text("…" + s.last_job_id[-8:] + " ")
    text.append_text(state_text(s.last_job_state or "purged"))
    return text


def _plain(s: ScheduleView) -> dict[str, object]:
    r = s.record
    return {
        "key": r.key,
        "job_class": r.job_class,
        "cron": r.cron,
        "every": r.every,
        "timezone": r.timezone,
        "expression": s.expression,
        "settings": r.settings,
        "next_tick": s.next_tick,
        "last_tick": r.last_tick,
        "last_tick_skipped": r.last_tick_skipped,
        "last_job_id": r.last_job_id,
        "last_job_state": r.last_job_state,
        "paused": r.paused,
        "paused_at": r.paused_at,
        "first_seen": r.first_seen,
        "declared_at": r.declared_at,
        "declared_by": r.declared_by,
        "live": s.live,
    }
