"""``onward worker --metrics-port``: Prometheus metrics for one worker or a whole group.

One process serves its own figures. Under ``--processes`` the children write theirs to a
directory the supervisor made (prometheus-client's multiprocess mode, through the
``PROMETHEUS_MULTIPROC_DIR`` the supervisor gives them) and the supervisor serves their sum
on one port; it forgets a child's running-jobs figure when the child ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import click

__all__ = ["CHILD_ENV", "group_metrics", "process_metrics"]

#: Set in the children of a group whose supervisor serves the metrics.
CHILD_ENV = "ONWARD_METRICS_CHILD"


def _prometheus() -> ModuleType:
    try:
        from onward.contrib import prometheus
    except ImportError as exc:
        raise click.ClickException(
            f"--metrics-port needs prometheus-client ({exc.name or exc} is missing): pip install 'onward[metrics]'"
        ) from None
    return prometheus


def process_metrics(port: int | None, host: str) -> None:
    """In a worker process: count job events, and serve them unless a supervisor does."""
    if os.environ.get(CHILD_ENV):
        _prometheus().enable()
        return
    if port is None:
        return
    prometheus = _prometheus()
    prometheus.enable()
    try:
        prometheus.serve(port, host)
    except OSError as exc:
        raise click.ClickException(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc}") from None


@contextmanager
def group_metrics(port: int | None, host: str, env: dict[str, str]) -> Iterator[Callable[[int], None] | None]:
    """For a supervisor: when ``port`` is given, add to the children's ``env`` what makes them
    write their figures to a fresh shared directory, serve the group's sum on ``port``, and
    yield the function to call with the pid of each child that ends."""
    if port is None:
        yield None
        return
    prometheus = _prometheus()
    directory = tempfile.mkdtemp(prefix="onward-metrics-")
    try:
        env[prometheus.MULTIPROCESS_ENV] = directory
        env[CHILD_ENV] = "1"
        try:
            prometheus.serve(port, host, registry=prometheus.group_registry(directory))
        except OSError as exc:
            raise click.ClickException(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc}") from None
        yield lambda pid: prometheus.process_exited(pid, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
