"""Steering commands: ``onward retry``, ``onward discard``, ``onward cancel``, ``onward enqueue``,
``onward purge``.

Each changes jobs through :mod:`onward.admin`, in guarded statements that cannot race a
worker: retrying a job that is not ``failed`` or discarding a running one is refused.
"""

from __future__ import annotations

import time

import click

from onward import admin_text
from onward.admin import decode_arguments, format_duration, parse_duration
from onward.cli import render
from onward.cli.base import database_url_option, import_modules, main
from onward.cli.output import admin_for, one_line, print_json, user_errors
from onward.lifecycle import CancelEffect
from onward.records import FINISHED_STATES


@main.command()
@click.argument("job_id", metavar="ID")
@click.option(
    "--continuations",
    is_flag=True,
    help="Run the continuations of a succeeded job again, after they raised (a worker runs them).",
)
@database_url_option
@user_errors
def retry(job_id: str, continuations: bool, database_url: str | None) -> None:
    """Run a failed job again now, keeping its progress.

    Completed steps are skipped and the step in progress resumes at its cursor; its attempts
    start again from zero. Only failed, discarded or cancelled jobs can be retried. With --continuations,
    run the continuations of a succeeded job again instead: their jobs are committed in one
    transaction with the job's continuation error cleared.
    """
    with admin_for(database_url) as admin:
        if continuations:
            handle = admin.retry_continuations(job_id)
            job = admin.get(job_id)
            click.echo(
                f"The continuations of {admin_text.class_name(job.job_class)} {job.id} will run again"
                f" (job {handle.id}; a worker must be running)."
            )
            return
        job = admin.retry(job_id)
    click.echo(f"{admin_text.class_name(job.job_class)} {job.id} is enqueued again.")


@main.command()
@click.argument("job_id", metavar="ID")
@database_url_option
@user_errors
def discard(job_id: str, database_url: str | None) -> None:
    """Discard an enqueued or failed job: it will not run (again)."""
    with admin_for(database_url) as admin:
        job = admin.discard(job_id)
    click.echo(f"{admin_text.class_name(job.job_class)} {job.id} is discarded.")


@main.command()
@click.argument("job_ids", metavar="ID...", nargs=-1, required=True)
@database_url_option
@user_errors
def cancel(job_ids: tuple[str, ...], database_url: str | None) -> None:
    """Cancel jobs: an enqueued one at once (it never runs); a running one stops at its next
    step boundary or checkpoint and ends as cancelled, keeping its progress. A finished job
    is left as it is. A batch id cancels every unfinished member of the batch. Exits 1 if
    an ID names no job or batch.
    """
    unknown = False
    with admin_for(database_url) as admin:
        for job_id in job_ids:
            if admin.is_batch(job_id):
                done = admin.cancel_batch(job_id)
                click.echo(
                    f"batch {done.record.id}: {done.cancelled} member(s) cancelled, {done.asked} running asked to"
                    f" stop, {done.finished} already finished."
                )
                continue
            try:
                effect, job = admin.cancel_job(job_id)
            except KeyError as exc:
                click.echo(f"Error: {one_line(exc)}", err=True)
                unknown = True
                continue
            name = f"{admin_text.class_name(job.job_class)} {job.id}"
            if effect == CancelEffect.CANCEL:
                click.echo(f"{name} is cancelled.")
            elif effect == CancelEffect.REQUEST and job.state == "running":
                click.echo(f"{name} is running; it stops at its next checkpoint and ends as cancelled.")
            elif effect == CancelEffect.REQUEST:
                click.echo(f"{name} is {job.state} (it ended before the cancellation reached it).")
            else:
                click.echo(f"{name} is already {job.state}; nothing changed.")
    if unknown:
        raise SystemExit(1)


@main.command()
@click.argument("class_path", metavar="MODULE:CLASS")
@click.option("--args", "args_json", default=None, metavar="JSON", help="Positional arguments, a JSON array.")
@click.option("--kwargs", "kwargs_json", default=None, metavar="JSON", help="Keyword arguments, a JSON object.")
@click.option("--queue", default=None, help="Queue (default: the class's).")
@click.option("--priority", type=int, default=None, help="Priority, lower runs first (default: the class's).")
@click.option("--delay", default=None, metavar="DURATION", help="Run after this long, e.g. 30s, 5m, 1h.")
@click.option("--wait", is_flag=True, help="Wait until the job has finished; exit 1 unless it succeeded.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS", help="With --wait: give up after this."
)
@click.option("--json", "as_json", is_flag=True, help="Print the job record as JSON.")
@database_url_option
@user_errors
def enqueue(
    class_path: str,
    args_json: str | None,
    kwargs_json: str | None,
    queue: str | None,
    priority: int | None,
    delay: str | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
    database_url: str | None,
) -> None:
    """Enqueue a job of MODULE:CLASS (importable from the current directory).

    \b
    Example:
      onward enqueue myapp.jobs:SendWelcomeEmail --args '[42]'
    """
    args, kwargs = decode_arguments(args_json, kwargs_json)
    seconds = parse_duration(delay).total_seconds() if delay else None
    import_modules(())  # puts the current directory on the import path, as `onward worker` does
    with admin_for(database_url, create=True) as admin:
        handle = admin.enqueue(class_path, args, kwargs, queue=queue, priority=priority, wait=seconds)
        if not wait:
            record = admin.get(handle.id)
            if as_json:
                print_json(record)
            else:
                click.echo(f"Enqueued {admin_text.class_name(record.job_class)} {record.id} on queue {record.queue!r}.")
            return
        if not as_json:
            click.echo(f"Enqueued {handle.id}; waiting for it to finish (a worker must be running)…")
        started = time.monotonic()
        try:
            record = admin.wait(handle.id, timeout)
        except TimeoutError:
            raise click.ClickException(f"job {handle.id} did not finish within {timeout} s") from None
    if as_json:
        print_json(record)
    else:
        line = f"{admin_text.class_name(record.job_class)} {record.id} {record.state}"
        line += f" after {format_duration(time.monotonic() - started)}"
        if record.state == "succeeded":
            line += f"; result: {render.compact(record.result, 200)}"
        elif record.error:
            line += f": {record.error.rstrip().splitlines()[-1]}"
        click.echo(line)
    assert record.state in FINISHED_STATES
    if record.state != "succeeded":
        raise SystemExit(1)


@main.command()
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in sorted(FINISHED_STATES)]),
    default=("succeeded",),
    show_default=True,
    help="Purge jobs in this state (repeatable).",
)
@click.option("--older-than", required=True, metavar="DURATION", help="Finished more than this long ago, e.g. 7d.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Jobs deleted per transaction."
)
@database_url_option
@user_errors
def purge(states: tuple[str, ...], older_than: str, batch_size: int, database_url: str | None) -> None:
    """Delete finished jobs older than a retention period, in small batches.

    \b
    Example:
      onward purge --state succeeded --older-than 7d
    """
    age = parse_duration(older_than)
    with admin_for(database_url) as admin:
        deleted = admin.purge(age, states, batch_size=batch_size)
    noun = "job" if deleted == 1 else "jobs"
    click.echo(f"Purged {deleted} {'/'.join(states)} {noun} finished more than {older_than} ago.")
