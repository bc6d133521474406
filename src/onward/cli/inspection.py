"""Inspection commands: ``onward jobs``, ``onward show``, ``onward watch``, ``onward stats``.

They only read, through :mod:`onward.admin`; none changes a job.
"""

from __future__ import annotations

import signal
import threading
import time

import click
from rich.console import Group
from rich.live import Live
from rich.text import Text

from onward import admin_text
from onward.admin import STATES, Admin, JobDetail, JobNotFound, RunningJob
from onward.cli import render, render_batches
from onward.cli.base import database_url_option, main
from onward.cli.output import admin_for, console, print_json, user_errors
from onward.records import FINISHED_STATES


@main.command()
@click.option("--state", type=click.Choice(STATES), default=None, help="Only jobs in this state.")
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option("--class", "job_class", default=None, metavar="MODULE:CLASS", help="Only jobs of this class.")
@click.option("--search", default=None, metavar="ID", help="Only jobs whose id starts with this.")
@click.option("--schedule", "schedule_key", default=None, metavar="KEY", help="Only jobs this schedule enqueued.")
@click.option(
    "--continuation-failed", is_flag=True, help="Only succeeded jobs whose continuations raised (to run again)."
)
@click.option("--before", default=None, metavar="ID", help="Only jobs enqueued before this one (next page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@database_url_option
@user_errors
def jobs(
    state: str | None,
    queue: str | None,
    job_class: str | None,
    search: str | None,
    schedule_key: str | None,
    continuation_failed: bool,
    before: str | None,
    limit: int,
    as_json: bool,
    database_url: str | None,
) -> None:
    """List jobs, newest first."""
    with admin_for(database_url) as admin:
        if before is not None:
            before = admin.resolve(before)
        page = admin.jobs(
            state=state,
            queue=queue,
            job_class=job_class,
            search=search,
            before=before,
            limit=limit,
            schedule_key=schedule_key,
            continuation_failed=continuation_failed,
        )
    if as_json:
        print_json(page.jobs)
        return
    out = console()
    if not page.jobs:
        filtered = state or queue or job_class or search or before or schedule_key or continuation_failed
        out.print("No jobs match." if filtered else "No jobs.")
        return
    out.print(render.jobs_table(page.jobs))
    if page.next is not None:
        out.print(Text(f"\nMore: onward jobs --before {page.next}", style="dim"))


@main.command()
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the record, steps and chain as JSON.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="A batch's page of members.")
@database_url_option
@user_errors
def show(job_id: str, as_json: bool, page: int, database_url: str | None) -> None:
    """Show one job: arguments, state, attempts, error, steps and its continuation chain;
    or one batch: its counts, progress, members (paged) and callbacks.

    ID is a job id, a unique prefix of one, or a batch id.
    """
    with admin_for(database_url) as admin:
        if admin.is_batch(job_id):
            view = admin.batch(job_id, page)
            if as_json:
                print_json({"batch": view.record, "members": view.members, "callbacks": view.callbacks})
            else:
                console().print(render_batches.batch_detail(view))
            return
        d = admin.job(job_id)
    if as_json:
        print_json({"job": d.job, "steps": d.steps, "tree": d.tree, "waiting": d.waiting})
        return
    console().print(render.detail(d))


@main.command()
@click.argument("job_id", metavar="[ID]", required=False)
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True, help="Seconds between refreshes."
)
@database_url_option
@user_errors
def watch(job_id: str | None, interval: float, database_url: str | None) -> None:
    """Follow running jobs' progress live (or one job's, until it finishes). Ctrl-C to stop.

    When the output is not a terminal, prints a line whenever progress changes instead.
    """
    # A script's background job starts with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore it, so that Ctrl-C (or `kill -INT`) always ends the watch.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    out = console()
    with admin_for(database_url) as admin:
        if job_id is not None:
            full = admin.resolve(job_id)
            if out.is_terminal:
                _watch_job_live(admin, full, interval)
            else:
                _watch_job_lines(admin, full, interval)
        elif out.is_terminal:
            _watch_all_live(admin, interval)
        else:
            _watch_all_lines(admin, interval)


def _job_view(d: JobDetail) -> Group:
    head = Text.assemble(
        (admin_text.class_name(d.job.job_class), "bold"), f" {d.job.id} ", render.state_text(str(d.job.state))
    )
    head.append(f"  {render.plural(d.job.attempts, 'attempt')}, {render.plural(d.job.resumptions, 'resumption')}")
    parts = [head, render.steps_table(d.steps)] if d.steps else [head]
    return Group(*parts)


def _watch_job_live(admin: Admin, job_id: str, interval: float) -> None:
    out = console()
    d = admin.job(job_id)
    with Live(_job_view(d), console=out, refresh_per_second=max(1, round(1 / interval))) as live:
        while d.job.state not in FINISHED_STATES:
            time.sleep(interval)
            d = admin.job(job_id)
            live.update(_job_view(d))
    if d.job.error and d.job.state != "succeeded":
        out.print(Text(d.job.error.rstrip().splitlines()[-1], style="red"))


def _watch_job_lines(admin: Admin, job_id: str, interval: float) -> None:
    last: tuple[object, ...] | None = None
    while True:
        d = admin.job(job_id)
        key = (d.job.state, d.job.attempts, d.job.resumptions, *((s.status, s.advanced) for s in d.steps))
        if key != last:
            last = key
            click.echo(
                f"{admin_text.class_name(d.job.job_class)} {d.job.id} {d.job.state}"
                f" ({render.plural(d.job.attempts, 'attempt')}, {render.plural(d.job.resumptions, 'resumption')})"
            )
            for step in d.steps:
                if step.status != "completed" or d.job.state in FINISHED_STATES:
                    click.echo("  " + render.step_line(render.STEP_MARKS.get(step.status, "?"), step))
        if d.job.state in FINISHED_STATES:
            if d.job.error and d.job.state != "succeeded":
                click.echo(d.job.error.rstrip().splitlines()[-1])
            return
        time.sleep(interval)


def _all_view(running: list[RunningJob]) -> Group:
    title = Text(f"{render.plural(len(running), 'running job')}  (Ctrl-C to stop)", style="bold")
    return Group(title, render.running_table(running)) if running else Group(title)


def _watch_all_live(admin: Admin, interval: float) -> None:
    with Live(_all_view(admin.running()), console=console(), refresh_per_second=max(1, round(1 / interval))) as live:
        while True:
            time.sleep(interval)
            live.update(_all_view(admin.running()))


def _watch_all_lines(admin: Admin, interval: float) -> None:
    seen: dict[str, tuple[object, ...]] = {}
    while True:
        running = admin.running()
        current: dict[str, tuple[object, ...]] = {}
        for item in running:
            step = item.step
            key = (step.name, step.advanced) if step else ()
            current[item.job.id] = key
            if seen.get(item.job.id) != key:
                where = render.step_line("", step).strip() if step else "running"
                click.echo(f"{admin_text.class_name(item.job.job_class)} {item.job.id}: {where}")
        for gone in sorted(seen.keys() - current.keys()):
            try:
                now = str(admin.get(gone).state)
            except JobNotFound:
                now = "purged"
            click.echo(f"{gone}: {now}")
        seen = current
        time.sleep(interval)


@main.command()
@click.option(
    "--minutes", type=click.IntRange(1, 1440), default=15, show_default=True, help="Throughput history length."
)
@click.option("--json", "as_json", is_flag=True, help="Print counts and throughput as JSON.")
@database_url_option
@user_errors
def stats(minutes: int, as_json: bool, database_url: str | None) -> None:
    """Jobs per queue and state, and jobs finished per minute."""
    with admin_for(database_url) as admin:
        s = admin.stats(minutes)
    if as_json:
        print_json(
            {
                "queues": {q.queue: q.counts for q in s.queues},
                "totals": s.totals,
                "finished_last_minute": s.finished_last_minute,
                "per_minute": s.per_minute,
                "continuation_failed": s.continuation_failed,
                "held": {h.key: {"held": h.held, "running": h.running} for h in s.held},
            }
        )
        return
    console().print(render.stats(s))
