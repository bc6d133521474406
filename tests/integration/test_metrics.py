"""Prometheus metrics: a worker group's one endpoint agrees with the store's own counts."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs_core import Echo, Fails, FailsUntilAttempt, Parent
from onward import Store
from onward.stores.base import JobFilter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(sample name, sorted labels) -> value`` of every sample the endpoint serves."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def group(store_url: str, subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start ``onward worker --processes N --metrics-port P``; returns P. Stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(processes: int = 2) -> int:
        port = free_port()
        log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed with the process
        argv = [sys.executable, "-m", "onward", "worker", "--import", "jobs_core", "--database-url", store_url]
        argv += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1", "--log-level", "WARNING"]
        if processes > 1:
            argv += ["--processes", str(processes), "--concurrency", "1"]
        procs.append(subprocess.Popen(argv, env=subprocess_env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
        wait_for(lambda: _answers(port), "the metrics endpoint", timeout=60)
        return port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _answers(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


@pytest.mark.parametrize("processes", [1, 2])
def test_a_worker_group_serves_one_endpoint_that_agrees_with_the_store(
    store: Store, group: Callable[..., int], processes: int
) -> None:
    handles = Echo.perform_all_later([(i,) for i in range(40)])
    handles += Fails.perform_all_later([(f"no {i}",) for i in range(6)])
    handles += FailsUntilAttempt.perform_all_later([(2,) for _ in range(6)])
    handles += Parent.perform_all_later([(i,) for i in range(5)])
    port = group(processes)
    during = scrape(port)  # while the group works: a partial count, never more than the final one
    jobs = len(handles) + 10  # and two children per Parent

    def final() -> bool:
        records = store.list_jobs(JobFilter(limit=1000))
        return len(records) == jobs and all(r.finished for r in records)

    wait_for(final, "every job to finish")
    records = store.list_jobs(JobFilter(limit=1000))
    executions = sum(r.attempts + r.resumptions for r in records)
    succeeded = sum(r.state == "succeeded" for r in records)
    failed = sum(r.state == "failed" for r in records)
    retried = sum(r.attempts - 1 for r in records)
    children = sum(r.parent_id is not None for r in records)

    def agrees() -> bool:  # the last successes are counted once their commit returns
        after = scrape(port)
        return total(after, "onward_jobs_finished_total") == executions

    wait_for(agrees, "the metrics to count every execution", timeout=30)
    after = scrape(port)
    assert total(after, "onward_jobs_started_total") == executions
    assert total(after, "onward_jobs_finished_total", outcome="succeeded") == succeeded
    assert total(after, "onward_jobs_finished_total", outcome="failed") == failed
    assert total(after, "onward_jobs_finished_total", outcome="retried") == retried
    assert total(after, "onward_jobs_enqueued_total") == children  # workers enqueue the continuations
    assert total(after, "onward_job_duration_seconds_count") == executions
    assert total(after, "onward_jobs_running") == 0
    fails = {"job_class": "jobs_core:Fails", "queue": "default"}
    assert total(after, "onward_jobs_finished_total", outcome="failed", **fails) == 6
    assert total(during, "onward_jobs_started_total") <= executions
