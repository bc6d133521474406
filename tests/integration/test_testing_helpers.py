"""``onward.testing``: ``drain``, the interrupt helpers, and the ``onward_store`` pytest fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import jobs_steps as js
import onward
from jobs_core import AppendLine, RetriesLater, WaitingParent
from onward.stores.base import JobFilter
from onward.testing import drain, interrupt_after_step, interrupt_during_step


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    js.reset()
    yield
    js.reset()


# -- drain ----------------------------------------------------------------------------------


def test_drain_returns_the_number_of_executions(store: onward.Store) -> None:
    assert drain() == 0
    for value in range(3):
        js.Keyed.perform_later(f"k{value}", value)
    assert drain() == 3
    assert drain() == 0


def test_drain_counts_the_jobs_enqueued_and_resumed_along_the_way(store: onward.Store) -> None:
    handle = js.Import.perform_later(3)
    with interrupt_during_step(js.Import, "process"):
        # the job, its resumption, then its continuation
        assert drain() == 3
    assert handle.refresh().state == "succeeded"
    assert js.events("child") == [("child", "after-import-3")]


def test_drain_does_not_wait_for_jobs_scheduled_later(store: onward.Store) -> None:
    later = js.Keyed.set(wait=3600).perform_later("later")
    assert drain() == 0
    assert later.refresh().state == "enqueued"


def test_drain_serves_only_the_queues_given(store: onward.Store) -> None:
    a = js.Keyed.set(queue="a").perform_later("a")
    b = js.Keyed.set(queue="b").perform_later("b")
    assert drain(queues=["a"]) == 1
    assert a.refresh().state == "succeeded"
    assert b.refresh().state == "enqueued"


# -- interrupt helpers ---------------------------------------------------------------------


def test_interrupt_during_step_fires_once(store: onward.Store) -> None:
    handle = js.ImportEveryChange.perform_later(5)
    with interrupt_during_step(js.ImportEveryChange, "process"):
        drain()
    record = handle.refresh()
    assert record.resumptions == 1  # many checkpoints matched; it fired at the first only
    assert js.events("enter") == [("enter", None, False), ("enter", 1, True)]
    assert js.items() == [0, 1, 2, 3, 4]


def test_interrupt_during_step_fires_for_the_first_matching_execution_only(store: onward.Store) -> None:
    first = js.Import.perform_later(2)
    second = js.Import.perform_later(2)
    with interrupt_during_step(js.Import, "process"):
        drain()
    assert first.refresh().resumptions + second.refresh().resumptions == 1


def test_interrupt_during_step_matches_the_cursor(store: onward.Store) -> None:
    handle = js.Import.perform_later(6)
    with interrupt_during_step(js.Import, "process", cursor=4):
        drain()
    assert js.events("enter") == [("enter", None, False), ("enter", 4, True)]
    assert handle.refresh().resumptions == 1


def test_interrupt_during_step_includes_subclasses(store: onward.Store) -> None:
    handle = js.ImportThrottled.perform_later(3)
    with interrupt_during_step(js.Import, "process", cursor=2):
        drain()
    assert handle.refresh().resumptions == 1
    assert js.events("enter")[-1] == ("enter", 2, True)  # saved although the interval is an hour


def test_interrupt_during_step_ignores_other_classes(store: onward.Store) -> None:
    js.Import.perform_later(3)
    with (
        pytest.raises(AssertionError, match="ImportThrottled was never interrupted during step 'process'"),
        interrupt_during_step(js.ImportThrottled, "process"),
    ):
        drain()
    assert js.items() == [0, 1, 2]


def test_interrupt_during_step_never_reached_raises_on_exit(store: onward.Store) -> None:
    handle = js.Import.perform_later(3)
    with (
        pytest.raises(AssertionError, match="at cursor 99"),
        interrupt_during_step(js.Import, "process", cursor=99),
    ):
        drain()
    assert handle.refresh().state == "succeeded"
    assert handle.refresh().resumptions == 0


def test_interrupt_after_step_interrupts_at_the_next_boundary(store: onward.Store) -> None:
    handle = js.Import.perform_later(2)
    with interrupt_after_step(js.Import, "initialize"):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.resumptions == 1
    assert js.events("outside") == [("outside", 1, 0), ("outside", 1, 1)]
    assert js.events("initialize") == [("initialize",)]


def test_interrupt_after_the_last_step_raises_on_exit(store: onward.Store) -> None:
    handle = js.Import.perform_later(2)
    with (
        pytest.raises(AssertionError, match="never interrupted after step 'finalize'"),
        interrupt_after_step(js.Import, "finalize"),
    ):
        drain()
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.resumptions == 0


def test_interrupt_helpers_work_with_perform_now(store: onward.Store) -> None:
    with interrupt_after_step(js.Import, "process"):
        assert js.Import.perform_now(2) == 2
    assert js.events("outside") == [("outside", 1, 0), ("outside", 1, 1)]


def test_interrupt_helpers_need_a_job_class() -> None:
    with pytest.raises(TypeError, match="Job subclass"), interrupt_during_step(object, "x"):  # type: ignore[arg-type]
        pass


# -- the pytest plugin ---------------------------------------------------------------------

PLUGIN_TESTS = """
    import onward
    from onward import stores
    from onward.testing import drain

    import jobs_steps as js

    BEFORE = onward.connect("sqlite:///before.sqlite3")

    def test_a_fresh_default_store(onward_store, tmp_path):
        assert stores.current() is onward_store
        assert onward_store is not BEFORE
        assert str(tmp_path) in onward_store.url
        handle = js.Keyed.perform_later("k", 1)
        assert drain() == 1
        assert onward.get_job(handle.id).result == ["k", 1]

    def test_each_test_gets_its_own_store(onward_store):
        assert drain() == 0
        assert onward_store.list_jobs(stores.base.JobFilter()) == []

    def test_the_previous_default_is_restored():
        assert stores.current() is BEFORE
"""


def test_the_pytest_plugin_provides_onward_store(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "test_uses_plugin.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_uses_plugin.py"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


# -- drain(until=...): time passes for delayed jobs, without sleeping ---------------------------


def test_drain_until_runs_delayed_jobs_in_the_order_they_come_due(store: onward.Store, tmp_path: Path) -> None:
    path = str(tmp_path / "order.txt")
    AppendLine.set(wait=timedelta(minutes=9)).perform_later(path, "nine")
    AppendLine.set(wait=timedelta(minutes=1)).perform_later(path, "one")
    AppendLine.set(wait=timedelta(hours=2)).perform_later(path, "later")
    AppendLine.perform_later(path, "now")
    assert drain() == 1
    started = time.monotonic()
    assert drain(until=timedelta(minutes=10)) == 2
    assert time.monotonic() - started < 30  # no sleeping through the ten minutes
    with open(path) as f:
        assert f.read().split() == ["now", "one", "nine"]
    waiting = [j for j in store.list_jobs(JobFilter()) if j.state == "enqueued"]
    assert len(waiting) == 1
    assert [j.args[1] for j in waiting] == ["later"]


def test_drain_until_runs_retries_after_their_backoff_and_continuations_after_their_wait(
    store: onward.Store,
) -> None:
    failing = RetriesLater.perform_later()
    parent = WaitingParent.perform_later(0.0, None)
    drain(until=timedelta(hours=1))
    record = failing.refresh()
    assert record.state == "failed"
    assert record.attempts == RetriesLater.retry.attempts
    children = [store.get(c) for c in parent.refresh().children]
    assert sorted(c.args[0] for c in children) == ["absolute", "relative"]
    assert {c.state for c in children} == {"succeeded"}
