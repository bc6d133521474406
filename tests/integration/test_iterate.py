"""``step.each`` (API §16): sequences by index, other iterables, async iteration, and the
rules every source follows: the cursor moves after the loop body finished with an item, a
stopped job repeats nothing, a body that raises or breaks leaves its item unprocessed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import jobs_iterate as ji
import onward
from onward import Job, Step, iterate
from onward.testing import drain, interrupt_after_step, interrupt_during_step


@pytest.fixture
def app(tmp_path: Path) -> str:
    return str(tmp_path / "app.sqlite3")


def run(app: str, spec: dict[str, Any], *cursors: Any, job: type[Job] = ji.Each) -> onward.JobRecord:
    """Enqueue ``job`` over ``spec``, interrupt it during "process" at each of ``cursors``
    in turn (one execution each), and drain until it is done."""
    handle = job.perform_later(app, spec)
    with ExitStack() as stack:
        for cursor in cursors:
            stack.enter_context(interrupt_during_step(job, "process", cursor=cursor))
        drain()
    return handle.refresh()


def test_a_list_is_iterated_by_index_and_resumed_with_every_item_once(store: onward.Store, app: str) -> None:
    items = [f"item-{i}" for i in range(20)]
    record = run(app, {"kind": "list", "items": items}, 5, 12)
    assert record.state == "succeeded", record.error
    assert (record.attempts, record.resumptions) == (1, 2)
    assert ji.processed(app) == items  # every item exactly once, in order
    process = record.steps[0]
    assert (process.cursor, process.advanced, process.total) == (20, 20, 20)


def test_a_generator_resumes_by_skipping_what_was_processed(store: onward.Store, app: str) -> None:
    items = list(range(100, 130))
    record = run(app, {"kind": "generator", "items": items}, 1, 29)
    assert record.state == "succeeded", record.error
    assert record.resumptions == 2
    assert ji.processed(app) == items
    assert (record.steps[0].cursor, record.steps[0].total) == (30, None)  # no length: no total


@pytest.mark.parametrize("job", [ji.Each, ji.AsyncEach], ids=["for", "async-for"])
def test_a_source_of_one_s_own_resumes_from_the_cursors_it_gives(store: onward.Store, app: str, job: type[Job]) -> None:
    record = run(app, {"kind": "custom", "groups": "abc", "per_group": 3}, "a:3", "b:2", job=job)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3"]
    assert (record.steps[0].cursor, record.steps[0].total) == ("c:3", 9)


def test_interrupted_after_the_step_the_loop_had_finished(store: onward.Store, app: str) -> None:
    handle = ji.Each.perform_later(app, {"kind": "list", "items": [1, 2, 3]})
    with interrupt_after_step(ji.Each, "process"):
        drain()
    record = handle.refresh()
    assert (record.state, record.resumptions) == ("succeeded", 1)
    assert ji.processed(app) == [1, 2, 3]
    assert [s.status for s in record.steps] == ["completed", "completed"]


def test_the_cursor_moves_only_after_the_body_finished_with_an_item(store: onward.Store, app: str) -> None:
    ji.fail_at(app, 7)  # raises before the item is recorded, once
    record = run(app, {"kind": "list", "items": list(range(10))})
    assert record.state == "succeeded", record.error
    # progress had been made: the error resumed the job at item 7, not after it
    assert (record.attempts, record.resumptions) == (1, 1)
    assert ji.processed(app) == list(range(10))
    assert "injected failure at item 7" in (record.error or "")


def test_a_break_leaves_its_item_unprocessed(store: onward.Store, app: str) -> None:
    record = run(app, {"kind": "list", "items": list(range(10)), "stop_after": 4})
    assert record.state == "succeeded", record.error
    assert ji.processed(app) == [0, 1, 2, 3, 4]
    assert (record.steps[0].cursor, record.steps[0].advanced) == (4, 4)  # item 4: body did not finish


class Observed(Job):
    """Records what ``step.cursor`` is inside the body and after the loop."""

    def perform(self, items: list[int]) -> list[Any]:
        self.items, self.seen = items, []
        self.step("loop", self.loop)
        return self.seen

    def loop(self, step: Step) -> None:
        for item in step.each(self.items):
            self.seen.append([item, step.cursor])
        self.seen.append(["end", step.cursor])


def test_step_cursor_in_the_body_is_the_index_of_the_item_being_processed(store: onward.Store) -> None:
    assert Observed.perform_now([10, 20, 30]) == [[10, None], [20, 1], [30, 2], ["end", 3]]
    assert Observed.perform_now([]) == [["end", None]]


class Misused(Job):
    def perform(self, what: str) -> None:
        self.what = what
        self.step("loop", self.loop)

    def loop(self, step: Step) -> None:
        sources: dict[str, Any] = {
            "int": 42,
            "str": "abc",
            "set": {1, 2},
            "function": lambda cursor: [],
            "async-in-sync": ji.numbers([1]),
        }
        for _ in step.each(sources[self.what]):
            pass


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("int", "Misused: step 'loop': step.each() needs a sequence, an iterable or an onward.iterate source, not int"),
        ("str", "Misused: step 'loop': step.each() was given a str; to iterate over one value, pass [value]"),
        ("set", "Misused: step 'loop': step.each() was given a set, which has no stable order"),
        ("function", "not function (call it, or make it an onward.iterate.Source)"),
        ("async-in-sync", "Misused: step 'loop': <async_generator async iterable> is asynchronous: iterate it with "),
    ],
)
def test_a_source_that_cannot_be_iterated_fails_the_job_naming_the_step(
    store: onward.Store, what: str, message: str
) -> None:
    handle = Misused.perform_later(what)
    drain()
    record = handle.refresh()
    assert (record.state, record.attempts) == ("failed", 1)  # InvalidStep: not retried
    assert message in (record.error or "").splitlines()[-1]
    assert (record.error or "").splitlines()[-1].startswith("onward.InvalidStep: ")


class Resumed(Job):
    """A step whose saved cursor does not fit its source (its code changed)."""

    def perform(self, start: Any) -> None:
        self.step("loop", self.loop, start=start)

    def loop(self, step: Step) -> None:
        for _ in step.each([1, 2, 3]):
            pass


def test_a_saved_cursor_that_is_not_an_index_fails_the_job_naming_the_step(store: onward.Store) -> None:
    handle = Resumed.perform_later("abc")
    drain()
    record = handle.refresh()
    assert record.state == "failed"
    assert "Resumed: step 'loop': the saved cursor 'abc' is not an index" in (record.error or "")
    assert "set(fresh=True)" in (record.error or "")


class StartedAt(Observed):
    def perform(self, items: list[int]) -> list[Any]:
        self.items, self.seen = items, []
        self.step("loop", self.loop, start=2)
        return self.seen


def test_a_step_can_start_at_an_index(store: onward.Store) -> None:
    # start=2: the third item is the next to process
    assert StartedAt.perform_now([10, 20, 30]) == [[30, 2], ["end", 3]]


# -- async ---------------------------------------------------------------------------------


def test_async_for_over_a_list_and_over_an_async_generator(store: onward.Store, app: str) -> None:
    record = run(app, {"kind": "list", "items": list(range(12))}, 4, 9, job=ji.AsyncEach)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == list(range(12))
    assert (record.steps[0].cursor, record.steps[0].total) == (12, 12)


def test_async_for_over_an_async_generator_resumes_by_skipping(store: onward.Store, app: str) -> None:
    items = list(range(50, 65))
    record = run(app, {"kind": "async-generator", "items": items}, 3, 10, job=ji.AsyncEach)
    assert (record.state, record.resumptions) == ("succeeded", 2), record.error
    assert ji.processed(app) == items
    assert record.steps[0].cursor == 15


def test_async_for_error_resumes_at_the_item_that_failed(store: onward.Store, app: str) -> None:
    ji.fail_at(app, 3)
    record = run(app, {"kind": "async-generator", "items": list(range(6))}, job=ji.AsyncEach)
    assert (record.state, record.attempts, record.resumptions) == ("succeeded", 1, 1), record.error
    assert ji.processed(app) == list(range(6))


# -- what step.each returns --------------------------------------------------------------------


class Described(Job):
    def perform(self) -> str:
        self.text = ""
        self.step("loop", self.loop)
        return self.text

    def loop(self, step: Step) -> None:
        each: iterate.Each[int] = step.each([1, 2])
        self.text = repr(each)


def test_each_says_what_it_iterates(store: onward.Store) -> None:
    assert Described.perform_now() == "<step.each over <sequence of 2 list items> in step 'loop'>"


@pytest.fixture(autouse=True)
def _no_leftover_connections() -> Iterator[None]:
    yield
    for conn in ji._local.__dict__.pop("conns", {}).values():
        conn.close()
