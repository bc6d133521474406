"""What the worker metrics look like to Prometheus: the metric families read from
:class:`~onward.contrib.prometheus.counts.Counts` at scrape time, and, for a group of worker
processes, the multiprocess files the group's endpoint adds up."""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from onward.contrib.prometheus.counts import (
    BUCKETS,
    ENDED,
    ENQUEUED,
    FIRST_BUCKET,
    FIRST_OUTCOME,
    OUTCOMES,
    STARTED,
    SUM,
    Counts,
    Labels,
    Row,
)

__all__ = ["FLUSH_INTERVAL", "LABELS", "Collector", "FileWriter"]

LABELS = ("queue", "job_class")
_LE = (*(floatToGoString(b) for b in BUCKETS), "+Inf")  # type: ignore[no-untyped-call]

# name, help (as prometheus-client's Counter, Gauge and Histogram of earlier versions had them)
_ENQUEUED = ("onward_jobs_enqueued", "Jobs enqueued.")
_STARTED = ("onward_jobs_started", "Executions started.")
_FINISHED = ("onward_jobs_finished", "Executions ended, by outcome.")
_DURATION = ("onward_job_duration_seconds", "How long executions ran.")
_RUNNING = ("onward_jobs_running", "Executions running now.")

#: Seconds between two writes of a group child's figures to the multiprocess files: a scrape
#: of the group's endpoint is at most this much behind (and a child killed outright loses at
#: most this much of its counts; one that stops writes them on its way out).
FLUSH_INTERVAL = 1.0


def _use_created() -> bool:
    from prometheus_client import metrics

    return bool(getattr(metrics, "_use_created", True))


class Collector:
    """A prometheus-client collector (``registry.register(Collector(counts))``) serving the
    worker metrics from ``counts`` at each scrape."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def describe(self) -> list[Metric]:
        return list(self._families({}))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.counts.totals())

    def _families(self, totals: dict[Labels, Row]) -> Iterator[Metric]:
        enqueued = CounterMetricFamily(*_ENQUEUED, labels=LABELS)
        started = CounterMetricFamily(*_STARTED, labels=LABELS)
        finished = CounterMetricFamily(*_FINISHED, labels=(*LABELS, "outcome"))
        duration = HistogramMetricFamily(*_DURATION, labels=LABELS)
        running = GaugeMetricFamily(*_RUNNING, labels=LABELS)
        with_created = _use_created()
        for labels, row in sorted(totals.items()):
            created = self.counts.created.get(labels) if with_created else None
            enqueued.add_metric(labels, row[ENQUEUED], created=created)
            started.add_metric(labels, row[STARTED], created=created)
            for i, outcome in enumerate(OUTCOMES):
                finished.add_metric((*labels, outcome), row[FIRST_OUTCOME + i], created=created)
            cumulative: float = 0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(_LE, row[FIRST_BUCKET:], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            duration.add_metric(labels, buckets, row[SUM])
            if created is not None:
                duration.samples.append(
                    Sample(f"{_DURATION[0]}_created", dict(zip(LABELS, labels, strict=True)), created)
                )
            running.add_metric(labels, row[STARTED] - row[ENDED])
        yield enqueued
        yield started
        yield finished
        yield duration
        yield running


class FileWriter:
    """In a process of a group: writes the figures of ``counts`` to prometheus-client's
    multiprocess files (in ``PROMETHEUS_MULTIPROC_DIR``, the values its own metrics would
    write) every ``interval`` seconds, and when the process exits, from a daemon thread."""

    def __init__(self, counts: Counts, interval: float = FLUSH_INTERVAL) -> None:
        self.counts = counts
        self.interval = interval
        value_class: Any = values.ValueClass
        if not getattr(value_class, "_multiprocess", False):  # the variable was set after the import
            value_class = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        self._value_class = value_class
        self._values: dict[Labels, list[Any]] = {}
        self._written: dict[Labels, Row] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start()
        atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=self._forked)

    def _start(self) -> None:
        """Write every ``interval`` seconds."""
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="onward-metrics-files", daemon=True)
        self._thread.start()

    def _forked(self) -> None:
        """(In a forked child.) Its figures start from zero, in files of its own."""
        self._lock = threading.Lock()
        self._values, self._written = {}, {}
        if not self._stop.is_set():
            self._start()

    def _at_exit(self) -> None:
        if not self._stop.is_set():
            self.stop()

    def stop(self) -> None:
        """Write the figures a last time and stop writing."""
        self._stop.set()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Write the figures that changed since the last write."""
        with self._lock:
            for labels, row in self.counts.totals().items():
                if self._written.get(labels) == row:
                    continue
                found = self._values.get(labels)
                if found is None:
                    found = self._values[labels] = self._make(labels)
                for value, figure in zip(found, self._figures(row), strict=True):
                    value.set(figure)
                self._written[labels] = row

    @staticmethod
    def _figures(row: Row) -> list[float]:
        """In the order of :meth:`_make`."""
        return [
            row[ENQUEUED],
            row[STARTED],
            *row[FIRST_OUTCOME : FIRST_OUTCOME + len(OUTCOMES)],
            row[STARTED] - row[ENDED],
            row[SUM],
            *row[FIRST_BUCKET:],
        ]

    def _make(self, labels: Labels) -> list[Any]:
        """The multiprocess values of one series, named as prometheus-client's metrics name them."""
        v = self._value_class
        enqueued, started, finished = _ENQUEUED[0], _STARTED[0], _FINISHED[0]
        duration, running = _DURATION[0], _RUNNING[0]
        return [
            v("counter", enqueued, f"{enqueued}_total", LABELS, labels, _ENQUEUED[1]),
            v("counter", started, f"{started}_total", LABELS, labels, _STARTED[1]),
            *(
                v("counter", finished, f"{finished}_total", (*LABELS, "outcome"), (*labels, o), _FINISHED[1])
                for o in OUTCOMES
            ),
            v("gauge", running, running, LABELS, labels, _RUNNING[1], multiprocess_mode="livesum"),
            v("histogram", duration, f"{duration}_sum", LABELS, labels, _DURATION[1]),
            *(
                v("histogram", duration, f"{duration}_bucket", (*LABELS, "le"), (*labels, le), _DURATION[1])
                for le in _LE
            ),
        ]
