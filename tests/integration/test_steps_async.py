"""Steps in ``async def perform``: sync and async step functions, interruption, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import jobs_steps as js
import onward
from onward import stores
from onward.testing import drain, interrupt_after_step, interrupt_during_step


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    js.reset()
    yield
    js.reset()


def test_async_perform_runs_sync_and_async_steps(store: onward.Store) -> None:
    handle = js.AsyncImport.perform_later(3)
    assert drain() == 2
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.result == 3
    assert [(s.name, s.status) for s in record.steps] == [
        ("initialize", "completed"),
        ("process", "completed"),
        ("finalize", "completed"),
    ]
    assert (record.steps[1].cursor, record.steps[1].advanced, record.steps[1].total) == (3, 3, 3)
    assert js.items() == [0, 1, 2]
    assert js.events("finalize") == [("finalize",)]
    assert js.events("child") == [("child", "after-async-3")]  # async continuations


def test_async_job_resumes_at_its_cursor(store: onward.Store) -> None:
    handle = js.AsyncImport.perform_later(5)
    with interrupt_during_step(js.AsyncImport, "process", cursor=3):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)
    assert js.events("enter") == [("enter", None, False), ("enter", 3, True)]
    assert js.events("initialize") == [("initialize",)]
    assert js.items() == [0, 1, 2, 3, 4]
    assert record.job_state == {"count": 5}
    assert js.events("child") == [("child", "after-async-5")]


def test_async_job_interrupted_between_steps(store: onward.Store) -> None:
    handle = js.AsyncImport.perform_later(2)
    with interrupt_after_step(js.AsyncImport, "process"):
        drain()
    assert handle.refresh().resumptions == 1
    assert js.items() == [0, 1]
    assert js.events("finalize") == [("finalize",)]


def test_interruption_wrapped_in_a_task_group_is_an_interruption(store: onward.Store) -> None:
    handle = js.AsyncTaskGroup.perform_later(4)
    with interrupt_during_step(js.AsyncTaskGroup, "grouped", cursor=2):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)  # not counted as a crash
    assert record.error is None
    assert js.items() == [0, 1, 2, 3]


def test_async_error_after_progress_resumes_from_the_checkpoint(store: onward.Store) -> None:
    js.FAIL[2] = 1
    handle = js.AsyncImport.perform_later(4)
    drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert (record.attempts, record.resumptions) == (1, 1)
    assert js.items() == [0, 1, 2, 3]


def test_async_checkpoints_are_visible_from_another_connection(store: onward.Store) -> None:
    handle = js.AsyncImportEveryChange.perform_later(5, 1, "g")
    other = stores.open_store(store.url)
    worker = js.BackgroundWorker(store, burst=True)
    try:
        js.gate("g").wait_reached()
        # saves run off the event loop: poll (with a deadline) until the save lands
        deadline = time.monotonic() + 10
        step = other.get(handle.id).steps[1]
        while step.cursor != 2 and time.monotonic() < deadline:
            time.sleep(0.005)
            step = other.get(handle.id).steps[1]
        assert (step.status, step.cursor, step.advanced, step.total) == ("running", 2, 2, 5)
        assert other.get(handle.id).job_state == {"count": 2}
    finally:
        js.gate("g").open()
        worker.join()
        other.close()
    assert handle.refresh().state == "succeeded"


def test_stopping_worker_interrupts_an_async_job(store: onward.Store) -> None:
    handle = js.AsyncImport.perform_later(5, 1, "g")
    worker = js.BackgroundWorker(store)
    js.gate("g").wait_reached()
    worker.worker.stop()
    js.gate("g").open()
    worker.join()
    record = handle.refresh()
    assert record.state == "enqueued"
    assert record.resumptions == 1
    assert record.steps[1].cursor == 3
    assert js.events("child") == []
    drain()
    assert handle.refresh().state == "succeeded"
    assert js.items() == [0, 1, 2, 3, 4]


def test_async_perform_now_from_sync_code(store: onward.Store) -> None:
    with interrupt_during_step(js.AsyncImport, "process", cursor=1):
        assert js.AsyncImport.perform_now(3) == 3
    assert js.items() == [0, 1, 2]


def test_async_perform_now_inside_a_running_event_loop(store: onward.Store) -> None:
    async def caller() -> int:
        result: int = js.AsyncImport.perform_now(2)
        return result

    assert asyncio.run(caller()) == 2
    assert js.items() == [0, 1]
