"""Prometheus metrics of workers, from the job events (``pip install 'onward[metrics]'``).

``onward worker --metrics-port 9464`` serves them at ``/metrics``; with ``--processes N`` the
supervisor serves one endpoint for the whole group (prometheus-client's multiprocess mode:
each child writes its figures to a shared directory, at most a second apart and when it
stops, and the supervisor adds them up). Embedded::

    from onward.contrib import prometheus

    prometheus.enable()              # count this process's job events
    prometheus.serve(9464)           # and serve them (or expose prometheus_client's registry yourself)

Every metric is labelled by ``queue`` and ``job_class`` (the import path):

- ``onward_jobs_enqueued_total``: jobs enqueued by this process (workers enqueue continuations).
- ``onward_jobs_started_total``: executions started (attempts and resumptions).
- ``onward_jobs_finished_total{outcome}``: executions ended, by outcome: ``succeeded``,
  ``failed``, ``retried`` (an error, to run again: a retry or a resumption; also a job given
  back by a worker that stopped), ``discarded``, ``interrupted``, ``cancelled``, ``lost``.
- ``onward_job_duration_seconds``: a histogram of execution durations, every outcome.
- ``onward_jobs_running``: executions running now.

Counting a job's events takes no lock and, unless another subscriber listens to them, builds
no event objects (the metrics are an events *counter*): each thread counts in a table of its
own, and the tables are added up when Prometheus scrapes (see
:mod:`onward.contrib.prometheus.counts`).
Nothing here is imported unless it is turned on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily

from onward import events
from onward.contrib.prometheus.counts import BUCKETS, Counts
from onward.contrib.prometheus.exposed import FLUSH_INTERVAL, LABELS, Collector, FileWriter

if TYPE_CHECKING:
    from onward.admin_values import ReadyQueue

__all__ = [
    "BUCKETS",
    "FLUSH_INTERVAL",
    "LABELS",
    "MULTIPROCESS_ENV",
    "Metrics",
    "disable",
    "enable",
    "group_registry",
    "process_exited",
    "queue_metrics",
    "serve",
]

#: Set by prometheus-client's multiprocess mode: the directory where processes write figures.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Onward's worker metrics: :attr:`count` (an events counter) counts job events,
    served from ``registry`` at each scrape; with no registry and ``PROMETHEUS_MULTIPROC_DIR``
    set, written to that directory's multiprocess files instead (every ``flush_interval``
    seconds, and at exit)."""

    #: The event kinds it counts.
    KINDS = Counts.KINDS

    def __init__(self, registry: CollectorRegistry | None, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.counts = Counts()
        #: The events counter (:func:`onward.events.subscribe_counter`): counts one event in
        #: the calling thread's table, without the event being built.
        self.count: events.Counter = self.counts.count
        #: The same as an events subscriber, for an event already built.
        self.on_event: Callable[[events.Event], None] = self.counts.on_event
        self.files: FileWriter | None = None
        if registry is not None:
            registry.register(Collector(self.counts))
        elif os.environ.get(MULTIPROCESS_ENV):
            self.files = FileWriter(self.counts, flush_interval)

    def flush(self) -> None:
        """Write the figures to the multiprocess files now (when it writes them)."""
        if self.files is not None:
            self.files.flush()


_lock = threading.Lock()
_metrics: Metrics | None = None
_unsubscribe: Callable[[], None] | None = None


def enable(registry: CollectorRegistry | None = None) -> Metrics:
    """Count this process's job events in ``registry`` (default: prometheus-client's global
    registry, or the multiprocess files when ``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    global _metrics, _unsubscribe
    with _lock:
        if _metrics is None:
            from prometheus_client import REGISTRY

            _metrics = Metrics(None if os.environ.get(MULTIPROCESS_ENV) else registry or REGISTRY)
        if _unsubscribe is None:
            _unsubscribe = events.subscribe_counter(_metrics.count, Metrics.KINDS, guarded=True)
        return _metrics


def disable() -> None:
    """Stop counting (the figures so far stay in their registry, or are written to the files)."""
    global _unsubscribe
    with _lock:
        if _unsubscribe is not None:
            _unsubscribe()
            _unsubscribe = None
        if _metrics is not None:
            _metrics.flush()


def serve(port: int, host: str = "0.0.0.0", registry: CollectorRegistry | None = None) -> Any:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the server."""
    from prometheus_client import REGISTRY

    server, _thread = start_http_server(port, addr=host, registry=registry or REGISTRY)
    return server


def group_registry(directory: str) -> CollectorRegistry:
    """A registry adding up what every process of a group wrote to ``directory``."""
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class _QueueGauges:
    """The dashboard's gauges: ready jobs per queue and the age of the oldest."""

    def __init__(self, queues: Sequence[ReadyQueue]) -> None:
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = GaugeMetricFamily("onward_queue_ready_jobs", "Jobs ready to run now.", labels=["queue"])
        age = GaugeMetricFamily(
            "onward_queue_oldest_ready_age_seconds",
            "How long the job of the queue ready longest has been waiting since it became due.",
            labels=["queue"],
        )
        for q in self.queues:
            ready.add_metric([q.queue], q.ready)
            age.add_metric([q.queue], q.oldest_age)
        yield ready
        yield age


def queue_metrics(queues: Sequence[ReadyQueue]) -> tuple[bytes, str]:
    """The queue gauges in Prometheus's text format, and its content type."""
    registry = CollectorRegistry()
    registry.register(_QueueGauges(queues))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exited(pid: int, directory: str) -> None:
    """Forget the live figures (running jobs) of a process of the group that exited."""
    prometheus_multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
