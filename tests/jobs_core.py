"""Job classes for the core behaviour tests.

They live at module level so that worker subprocesses can import them (``--import
jobs_core``). Tests that run jobs in another process observe them through the store (results,
``self.state``) or through files under a directory passed as an argument; the in-process
registry of events and barriers below is only for jobs run by a worker in the test's own
process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import onward
from onward import Job, Retry

# -- in-process coordination (never shared with a subprocess) -----------------------------

_registry_lock = threading.Lock()
EVENTS: dict[str, threading.Event] = {}
BARRIERS: dict[str, threading.Barrier] = {}


def event(name: str) -> threading.Event:
    """The in-process event called ``name`` (created on first use)."""
    with _registry_lock:
        return EVENTS.setdefault(name, threading.Event())


def barrier(name: str, parties: int) -> threading.Barrier:
    """The in-process barrier called ``name`` for ``parties`` threads."""
    with _registry_lock:
        return BARRIERS.setdefault(name, threading.Barrier(parties))


def unique_names(*labels: str) -> list[str]:
    """Fresh event names, so that a test run once per backend never sees a stale event."""
    token = uuid.uuid4().hex
    return [f"{label}-{token}" for label in labels]


# -- files, for observations across processes ----------------------------------------------


def append_line(path: str, text: str) -> None:
    """Append one line with a single O_APPEND write: lines from several processes never mix."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def wait_for_file(path: str, timeout: float) -> bool:
    """Poll for ``path`` until ``timeout`` seconds pass; whether it appeared."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return os.path.exists(path)


# -- plain jobs ----------------------------------------------------------------------------


class Echo(Job):
    """Returns its arguments, so a test sees the values ``perform`` received."""

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        return {"args": list(args), "kwargs": kwargs, "types": [type(a).__name__ for a in args]}


class Add(Job):
    def perform(self, a: int, b: int) -> int:
        return a + b


class Mailer(Job):
    """A job with its own queue and priority."""

    queue = "mailers"
    priority = 5

    def perform(self) -> str:
        return "sent"


class Context(Job):
    """Returns what a job sees of itself: id, attempt, resumptions, state."""

    def perform(self) -> dict[str, Any]:
        return {"id": self.id, "attempt": self.attempt, "resumptions": self.resumptions, "state": dict(self.state)}


class SeesOwnRecord(Job):
    """Reads its own record while it runs."""

    def perform(self) -> dict[str, Any]:
        record = onward.get_job(self.id)
        return {"state": str(record.state), "worker_id": record.worker_id}


class WaitsForHeartbeat(Job):
    """Returns once its own lease was renewed (its expiry moved), or False after 20 s."""

    def perform(self) -> bool:
        first = onward.get_job(self.id).lease_expires_at
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if onward.get_job(self.id).lease_expires_at != first:
                return True
            time.sleep(0.01)
        return False


class AppendLine(Job):
    """Appends ``text`` to the file ``path``: the order in which jobs ran."""

    def perform(self, path: str, text: str) -> str:
        append_line(path, text)
        return text


class WaitsForEvent(Job):
    """Sets event ``started``, then waits for event ``go`` (in-process only)."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, started: str, go: str, timeout: float = 30.0) -> str:
        event(started).set()
        if not event(go).wait(timeout):
            raise TimeoutError(f"event {go!r} never came")
        return "done"


class WaitsForFile(Job):
    """Writes ``dir/started-<attempt>``, then waits until ``dir/go`` exists (across processes)."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, directory: str, timeout: float = 60.0) -> int:
        Path(directory, f"started-{self.attempt}").touch()
        if not wait_for_file(os.path.join(directory, "go"), timeout):
            raise TimeoutError("go file never came")
        return self.attempt


class StuckOnFirstAttempt(Job):
    """On its first attempt writes ``dir/started`` and hangs; later attempts succeed."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, directory: str) -> int:
        if self.attempt == 1:
            Path(directory, "started").touch()
            wait_for_file(os.path.join(directory, "never"), 600)
        return self.attempt


class StuckOnce(Job):
    """Like ``StuckOnFirstAttempt`` but with a single attempt: a lost worker fails it."""

    retry = Retry(attempts=1)

    def perform(self, directory: str) -> str:
        Path(directory, "started").touch()
        wait_for_file(os.path.join(directory, "never"), 600)
        return "unreachable"


class CountOnce(Job):
    """Records its execution: a marker file created exclusively and a line appended."""

    def perform(self, n: int, directory: str) -> int:
        append_line(os.path.join(directory, "executions.log"), f"{n} {self.id} {os.getpid()}")
        try:
            fd = os.open(os.path.join(directory, f"job-{n}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.close(fd)
        except FileExistsError:
            append_line(os.path.join(directory, "duplicates.log"), str(n))
        return n


class SignalsOwnProcess(Job):
    """Sends ``signum`` to its own process (the worker), then finishes normally."""

    def perform(self, signum: int) -> str:
        os.kill(os.getpid(), signum)
        return "finished"


class ObservesSignalHandler(Job):
    """Reports whether SIGTERM's handler, while it runs, is the one a test installed."""

    def perform(self) -> dict[str, bool]:
        handler = signal.getsignal(signal.SIGTERM)
        return {"is_default": handler is signal.SIG_DFL, "is_test_handler": getattr(handler, "onward_test", False)}


class MeetAtBarrier(Job):
    """Waits until ``parties`` jobs reach the barrier: passes only if they run at once."""

    def perform(self, name: str, parties: int) -> str:
        barrier(name, parties).wait(timeout=20)
        return threading.current_thread().name


class TracksOverlap(Job):
    """Counts how many jobs of group ``name`` run at once (in-process); returns the peak seen."""

    running: dict[str, int] = {}
    peak: dict[str, int] = {}

    def perform(self, name: str) -> int:
        with _registry_lock:
            now = TracksOverlap.running[name] = TracksOverlap.running.get(name, 0) + 1
            TracksOverlap.peak[name] = max(TracksOverlap.peak.get(name, 0), now)
        time.sleep(0.02)  # a little work, so that jobs have the chance to overlap
        with _registry_lock:
            TracksOverlap.running[name] -= 1
        return TracksOverlap.peak[name]


# -- failing jobs --------------------------------------------------------------------------


class Fails(Job):
    """Always raises ``ValueError(message)``; three tries, no backoff."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, message: str = "boom") -> None:
        raise ValueError(message)


class FailsUntilAttempt(Job):
    """Raises ``ConnectionError`` until attempt ``n``, then returns the attempt."""

    retry = Retry(attempts=5, backoff=0, on=(ConnectionError,))

    def perform(self, n: int) -> int:
        if self.attempt < n:
            raise ConnectionError(f"attempt {self.attempt} failed")
        return self.attempt


class CallableBackoff(Job):
    """Backoff from a callable: zero seconds, so every retry runs in the same burst."""

    retry = Retry(attempts=4, backoff=lambda attempt: 0 * attempt, on=(ConnectionError,))

    def perform(self) -> int:
        if self.attempt < 4:
            raise ConnectionError("not yet")
        return self.attempt


class PaymentDeclined(Exception):
    """An application error defined outside the builtins."""


class RaisesCustom(Job):
    retry = Retry(attempts=1)

    def perform(self, message: str) -> None:
        raise PaymentDeclined(message)


class FailsWithDefaultBackoff(Job):
    """The default retry policy: exponential backoff with jitter (about 2 s after attempt 1)."""

    def perform(self) -> None:
        raise ConnectionError("down")


class NotRetried(Job):
    """Raises an error outside ``retry.on``: fails at once."""

    retry = Retry(attempts=5, backoff=0, on=(ConnectionError,))

    def perform(self) -> None:
        raise ValueError("not retryable")


class Discards(Job):
    """Raises an error listed in ``discard_on``."""

    retry = Retry(attempts=5, backoff=0)
    discard_on = (LookupError,)

    def perform(self) -> None:
        raise KeyError("record gone")


class RetriesLater(Job):
    """Fails with a long backoff: its retry is scheduled an hour later."""

    retry = Retry(attempts=2, backoff=3600)

    def perform(self) -> None:
        raise ConnectionError("down")


class RaisesFatal(Job):
    """Raises one of the errors that fail a job at once, by name."""

    retry = Retry(attempts=5, backoff=0)

    def perform(self, kind: str) -> None:
        if kind == "InvalidStep":
            self.step("")
        elif kind == "UnadvanceableCursor":
            self.step("walk", lambda step: step.advance(from_="a"))
        elif kind == "ResumeLimitExceeded":
            raise onward.ResumeLimitExceeded("too many")
        elif kind == "SerializationError":
            self.state["bad"] = {1, 2}
            self.step("save", lambda step: step.checkpoint())
        elif kind == "JobClassNotFound":
            raise onward.JobClassNotFound("gone")
        raise AssertionError(kind)


class BadResult(Job):
    retry = Retry(attempts=5, backoff=0)

    def perform(self) -> Any:
        return {"ids": {1, 2}}


class BadCursor(Job):
    retry = Retry(attempts=5, backoff=0)

    def perform(self) -> None:
        self.step("walk", lambda step: step.set({"at": b"bytes"}))


class StepThenFail(Job):
    """Completes step ``a`` and advances step ``b`` to 3, then fails once in ``b``.

    With ``resume_errors_after_advancing = False`` the failure is a retry attempt; the retry
    skips ``a`` (its runs are counted in ``self.state``) and continues ``b`` at cursor 3.
    """

    retry = Retry(attempts=3, backoff=0)
    resume_errors_after_advancing = False
    checkpoint_interval = 0

    def perform(self) -> dict[str, Any]:
        self.step("a", self.a)
        self.step("b", self.b)
        return {"a_runs": self.state.get("a_runs"), "b_starts": self.state.get("b_starts")}

    def a(self) -> None:
        self.state["a_runs"] = self.state.get("a_runs", 0) + 1

    def b(self, step: onward.Step) -> None:
        self.state.setdefault("b_starts", []).append(step.cursor)
        while (step.cursor or 0) < 5:
            step.advance()
            if step.cursor == 3 and self.attempt == 1:
                raise ConnectionError("lost the connection at 3")


class ProgressThenFailOnce(Job):
    """Advances then fails on the first attempt: with the default settings that is a resumption."""

    retry = Retry(attempts=1, backoff=0)
    checkpoint_interval = 0

    def perform(self) -> int:
        self.step("walk", self.walk)
        return self.attempt

    def walk(self, step: onward.Step) -> None:
        while (step.cursor or 0) < 4:
            step.advance()
            if step.cursor == 2 and self.resumptions == 0:
                raise ConnectionError("flaky")


# -- steps and progress --------------------------------------------------------------------


class Counted(Job):
    """One step of ``total`` items; sets ``step.total``; keeps a count in ``self.state``."""

    checkpoint_interval = 0

    def perform(self, total: int) -> int:
        self.step("count", lambda step: self.count(step, total))
        return int(self.state["count"])

    def count(self, step: onward.Step, total: int) -> None:
        step.total = total
        while (step.cursor or 0) < total:
            self.state["count"] = self.state.get("count", 0) + 1
            step.advance()


class NoResumptions(Counted):
    """A counted job that may not be interrupted even once."""

    max_resumptions = 0


class YieldsOften(Job):
    """``max_run_time = 0``: yields after every step that made progress."""

    max_run_time = 0.0
    checkpoint_interval = 0

    def perform(self) -> list[str]:
        for name in ("one", "two", "three"):
            self.step(name, lambda: self.state.setdefault("ran", []).append(self.resumptions))
        return list(self.state["ran"])


class TwoSteps(Job):
    checkpoint_interval = 0

    def perform(self) -> str:
        self.step("first", lambda: None)
        self.step("second", lambda: None)
        return "ok"


class StepWaitsForEvent(Job):
    """Advances one item, sets ``started``, waits for ``go``, advances again (in-process)."""

    checkpoint_interval = 0

    def perform(self, started: str, go: str) -> int:
        self.step("walk", lambda step: self.walk(step, started, go))
        return int(self.state.get("executions", 0))

    def walk(self, step: onward.Step, started: str, go: str) -> None:
        self.state["executions"] = self.state.get("executions", 0) + 1
        step.total = 3
        while (step.cursor or 0) < 3:
            step.advance()
            if step.cursor == 1 and not step.resumed:
                event(started).set()
                event(go).wait(30)


class InspectsRunningStep(Job):
    """Reads its own record from inside a step: the step is ``running`` then."""

    def perform(self) -> Any:
        return self.step("look", self.look)

    def look(self, step: onward.Step) -> list[Any]:
        step.total = 4
        step.advance()
        step.checkpoint()
        record = onward.get_job(self.id)
        return [[s.name, s.status, s.cursor, s.advanced, s.total] for s in record.steps] + [record.progress]


class SlowSteps(Job):
    """Saves progress in a step, writes ``dir/started``, then hangs (for crash tests)."""

    checkpoint_interval = 0
    retry = Retry(attempts=1)

    def perform(self, directory: str) -> dict[str, Any]:
        self.step("walk", lambda step: self.walk(step, directory))
        return {"attempt": self.attempt, "resumptions": self.resumptions}

    def walk(self, step: onward.Step, directory: str) -> None:
        while (step.cursor or 0) < 3:
            step.advance()
            if step.cursor == 2 and not step.resumed:
                Path(directory, "started").touch()
                wait_for_file(os.path.join(directory, "never"), 600)


class StepUntilFile(Job):
    """Advances forever, a little at a time, until stopped; ``dir/started`` after the first."""

    checkpoint_interval = 0

    def perform(self, directory: str) -> int:
        self.step("walk", lambda step: self.walk(step, directory))
        return int(self.state.get("done", 0))

    def walk(self, step: onward.Step, directory: str) -> None:
        if step.resumed:
            self.state["done"] = step.cursor
            return
        while True:
            step.advance()
            if step.cursor == 1:
                Path(directory, "started").touch()
            time.sleep(0.01)


# -- continuations -------------------------------------------------------------------------


class Child(Job):
    def perform(self, tag: str) -> str:
        return tag


class FailingChild(Job):
    retry = Retry(attempts=1)

    def perform(self, tag: str) -> None:
        raise RuntimeError(f"child {tag} failed")


class Parent(Job):
    """Enqueues two children; keeps the ids of the handles it got, and what it saw."""

    def perform(self, n: int) -> dict[str, Any]:
        return {"n": n, "paid": n % 2 == 0}

    def continuations(self, n: int) -> None:
        first = Child.perform_later(f"first-{n}")
        second = Child.perform_later(f"second-{n}")
        self.state["handles"] = [first.id, second.id]
        self.state["seen"] = {"id": self.id, "attempt": self.attempt, "result": self.result, "n": n}


class ConditionalParent(Job):
    def perform(self, paid: bool) -> dict[str, bool]:
        return {"paid": paid}

    def continuations(self, paid: bool) -> None:
        if self.result["paid"]:
            Child.perform_later("ship")
        else:
            Child.perform_later("remind")


class WaitingParent(Job):
    """Children scheduled relative to the parent's completion and at an absolute time."""

    def perform(self, perform_seconds: float, until: Any) -> None:
        time.sleep(perform_seconds)  # the parent takes time, so "from completion" is visible

    def continuations(self, perform_seconds: float, until: Any) -> None:
        Child.set(wait=120).perform_later("relative")
        Child.set(wait_until=until).perform_later("absolute")


class RaisingContinuations(Job):
    def perform(self) -> str:
        return "ok"

    def continuations(self) -> None:
        Child.perform_later("never")
        raise RuntimeError("continuations broke")


continuations_broken = threading.Event()  # set: the next FlakyContinuations block raises


class FlakyContinuations(Job):
    """Its continuations enqueue two children, or raise while ``continuations_broken`` is set."""

    def perform(self, n: int) -> dict[str, int]:
        return {"n": n}

    def continuations(self, n: int) -> None:
        Child.set(wait=3600).perform_later(f"later-{n}")
        Child.perform_later(f"now-{self.result['n']}")
        if continuations_broken.is_set():
            raise RuntimeError("the mail service is down")


class PerformNowInContinuations(Job):
    """``perform_now`` inside the block runs at once; the block then raises."""

    def perform(self) -> str:
        return "ok"

    def continuations(self) -> None:
        Child.perform_later("collected")
        self.state["now"] = Child.perform_now("ran-now")
        raise RuntimeError("after perform_now")


class NestedPerformNow(Job):
    """Its continuations run ``Parent`` with ``perform_now`` (whose own continuations enqueue
    two children), then enqueue a child of their own: the collectors must nest."""

    def perform(self) -> str:
        return "outer"

    def continuations(self) -> None:
        before = Child.perform_later("outer-before")
        Parent.perform_now(8)
        after = Child.perform_later("outer-after")
        self.state["handles"] = [before.id, after.id]


class FailingParent(Job):
    retry = Retry(attempts=2, backoff=0)

    def perform(self) -> None:
        raise ValueError("parent failed")

    def continuations(self) -> None:
        Child.perform_later("never")


class DiscardedParent(Job):
    discard_on = (LookupError,)

    def perform(self) -> None:
        raise KeyError("gone")

    def continuations(self) -> None:
        Child.perform_later("never")


class ParentOfFailingChild(Job):
    def perform(self) -> str:
        return "ok"

    def continuations(self) -> None:
        FailingChild.perform_later("x")


class SteppedParent(Job):
    """Two steps; continuations enqueue one child each time they run."""

    checkpoint_interval = 0

    def perform(self) -> str:
        self.step("first", lambda: None)
        self.step("second", lambda: None)
        return "ok"

    def continuations(self) -> None:
        Child.perform_later("after-steps")


class CrashingContinuations(Job):
    """The first time its continuations run, the process dies after two ``perform_later``."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, directory: str) -> int:
        return self.attempt

    def continuations(self, directory: str) -> None:
        Child.perform_later("one")
        Child.perform_later("two")
        crashed = Path(directory, "crashed")
        if not crashed.exists():
            crashed.touch()
            os._exit(17)


class ZombieParent(Job):
    """On its first attempt waits on an event in ``perform`` (in-process); then returns and
    enqueues a child. Later attempts do not wait."""

    def perform(self, started: str, go: str) -> str:
        if self.attempt == 1:
            event(started).set()
            event(go).wait(30)
        return f"execution {self.attempt}"

    def continuations(self, started: str, go: str) -> None:
        Child.perform_later(f"from execution {self.attempt}")


class ZombieStepper(Job):
    """Advances once; the first execution then waits on an event and tries to advance again."""

    checkpoint_interval = 0

    def perform(self, started: str, go: str) -> int:
        self.step("walk", lambda step: self.walk(step, started, go))
        return int(self.resumptions)

    def walk(self, step: onward.Step, started: str, go: str) -> None:
        first = not step.resumed
        step.advance()
        if first:
            event(started).set()
            event(go).wait(30)
            self.state["zombie"] = "wrote this"
        step.advance()


# -- async jobs ----------------------------------------------------------------------------


class AsyncAdd(Job):
    async def perform(self, a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b


class AsyncMeet(Job):
    """Async jobs that must run at once on one event loop: each waits for ``parties`` arrivals."""

    arrived: dict[str, int] = {}

    async def perform(self, name: str, parties: int) -> dict[str, Any]:
        AsyncMeet.arrived[name] = AsyncMeet.arrived.get(name, 0) + 1
        deadline = time.monotonic() + 20
        while AsyncMeet.arrived[name] < parties:
            if time.monotonic() > deadline:
                raise TimeoutError("the other async jobs never ran alongside")
            await asyncio.sleep(0.005)
        return {"loop": id(asyncio.get_running_loop()), "thread": threading.get_ident()}


class AsyncSteps(Job):
    checkpoint_interval = 0

    async def perform(self) -> int:
        await self.step("sync_fn", lambda step: step.advance())
        await self.step("async_fn", self.walk)
        return int(self.state["walked"])

    async def walk(self, step: onward.Step) -> None:
        while (step.cursor or 0) < 3:
            await asyncio.sleep(0)
            step.advance()
        self.state["walked"] = step.cursor


class AsyncParent(Job):
    async def perform(self, n: int) -> int:
        await asyncio.sleep(0)
        return n

    async def continuations(self, n: int) -> None:
        await asyncio.sleep(0)
        Child.perform_later(f"async-{self.result}")


class AsyncRaisingContinuations(Job):
    async def perform(self) -> str:
        return "ok"

    async def continuations(self) -> None:
        Child.perform_later("never")
        await asyncio.sleep(0)
        raise RuntimeError("async continuations broke")


class ReportsSwitchInterval(Job):
    """Returns the interpreter's thread switch interval in the process that runs it."""

    def perform(self) -> float:
        return sys.getswitchinterval()


class ChainLink(Job):
    """Link ``step`` of chain ``chain``: its continuation is the next link, up to link 4."""

    def perform(self, chain: int, step: int) -> int:
        return step

    def continuations(self, chain: int, step: int) -> None:
        if step < 4:
            ChainLink.perform_later(chain, step + 1)
