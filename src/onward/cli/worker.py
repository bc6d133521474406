"""``onward worker``: run a worker from the command line."""

from __future__ import annotations

import math
import os
import sys

import click

from onward import logs
from onward.cli.base import database_url_option, import_modules, main, open_store
from onward.cli.metrics import group_metrics, process_metrics
from onward.errors import StoreFileError
from onward.journal import ENV_VAR as JOURNAL_ENV
from onward.options import MAX_CONCURRENCY, MAX_TIMEOUT
from onward.supervisor import RECYCLED, WORKER_INDEX_ENV

WORKER_SWITCH_INTERVAL = 0.0005  # seconds; see sys.setswitchinterval


@main.command()
@click.option("--queues", default=None, help="Comma-separated queues to serve (default: all).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, MAX_CONCURRENCY),
    default=1,
    show_default=True,
    help="Jobs run at once (threads).",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Worker processes, each running --concurrency jobs, under one supervisor that restarts crashed ones.",
)
@click.option("--burst", is_flag=True, help="Exit once no job is ready and none of this worker's jobs runs.")
@click.option(
    "--lease-timeout",
    type=click.FloatRange(min=0, min_open=True, max=MAX_TIMEOUT),
    default=30.0,
    show_default=True,
    help="Seconds a job stays claimed without a heartbeat.",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0, max=MAX_TIMEOUT),
    default=25.0,
    show_default=True,
    help="Seconds running jobs get to finish on SIGTERM/SIGINT.",
)
@click.option(
    "--max-jobs-per-child",
    type=click.IntRange(min=1),
    default=None,
    help="With --processes: replace a worker process (gracefully) once it has run this many jobs.",
)
@click.option(
    "--max-memory-per-child",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="MB",
    help="With --processes: replace a worker process (gracefully) once it uses more than this many MB.",
)
@click.option("--import", "imports", multiple=True, metavar="MODULE", help="Module defining jobs (repeatable).")
@click.option(
    "--schedules/--no-schedules",
    default=True,
    show_default=True,
    help="Run the schedules declared by the imported modules (onward.schedule).",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"], case_sensitive=False),
    help="text: readable lines; json: one JSON object per line (time, level, logger, message, job_id, event).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve Prometheus metrics at /metrics on this port (with --processes: one endpoint for the group).",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics endpoint listens on.")
@database_url_option
def worker(
    queues: str | None,
    concurrency: int,
    processes: int,
    burst: bool,
    lease_timeout: float,
    shutdown_timeout: float,
    max_jobs_per_child: int | None,
    max_memory_per_child: float | None,
    imports: tuple[str, ...],
    schedules: bool,
    log_level: str,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    database_url: str | None,
) -> None:
    """Run a worker until SIGTERM/SIGINT (or, with --burst, until no job is ready)."""
    from onward.worker import Worker

    supervised = WORKER_INDEX_ENV in os.environ  # a child of ``--processes``
    if (max_jobs_per_child or max_memory_per_child) and processes == 1 and not supervised:
        raise click.UsageError("--max-jobs-per-child and --max-memory-per-child need --processes")
    for hint, value in (("--lease-timeout", lease_timeout), ("--shutdown-timeout", shutdown_timeout)):
        if math.isnan(value):
            raise click.BadParameter("must be a number of seconds, not NaN", param_hint=hint)

    logs.configure(log_level, log_format.lower())
    import_modules(imports)
    store = open_store(database_url)
    if processes > 1:
        # Checked here first (imports, store URL), so a bad option fails once, not per child.
        store.close()
        from onward.supervisor import Supervisor, child_argv
        from onward.takeover import TakeOver

        env = dict(os.environ)
        take_over = TakeOver(lambda: open_store(database_url))
        with group_metrics(metrics_port, metrics_host, env) as child_exited:
            supervisor = Supervisor(
                child_argv(sys.argv[1:]),
                processes,
                shutdown_grace=shutdown_timeout + 10,
                env=env,
                on_child_exit=child_exited,
                take_over=take_over,
            )
            try:
                status = supervisor.run()
            finally:
                take_over.close()
            raise SystemExit(status)
    process_metrics(metrics_port, metrics_host)
    if concurrency > 1:
        # Threads that hold the store's writer lock while they wait for the interpreter lock
        # stall the other threads; switching every 0.5 ms instead of 5 ms keeps that wait
        # short (a third more short jobs per second with two threads, measured in
        # docs/benchmarks.md). This process runs nothing but the worker.
        sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
    w = Worker(
        queues=[q.strip() for q in queues.split(",") if q.strip()] if queues else None,
        concurrency=concurrency,
        lease_timeout=lease_timeout,
        shutdown_timeout=shutdown_timeout,
        store=store,
        schedules=schedules,
        journal_dir=os.environ.get(JOURNAL_ENV),  # set by a supervisor (--processes)
        max_jobs=max_jobs_per_child,
        max_memory_mb=max_memory_per_child,
        replace_when_stuck=supervised,
    )
    # Job threads are daemon threads: one that outlived the shutdown timeout (its job was
    # released to the queue) does not keep the process from exiting.
    try:
        w.run(burst=burst)
    except StoreFileError as exc:  # the file was deleted or replaced: say so and stop
        raise click.ClickException(str(exc)) from None
    store.close()
    if w.recycled is not None:
        raise SystemExit(RECYCLED)
