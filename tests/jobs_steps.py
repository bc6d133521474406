"""Job classes for the step, interruption, unique-key and testing-helper tests.

Workers import these by path (``jobs_steps:ClassName``), so they live at module level.
They report what they did in :data:`LOG` and can be held at a :class:`Gate` so a test can
look at the store (from another connection) while the job is in the middle of a step.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from onward import Job, Retry, Step

#: What the jobs did, in order: tuples whose first item names the event.
LOG: list[tuple[Any, ...]] = []

#: Failures to inject: ``FAIL[item] = n`` makes processing ``item`` raise ``n`` more times.
FAIL: dict[Any, int] = {}

GATE_TIMEOUT = 30.0


class Gate:
    """A rendezvous: the job calls :meth:`pause`; the test waits for ``reached``, looks
    around, then calls :meth:`open` to let the job go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def pause(self) -> None:
        self.reached.set()
        if not self.go.wait(GATE_TIMEOUT):
            raise TimeoutError("the test never opened the gate")

    def wait_reached(self, timeout: float = GATE_TIMEOUT) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError("the job never reached the gate")

    def open(self) -> None:
        self.go.set()


GATES: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate(name: str) -> Gate:
    with _gates_lock:
        return GATES.setdefault(name, Gate())


def reset() -> None:
    """Forget everything a previous test left behind."""
    LOG.clear()
    FAIL.clear()
    for g in list(GATES.values()):
        g.open()  # never leave a job thread waiting
    GATES.clear()


def events(kind: str) -> list[tuple[Any, ...]]:
    return [e for e in LOG if e[0] == kind]


def items() -> list[Any]:
    """The items processed, in order (duplicates included)."""
    return [e[1] for e in LOG if e[0] == "item"]


def maybe_fail(item: Any) -> None:
    left = FAIL.get(item, 0)
    if left > 0:
        FAIL[item] = left - 1
        raise RuntimeError(f"injected failure at item {item!r}")


class Child(Job):
    """A continuation of the stepped jobs."""

    def perform(self, tag: str) -> str:
        LOG.append(("child", tag))
        return tag


class Import(Job):
    """The seed's ProcessImportJob shape: initialize, process (a cursor over items), finalize.

    ``pause_at`` holds the job at gate ``gate_name`` right after advancing past that item.
    """

    retry = Retry(attempts=3, backoff=0)

    def perform(self, n: int, pause_at: int | None = None, gate_name: str = "g") -> int:
        self.n, self.pause_at, self.gate_name = n, pause_at, gate_name
        LOG.append(("outside", self.attempt, self.resumptions))
        self.step("initialize", lambda: LOG.append(("initialize",)))
        self.step("process", self.process)
        self.step("finalize")
        return int(self.state.get("count", 0))

    def process(self, step: Step) -> None:
        step.total = self.n
        LOG.append(("enter", step.cursor, step.resumed))
        for i in range(step.cursor or 0, self.n):
            maybe_fail(i)
            LOG.append(("item", i))
            self.state["count"] = self.state.get("count", 0) + 1
            step.advance(from_=i)
            if i == self.pause_at:
                gate(self.gate_name).pause()

    def finalize(self) -> None:
        LOG.append(("finalize",))

    def continuations(self, n: int, pause_at: int | None = None, gate_name: str = "g") -> None:
        Child.perform_later(f"after-import-{n}")


class ImportEveryChange(Import):
    checkpoint_interval = 0


class ImportThrottled(Import):
    checkpoint_interval = 3600.0


class ImportShortInterval(Import):
    checkpoint_interval = 0.05


class ImportOnce(Import):
    """Fails for good (one attempt) when a failure is injected."""

    retry = Retry(attempts=1)


class ImportNoResume(Import):
    resume_errors_after_advancing = False


class ImportSlowBackoff(Import):
    retry = Retry(attempts=3, backoff=3600)


class ImportNotRetried(Import):
    retry = Retry(attempts=3, backoff=0, on=(ValueError,))


class ImportDiscarded(Import):
    discard_on = (RuntimeError,)


class ImportLimited(Import):
    max_resumptions = 1


class ImportYielding(Import):
    """Yields its worker after every item: ``max_run_time`` is 0 seconds."""

    max_run_time = 0.0


class ImportYieldingLimited(ImportYielding):
    max_resumptions = 2


class UniqueImport(Import):
    def unique_key(self, n: int, pause_at: int | None = None, gate_name: str = "g") -> str:
        return f"import:{n}"


class Cursors(Job):
    """Exercises the cursor operations and records the cursor after each."""

    checkpoint_interval = 0

    def perform(self, op: str) -> None:
        self.step("s", getattr(self, op))

    def advance_from_none(self, step: Step) -> None:
        LOG.append(("cursor", step.cursor))
        step.advance()
        LOG.append(("cursor", step.cursor))
        step.advance()
        LOG.append(("cursor", step.cursor))

    def advance_from(self, step: Step) -> None:
        step.advance(from_=41)
        LOG.append(("cursor", step.cursor))
        step.advance(from_=None)
        LOG.append(("cursor", step.cursor))

    def set_list(self, step: Step) -> None:
        step.set([2, 17])
        LOG.append(("cursor", step.cursor))
        step.set({"page": "b", "row": 3})
        LOG.append(("cursor", step.cursor))

    def advance_string(self, step: Step) -> None:
        step.set("abc")
        step.advance()

    def advance_from_float(self, step: Step) -> None:
        step.advance(from_=1.5)

    def advance_bool(self, step: Step) -> None:
        step.set(True)
        step.advance()

    def set_unserializable(self, step: Step) -> None:
        step.set({1, 2})


class Started(Job):
    """A step with ``start``: the cursor starts there unless a saved one exists."""

    checkpoint_interval = 0

    def perform(self, n: int) -> None:
        self.step("count", self.count, start=10)

    def count(self, step: Step) -> None:
        LOG.append(("enter", step.cursor, step.resumed))
        while step.cursor < 10 + 3:
            LOG.append(("item", step.cursor))
            step.advance()


class Checkpointing(Job):
    """Saves with ``checkpoint()`` under a long interval, and counts in ``self.state``."""

    checkpoint_interval = 3600.0

    def perform(self) -> None:
        self.step("work", self.work)

    def work(self, step: Step) -> None:
        step.set("a")
        self.state["seen"] = ["a"]
        gate("before").pause()
        step.checkpoint()
        gate("after").pause()


class Phases(Job):
    """Steps ``a``, ``b`` (optionally isolated), ``c``; logs which execution ran each."""

    isolate: tuple[str, ...] = ("b",)
    names: tuple[str, ...] = ("a", "b", "c")

    def perform(self) -> None:
        for name in self.names:
            self.step(name, self.run_step(name), isolated=name in self.isolate)

    def run_step(self, name: str) -> Any:
        def body() -> None:
            LOG.append(("ran", name, self.resumptions))

        return body

    def continuations(self) -> None:
        Child.perform_later("after-phases")


class PhasesFirstIsolated(Phases):
    isolate = ("a",)


class PhasesLastIsolated(Phases):
    isolate = ("c",)


class PhasesNoResumptions(Phases):
    max_resumptions = 0


class Stubborn(Job):
    """Catches ``Exception`` around every advance: an interruption must still get through."""

    max_run_time = 0.0

    def perform(self, n: int) -> None:
        self.step("loop", self.loop)

    def loop(self, step: Step) -> None:
        for i in range(step.cursor or 0, 3):
            LOG.append(("item", i))
            try:
                step.advance(from_=i)
            except Exception:
                LOG.append(("swallowed", i))


# -- async -----------------------------------------------------------------------------


class AsyncImport(Job):
    """``async def perform`` with a sync step, an async step, and an async finalize."""

    retry = Retry(attempts=3, backoff=0)

    async def perform(self, n: int, pause_at: int | None = None, gate_name: str = "g") -> int:
        self.n, self.pause_at, self.gate_name = n, pause_at, gate_name
        LOG.append(("outside", self.attempt, self.resumptions))
        await self.step("initialize", lambda step: LOG.append(("initialize",)))
        await self.step("process", self.process)
        await self.step("finalize")
        return int(self.state.get("count", 0))

    async def process(self, step: Step) -> None:
        step.total = self.n
        LOG.append(("enter", step.cursor, step.resumed))
        for i in range(step.cursor or 0, self.n):
            await asyncio.sleep(0)
            maybe_fail(i)
            LOG.append(("item", i))
            self.state["count"] = self.state.get("count", 0) + 1
            step.advance(from_=i)
            if i == self.pause_at:
                await asyncio.to_thread(gate(self.gate_name).pause)

    async def finalize(self) -> None:
        LOG.append(("finalize",))

    async def continuations(self, n: int, pause_at: int | None = None, gate_name: str = "g") -> None:
        await asyncio.sleep(0)
        Child.perform_later(f"after-async-{n}")


class AsyncImportEveryChange(AsyncImport):
    checkpoint_interval = 0


class AsyncImportShortInterval(AsyncImport):
    checkpoint_interval = 0.05


class AsyncTaskGroup(Job):
    """Advances inside a ``TaskGroup`` task: the interruption arrives wrapped in a group."""

    async def perform(self, n: int) -> None:
        await self.step("grouped", self.grouped)

    async def grouped(self, step: Step) -> None:
        async def work() -> None:
            for i in range(step.cursor or 0, n_items(step)):
                LOG.append(("item", i))
                step.advance(from_=i)
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as group:
            group.create_task(work())


def n_items(step: Step) -> int:
    return 4


# -- helpers for the tests ---------------------------------------------------------------


class BackgroundWorker:
    """A :class:`onward.Worker` running in a thread, so the test can watch and stop it."""

    def __init__(self, store: Any, burst: bool = False, **options: Any) -> None:
        from onward import Worker

        self.worker = Worker(store=store, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(burst,), daemon=True)
        self.thread.start()

    def _run(self, burst: bool) -> None:
        try:
            self.worker.run(burst=burst)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout: float = GATE_TIMEOUT) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the worker did not return")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self.worker.stop()
        self.join()


class Keyed(Job):
    """A unique job that returns its arguments; ``gate_name`` holds it while running."""

    def unique_key(self, key: str, value: int = 0, gate_name: str | None = None) -> str:
        return key

    def perform(self, key: str, value: int = 0, gate_name: str | None = None) -> list[object]:
        LOG.append(("keyed", key, value))
        if gate_name:
            gate(gate_name).pause()
        return [key, value]


class Parent(Job):
    """Enqueues unique children in its continuations."""

    def perform(self, key: str) -> None:
        pass

    def continuations(self, key: str) -> None:
        first = Keyed.perform_later(key, 1)
        second = Keyed.perform_later(key, 2)
        LOG.append(("handles", first, second))


class TypedCursor(Job):
    """Sets a cursor of typed values and waits at gate ``g`` (every change is saved)."""

    checkpoint_interval = 0

    def perform(self, cursor: Any) -> None:
        self.step("before", lambda: None)
        self.step("typed", lambda step: self.typed(step, cursor))

    def typed(self, step: Step, cursor: Any) -> None:
        step.total = 7
        step.set(cursor)
        gate("g").pause()
