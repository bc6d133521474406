"""Helpers for the dashboard tests: a worker in a thread, polling with a deadline, a
stepped job held mid-step, and the dashboard served by uvicorn in a thread."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dashboard_jobs

from onward import stores
from onward.worker import Worker

with warnings.catch_warnings():
    # starlette.testclient suggests another HTTP client package; httpx works the same here.
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from starlette.testclient import TestClient

__all__ = ["LiveServer", "TestClient", "running_worker", "start_stepped", "wait_for"]


@contextmanager
def running_worker(store: stores.Store, queues: list[str] | None = None) -> Iterator[Worker]:
    """A worker serving ``queues`` in a thread of the test; stopped (and joined) on exit."""
    worker = Worker(queues=queues, store=store, lease_timeout=30.0, shutdown_timeout=5.0, poll_interval=0.05)
    thread = threading.Thread(target=worker.run, name="dashboard-test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        dashboard_jobs.THROTTLE.open()
        worker.stop()
        thread.join(15)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_stepped(store: stores.Store, n: int = 5, saved: int = 2) -> str:
    """Enqueue a :class:`dashboard_jobs.Stepped` job; once a worker runs it, let it save
    ``saved`` items of its ``process`` step and return its id (it then waits)."""
    handle = dashboard_jobs.Stepped.perform_later(n)
    dashboard_jobs.THROTTLE.allow(saved)
    dashboard_jobs.THROTTLE.wait_saved(saved)
    return handle.id


class LiveServer:
    """The dashboard served by uvicorn on a free loopback port, in a thread of the test."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="dashboard-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
