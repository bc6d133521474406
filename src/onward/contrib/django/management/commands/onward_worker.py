"""``python manage.py onward_worker``: an Onward worker with Django set up.

It takes the options of ``onward worker`` and serves the project's store (the one Django
tasks and Onward jobs are enqueued in). Around each job it calls Django's
``close_old_connections()``, as Django does around each request, so a long-lived worker
drops connections that broke or outlived ``CONN_MAX_AGE``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from django.core.management.base import BaseCommand, CommandError

from onward import connecting, logs
from onward.cli.metrics import group_metrics, process_metrics
from onward.contrib.django.connections import around_jobs
from onward.contrib.django.store import DjangoStore
from onward.errors import ConfigurationError
from onward.journal import ENV_VAR as JOURNAL_ENV
from onward.stores.base import Store
from onward.supervisor import RECYCLED, WORKER_INDEX_ENV

WORKER_SWITCH_INTERVAL = 0.0005  # seconds between thread switches; see onward.cli.worker


def _number(
    cast: Callable[[str], Any], minimum: float, maximum: float | None = None, *, allow_minimum: bool = True
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (value == minimum and not allow_minimum):
            raise ArgumentTypeError(f"must be {'at least' if allow_minimum else 'more than'} {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise ArgumentTypeError(f"must be at most {maximum}, got {text}")
        return value

    return parse


class Command(BaseCommand):
    help = "Run an Onward worker until SIGTERM/SIGINT (or, with --burst, until no job is ready)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--queues", default=None, help="Comma-separated queues to serve (default: all).")
        parser.add_argument("--concurrency", type=_number(int, 1), default=1, help="Jobs run at once (threads).")
        parser.add_argument(
            "--processes",
            type=_number(int, 1),
            default=1,
            help="Worker processes, each running --concurrency jobs, under one supervisor that restarts crashed ones.",
        )
        parser.add_argument(
            "--burst", action="store_true", help="Exit once no job is ready and none of this worker's jobs runs."
        )
        parser.add_argument(
            "--lease-timeout",
            type=_number(float, 0, allow_minimum=False),
            default=30.0,
            help="Seconds a job stays claimed without a heartbeat (default 30).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=_number(float, 0),
            default=25.0,
            help="Seconds running jobs get to finish on SIGTERM/SIGINT (default 25).",
        )
        parser.add_argument(
            "--max-jobs-per-child",
            type=_number(int, 1),
            default=None,
            help="With --processes: replace a worker process (gracefully) once it has run this many jobs.",
        )
        parser.add_argument(
            "--max-memory-per-child",
            type=_number(float, 0, allow_minimum=False),
            default=None,
            metavar="MB",
            help="With --processes: replace a worker process (gracefully) once it uses more than this many MB.",
        )
        parser.add_argument(
            "--import",
            dest="imports",
            action="append",
            default=[],
            metavar="MODULE",
            help="Module defining jobs (repeatable).",
        )
        parser.add_argument("--log-level", default=None, type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        parser.add_argument(
            "--log-format",
            default=None,
            type=str.lower,
            choices=list(logs.FORMATS),
            help="text: readable lines; json: one JSON object per line. Without --log-level or --log-format, "
            "a LOGGING setting that configures the root or 'onward' logger is used as it is.",
        )
        parser.add_argument(
            "--metrics-port",
            type=_number(int, 1, 65535),
            default=None,
            help="Serve Prometheus metrics at /metrics on this port (with --processes: one endpoint for the group).",
        )
        parser.add_argument(
            "--metrics-host", default="0.0.0.0", help="Address the metrics endpoint listens on (default 0.0.0.0)."
        )
        parser.add_argument(
            "--database-url", default=None, help="Serve this store instead of the one the project's settings name."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        supervised = WORKER_INDEX_ENV in os.environ  # a child of --processes
        recycling = options["max_jobs_per_child"] or options["max_memory_per_child"]
        if recycling and options["processes"] == 1 and not supervised:
            raise CommandError("--max-jobs-per-child and --max-memory-per-child need --processes")
        _configure_logging(options["log_level"], options["log_format"])
        _import_modules(options["imports"])
        store = _open_store(options["database_url"])
        port, host = options["metrics_port"], options["metrics_host"]
        if options["processes"] > 1:
            store.close()  # each child opens its own; this one only checked that it opens
            with _command_errors():
                self._supervise(options, port, host)
            return
        with _command_errors():
            process_metrics(port, host)
        from onward.worker import Worker

        if options["concurrency"] > 1:
            sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
        worker = Worker(
            queues=[q.strip() for q in options["queues"].split(",") if q.strip()] if options["queues"] else None,
            concurrency=options["concurrency"],
            lease_timeout=options["lease_timeout"],
            shutdown_timeout=options["shutdown_timeout"],
            store=store,
            journal_dir=os.environ.get(JOURNAL_ENV),  # set by a supervisor (--processes)
            max_jobs=options["max_jobs_per_child"],
            max_memory_mb=options["max_memory_per_child"],
            replace_when_stuck=supervised,
        )
        with around_jobs():
            worker.run(burst=options["burst"])
        if worker.recycled is not None:
            raise SystemExit(RECYCLED)

    def _supervise(self, options: dict[str, Any], port: int | None, host: str) -> None:
        from onward.supervisor import Supervisor
        from onward.takeover import TakeOver

        env = dict(os.environ)
        take_over = TakeOver(lambda: _open_store(options["database_url"]))
        with group_metrics(port, host, env) as child_exited:
            supervisor = Supervisor(
                child_command(options),
                options["processes"],
                shutdown_grace=options["shutdown_timeout"] + 10,
                env=env,
                on_child_exit=child_exited,
                take_over=take_over,
            )
            try:
                status = supervisor.run()
            finally:
                take_over.close()
        if status:
            raise SystemExit(status)


@contextmanager
def _command_errors() -> Iterator[None]:
    """The metrics endpoint's errors (a busy port, prometheus-client missing) as one line."""
    try:
        yield
    except click.ClickException as exc:
        raise CommandError(exc.format_message()) from None


def child_command(options: dict[str, Any]) -> list[str]:
    """The command line of one worker process under ``--processes``: this command, run the
    way it was started (``manage.py``, ``django-admin``), with the same options but one process."""
    entry = sys.argv[0] if sys.argv else ""
    if entry and os.path.isfile(entry) and os.path.basename(entry) != "__main__.py":
        command = [sys.executable, os.path.abspath(entry)]
    else:
        command = [sys.executable, "-m", "django"]
    command.append("onward_worker")
    for flag, name in (
        ("--queues", "queues"),
        ("--concurrency", "concurrency"),
        ("--lease-timeout", "lease_timeout"),
        ("--shutdown-timeout", "shutdown_timeout"),
        ("--max-jobs-per-child", "max_jobs_per_child"),
        ("--max-memory-per-child", "max_memory_per_child"),
        ("--log-level", "log_level"),
        ("--log-format", "log_format"),
        ("--database-url", "database_url"),
        ("--settings", "settings"),
        ("--pythonpath", "pythonpath"),
    ):
        if options.get(name) is not None:
            command += [flag, str(options[name])]
    for module in options.get("imports") or ():
        command += ["--import", module]
    if options.get("burst"):
        command.append("--burst")
    return command


def _configure_logging(level: str | None, fmt: str | None) -> None:
    configured = logging.getLogger().handlers or logging.getLogger("onward").handlers
    if level is None and fmt is None and configured:
        return  # the project's LOGGING decides
    logs.configure(level or "INFO", fmt or "text")


def _import_modules(modules: list[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise CommandError(f"--import {name}: {type(exc).__name__}: {exc}") from exc


def _open_store(url: str | None) -> Store:
    """The store to serve: ``url``, else Onward's default store, which the app made the
    project's (see :mod:`onward.contrib.django.store`)."""
    try:
        store = connecting.connect(url) if url else connecting.default()
        return store.open() if isinstance(store, DjangoStore) else store
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc
