"""The worker metrics counted per thread without locks: the same exposition as
prometheus-client's own metrics, every thread's counts summed (those of threads that ended
too), and a group child's figures written to the multiprocess files the group's endpoint reads."""

from __future__ import annotations

import gc
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from onward import events
from onward.contrib import prometheus
from onward.contrib.prometheus import BUCKETS, Metrics
from onward.contrib.prometheus.counts import SUM

E = events.Event
OUTCOMES = {
    events.SUCCEEDED: "succeeded",
    events.FAILED: "failed",
    events.RETRIED: "retried",
    events.RELEASED: "retried",
    events.DISCARDED: "discarded",
    events.INTERRUPTED: "interrupted",
    events.CANCELLED: "cancelled",
    events.LOST: "lost",
}

# (kind, queue, job_class, duration)
HAPPENINGS = [
    (events.ENQUEUED, "default", "app.jobs:Send", None),
    (events.STARTED, "default", "app.jobs:Send", None),
    (events.SUCCEEDED, "default", "app.jobs:Send", 0.0004),
    (events.EXECUTION_ENDED, "default", "app.jobs:Send", None),
    (events.STARTED, "default", "app.jobs:Send", None),
    (events.RETRIED, "default", "app.jobs:Send", 0.05),  # on a bound: counted in its bucket
    (events.EXECUTION_ENDED, "default", "app.jobs:Send", None),
    (events.STARTED, "reports", "app.jobs:Build", None),
    (events.INTERRUPTED, "reports", "app.jobs:Build", 4000.0),  # above every bound
    (events.STARTED, "reports", "app.jobs:Build", None),  # still running
    (events.LOST, "reports", "app.jobs:Build", 2.0),
    (events.RELEASED, "reports", "app.jobs:Build", 7.0),
    (events.ENQUEUED, None, None, None),  # no labels: counted under empty ones
]


def event(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> events.Event:
    return E(kind, "id", job_class, queue, data={} if duration is None else {"duration": duration})


def reference() -> str:
    """The exposition prometheus-client's Counter, Histogram and Gauge give for HAPPENINGS."""
    registry = CollectorRegistry()
    labels = ("queue", "job_class")
    enqueued = Counter("onward_jobs_enqueued", "Jobs enqueued.", labels, registry=registry)
    started = Counter("onward_jobs_started", "Executions started.", labels, registry=registry)
    finished = Counter("onward_jobs_finished", "Executions ended, by outcome.", (*labels, "outcome"), registry=registry)
    duration = Histogram(
        "onward_job_duration_seconds", "How long executions ran.", labels, buckets=BUCKETS, registry=registry
    )
    running = Gauge("onward_jobs_running", "Executions running now.", labels, registry=registry)
    for kind, queue, job_class, seconds in HAPPENINGS:
        key = (queue or "", job_class or "")
        for outcome in set(OUTCOMES.values()):  # every series exists once its labels were seen
            finished.labels(*key, outcome)
        enqueued.labels(*key), started.labels(*key), duration.labels(*key), running.labels(*key)
        if kind == events.ENQUEUED:
            enqueued.labels(*key).inc()
        elif kind == events.STARTED:
            started.labels(*key).inc()
            running.labels(*key).inc()
        elif kind == events.EXECUTION_ENDED:
            running.labels(*key).dec()
        else:
            finished.labels(*key, OUTCOMES[kind]).inc()
            if seconds is not None:
                duration.labels(*key).observe(seconds)
    return generate_latest(registry).decode()


def comparable(text: str) -> list[str]:
    """Exposition lines in order, creation times blanked (they differ by microseconds)."""
    return sorted(re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text).splitlines())


@pytest.mark.parametrize("told", ["counted", "built"])
def test_the_exposition_is_prometheus_clients_own(told: str) -> None:
    """Whether told by the events counter (no event built) or given the built events."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for happening in HAPPENINGS:
        if told == "counted":
            metrics.count(*happening)
        else:
            metrics.on_event(event(*happening))
    assert comparable(generate_latest(registry).decode()) == comparable(reference())


def test_enabled_metrics_count_events_built_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "_metrics", None)  # this test's own, in its own registry
    heard: list[events.Event] = []
    unsubscribe = events.subscribe(heard.append, {events.STARTED})
    try:
        metrics = prometheus.enable(CollectorRegistry())
        try:
            assert events.wanted >= Metrics.KINDS
            events.count(events.SUCCEEDED, "q", "c:J", 0.002)  # as an execution announces one nobody builds
            events.emit(E(events.STARTED, "id", "c:J", "q"))  # built for another subscriber: counted too
        finally:
            prometheus.disable()
    finally:
        unsubscribe()
    events.count(events.SUCCEEDED, "q", "c:J", 0.002)  # disabled: not counted
    row = metrics.counts.totals()[("q", "c:J")]
    assert row[:4] == [0, 1, 0, 1]  # enqueued, started, ended, succeeded
    assert row[SUM] == 0.002
    assert len(heard) == 1


def test_the_metrics_counter_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.count("no-such-kind", "q", "c:J", None)  # called directly by emitters: it must not raise
    assert "could not count no-such-kind" in caplog.text
    metrics.count(events.STARTED, "q", "c:J", None)
    assert metrics.counts.totals()[("q", "c:J")][1] == 1


def test_counts_of_every_thread_are_summed_also_after_the_threads_ended() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    go = threading.Barrier(8)

    def work() -> None:
        go.wait()  # all eight count at once
        for _ in range(1000):
            metrics.on_event(event(events.STARTED, "q", "c:J", None))
            metrics.on_event(event(events.SUCCEEDED, "q", "c:J", 0.002))
            metrics.on_event(event(events.EXECUTION_ENDED, "q", "c:J", None))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gc.collect()
    labels = {"queue": "q", "job_class": "c:J"}
    assert registry.get_sample_value("onward_jobs_started_total", labels) == 8000
    assert registry.get_sample_value("onward_jobs_finished_total", {**labels, "outcome": "succeeded"}) == 8000
    assert registry.get_sample_value("onward_job_duration_seconds_bucket", {**labels, "le": "0.001"}) == 0
    assert registry.get_sample_value("onward_job_duration_seconds_bucket", {**labels, "le": "0.005"}) == 8000
    assert registry.get_sample_value("onward_job_duration_seconds_count", labels) == 8000
    assert registry.get_sample_value("onward_job_duration_seconds_sum", labels) == pytest.approx(16.0)
    assert registry.get_sample_value("onward_jobs_running", labels) == 0
    assert not metrics.counts._live, "the tables of ended threads are folded into the totals"
    metrics.on_event(event(events.STARTED, "q", "c:J", None))  # and this thread counts on top
    assert registry.get_sample_value("onward_jobs_started_total", labels) == 8001


def test_a_group_child_writes_its_figures_for_the_group_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(prometheus.MULTIPROCESS_ENV, str(tmp_path))
    metrics = Metrics(None, flush_interval=3600)  # written when asked (and at exit), not on a timer here
    assert metrics.files is not None
    try:
        for happening in HAPPENINGS:
            metrics.on_event(event(*happening))
        group = prometheus.group_registry(str(tmp_path))
        assert (
            group.get_sample_value("onward_jobs_started_total", {"queue": "default", "job_class": "app.jobs:Send"})
            is None
        )
        metrics.flush()
        send = {"queue": "default", "job_class": "app.jobs:Send"}
        build = {"queue": "reports", "job_class": "app.jobs:Build"}
        assert group.get_sample_value("onward_jobs_started_total", send) == 2
        assert group.get_sample_value("onward_jobs_finished_total", {**build, "outcome": "retried"}) == 1
        assert group.get_sample_value("onward_job_duration_seconds_count", build) == 3
        assert group.get_sample_value("onward_job_duration_seconds_bucket", {**build, "le": "+Inf"}) == 3
        assert group.get_sample_value("onward_jobs_running", build) == 2  # no execution_ended in HAPPENINGS
        assert group.get_sample_value("onward_jobs_enqueued_total", {"queue": "", "job_class": ""}) == 1
        metrics.on_event(event(events.STARTED, "default", "app.jobs:Send", None))
        metrics.files.stop()  # a stopping child writes its last figures
        assert group.get_sample_value("onward_jobs_started_total", send) == 3
    finally:
        metrics.files.stop()


def test_the_quick_event_constructor_builds_the_same_event() -> None:
    quick = events.event(events.STARTED, "j1", "a:B", "q", 2, 1, "w1", {"step": "load"})
    plain = E(events.STARTED, "j1", "a:B", "q", attempt=2, resumptions=1, worker_id="w1", data={"step": "load"})
    assert isinstance(quick, events.Event)
    for name in events.Event.__slots__:
        if name != "time":
            assert getattr(quick, name) == getattr(plain, name), name
    assert abs(quick.time - plain.time) < 5
    assert quick.step == "load"
