"""Prometheus metrics of workers, from the job events (``pip install 'onward[metrics]'``).

``onward worker --metrics-port 9464`` serves them at ``/metrics``; with ``--processes N`` the
supervisor serves one endpoint for the whole group (prometheus-client's multiprocess mode:
each child writes its figures to a shared directory, the supervisor adds them up). Embedded::

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

Nothing here is imported unless it is turned on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily

from onward import events

if TYPE_CHECKING:
    from onward.admin_values import ReadyQueue

__all__ = [
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

LABELS = ("queue", "job_class")
#: Seconds: from a no-op job to a long import.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

_OUTCOMES = {
    events.SUCCEEDED: "succeeded",
    events.FAILED: "failed",
    events.RETRIED: "retried",
    events.RELEASED: "retried",
    events.DISCARDED: "discarded",
    events.INTERRUPTED: "interrupted",
    events.CANCELLED: "cancelled",
    events.LOST: "lost",
}


class _Series:
    """The metrics' children for one ``(queue, job_class)``, looked up once."""

    __slots__ = ("duration", "enqueued", "finished", "running", "started")

    def __init__(self, metrics: Metrics, labels: tuple[str, str]) -> None:
        self.enqueued = metrics.enqueued.labels(*labels)
        self.started = metrics.started.labels(*labels)
        self.running = metrics.running.labels(*labels)
        self.duration = metrics.duration.labels(*labels)
        self.finished = {outcome: metrics.finished.labels(*labels, outcome) for outcome in set(_OUTCOMES.values())}


class Metrics:
    """Onward's metrics in ``registry``, updated by :meth:`on_event` (an events subscriber)."""

    #: The event kinds it counts.
    KINDS = frozenset({events.ENQUEUED, events.STARTED, events.EXECUTION_ENDED, *_OUTCOMES})

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.enqueued = Counter("onward_jobs_enqueued", "Jobs enqueued.", LABELS, registry=registry)
        self.started = Counter("onward_jobs_started", "Executions started.", LABELS, registry=registry)
        self.finished = Counter(
            "onward_jobs_finished", "Executions ended, by outcome.", (*LABELS, "outcome"), registry=registry
        )
        self.duration = Histogram(
            "onward_job_duration_seconds", "How long executions ran.", LABELS, buckets=BUCKETS, registry=registry
        )
        self.running = Gauge(
            "onward_jobs_running", "Executions running now.", LABELS, registry=registry, multiprocess_mode="livesum"
        )
        self._series: dict[tuple[str, str], _Series] = {}
        self._series_lock = threading.Lock()

    def series(self, queue: str | None, job_class: str | None) -> _Series:
        """The children labelled ``queue`` and ``job_class`` (made on first use)."""
        key = (queue or "", job_class or "")
        found = self._series.get(key)
        if found is None:
            with self._series_lock:
                found = self._series.get(key)
                if found is None:
                    found = self._series[key] = _Series(self, key)
        return found

    def on_event(self, event: events.Event) -> None:
        kind = event.kind
        if kind == events.STARTED:
            series = self.series(event.queue, event.job_class)
            series.started.inc()
            series.running.inc()
        elif kind == events.EXECUTION_ENDED:
            self.series(event.queue, event.job_class).running.dec()
        elif kind in _OUTCOMES:
            series = self.series(event.queue, event.job_class)
            series.finished[_OUTCOMES[kind]].inc()
            duration = event.duration
            if duration is not None:
                series.duration.observe(duration)
        elif kind == events.ENQUEUED:
            self.series(event.queue, event.job_class).enqueued.inc()


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
            _unsubscribe = events.subscribe(_metrics.on_event, Metrics.KINDS)
        return _metrics


def disable() -> None:
    """Stop counting (the figures so far stay in their registry)."""
    global _unsubscribe
    with _lock:
        if _unsubscribe is not None:
            _unsubscribe()
            _unsubscribe = None


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
